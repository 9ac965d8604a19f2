"""Every filter of every API list validates its input: NUL, huge, wrong-type and unknown
values are a 400 naming the field, or an answer, never a 500 (issue 21, item 4)."""

from __future__ import annotations

import pytest

from dashboard.views import api as views
from tests.factories import make_cluster, make_pool

pytestmark = pytest.mark.django_db

LISTS = {
    "clusters": views.ClusterViewSet,
    "pools": views.PoolViewSet,
    "allocations": views.AllocationViewSet,
    "nads": views.NADViewSet,
    "interfaces": views.InterfaceViewSet,
    "findings": views.FindingViewSet,
    "alerts": views.AlertViewSet,
}
HOSTILE = {
    "nul": "a\x00b",
    "huge text": "x" * 20_000,
    "huge number": "9" * 40,
    "negative": "-1",
    "wrong type": "not-a-number",
    "unknown": "no-such-thing",
    "float": "1.5",
}


def _parameters(viewset) -> list[str]:
    names = {"cluster", "sort", "limit", "offset"}
    filterset = getattr(viewset, "filterset_class", None)
    if filterset is not None:
        names |= set(filterset.base_filters)
    return sorted(names)


CASES = [
    pytest.param(endpoint, name, value, id=f"{endpoint}-{name}-{label}")
    for endpoint, viewset in LISTS.items()
    for name in _parameters(viewset)
    for label, value in HOSTILE.items()
]


@pytest.fixture
def some_rows(db):
    make_pool(make_cluster("demo"), "10.0.0.0/24")


@pytest.mark.parametrize(("endpoint", "name", "value"), CASES)
def test_no_filter_value_is_a_500(viewer_client, some_rows, endpoint, name, value):
    for fmt in ("json", "csv"):
        response = viewer_client.get(f"/api/v1/{endpoint}/", {name: value, "format": fmt})
        assert response.status_code in (200, 400), (fmt, response.status_code)
        if response.status_code == 400 and fmt == "json":
            # The error names the field it is about.
            assert name in response.json(), response.json()


def test_the_cluster_filter_scopes_the_cluster_list(viewer_client, some_rows):
    make_cluster("lab")
    response = viewer_client.get("/api/v1/clusters/", {"cluster": "demo"})
    assert response.status_code == 200
    assert [c["name"] for c in response.json()["results"]] == ["demo"]
