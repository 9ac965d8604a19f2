"""Leaks: findings grouped by kind, with reason, state, alert state and links."""

from __future__ import annotations

import re

import pytest

from ippam.models import Alert, Finding
from tests.factories import (
    make_alert,
    make_cluster,
    make_demo,
    make_finding,
    make_pool,
)

pytestmark = pytest.mark.django_db


def test_leaks_full_page_grouped_by_kind(viewer_client, django_assert_max_num_queries):
    demo = make_demo()
    with django_assert_max_num_queries(12):
        response = viewer_client.get("/leaks/")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html and 'id="leaks-table"' in html
    assert re.findall(r'<tbody class="finding-group" data-kind="(\w+)"', html) == [
        "orphaned_allocation",
        "stale_allocation",
    ]
    f1, f2 = demo["findings"]
    row1 = re.search(
        rf'<tr id="finding-{f1.pk}" class="finding leaked">(.*?)</tr>', html, re.S
    ).group(1)
    assert "pod default/web-gone no longer exists" in row1
    assert f'href="/pools/{f1.pool_id}/"' in row1
    assert "(gone)" in row1 and ">open<" in row1
    row2 = re.search(
        rf'<tr id="finding-{f2.pk}" class="finding suspect">(.*?)</tr>', html, re.S
    ).group(1)
    w1 = demo["nodes"][0]
    assert f'href="/nodes/{w1.pk}/#pod-' in row2  # the pod, on its node page
    assert f'href="/nodes/{w1.pk}/">worker-1<' in row2
    assert "no alert" in row2


def test_leaks_fragment(viewer_client):
    make_demo()
    html = viewer_client.get(
        "/leaks/?kind=stale_allocation", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "<html" not in html and html.strip().startswith('<div id="leaks-table"')
    assert "stale_allocation" in html and "orphaned_allocation" not in html


def test_leaks_empty(viewer_client):
    make_cluster("c", synced=False)
    html = viewer_client.get("/leaks/").content.decode()
    assert "No leaks found" in html


def test_leaks_filters(viewer_client):
    demo = make_demo()
    html = viewer_client.get("/leaks/?state=suspect", HTTP_HX_REQUEST="true").content.decode()
    assert "10.10.0.51" in html and "10.10.0.50" not in html
    html = viewer_client.get(
        f"/leaks/?pool={demo['pools'][1].pk}", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "No finding matches" in html
    html = viewer_client.get("/leaks/?q=10.10.0.50", HTTP_HX_REQUEST="true").content.decode()
    assert "10.10.0.50" in html and "10.10.0.51" not in html


@pytest.mark.parametrize(
    "params", ["kind=zzz", "state=lost", "page=NaN", "pool=abc", "pool=-1", "q=%ff"]
)
def test_leaks_bad_params(viewer_client, params):
    make_demo()
    assert viewer_client.get(f"/leaks/?{params}").status_code == 200


def test_leaks_acknowledged_alert_shows_who(viewer_client, make_user):
    c = make_cluster("c")
    pool = make_pool(c, "10.0.0.0/24")
    f = make_finding(c, pool=pool, ip="10.0.0.9")
    make_alert(
        c,
        finding=f,
        state=Alert.State.ACKNOWLEDGED,
        acknowledged_by=make_user("op", "operator"),
        note="known",
    )
    html = viewer_client.get("/leaks/").content.decode()
    assert ">acknowledged<" in html and "by op" in html


def test_leaks_query_count_is_fixed(viewer_client, django_assert_max_num_queries):
    c = make_cluster("c")
    pool = make_pool(c, "10.0.0.0/24")
    for i in range(1, 80):
        f = make_finding(
            c,
            pool=pool,
            ip=f"10.0.0.{i}",
            podref=f"default/p{i}",
            node_name=f"n{i}",
            kind=Finding.Kind.ORPHANED_ALLOCATION if i % 2 else Finding.Kind.STALE_ALLOCATION,
        )
        if i % 3 == 0:
            make_alert(c, finding=f)
    with django_assert_max_num_queries(12):
        html = viewer_client.get("/leaks/").content.decode()
    assert html.count('<tr id="finding-') == 50
    assert "page 1 of 2" in html


def test_finding_get_reads_a_row_and_its_context_in_fixed_queries(django_assert_max_num_queries):
    from ippam.selectors.findings import finding_get

    demo = make_demo()
    alert = Alert.objects.filter(cluster=demo["cluster"], finding__isnull=False).first()
    with django_assert_max_num_queries(4):  # the finding, its alert, its pod, its node
        got = finding_get(finding_id=alert.finding_id)
        shown = (got.alert.pk, got.alert.state, got.podref, got.node and got.node.name)
    assert got.pk == alert.finding_id and shown[0] == alert.pk and shown[1] == alert.state


def test_leaks_row_rerendered_after_acknowledging_is_query_bounded(
    operator_client, django_assert_max_num_queries
):
    from ippam.models import Alert

    demo = make_demo()
    alert = Alert.objects.filter(cluster=demo["cluster"], finding__isnull=False).first()
    # Session, user, permissions, the form's alert, the locked write and its audit (about 16),
    # then the row: finding_get's 4. A query per row or per pod would break this bound.
    with django_assert_max_num_queries(21):
        response = operator_client.post(
            "/alerts/acknowledge/",
            {"alert": [alert.pk], "finding": alert.finding_id},
            HTTP_HX_REQUEST="true",
        )
    assert response.content.decode().strip().startswith(f'<tr id="finding-{alert.finding_id}"')
