"""The REST API: authentication (token, session), the pages' roles, paging, the shared
filters, the free-address endpoint, CSV, and the OpenAPI document and docs page."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from ippam.models import Alert, Allocation, Finding
from tests.factories import (
    make_alert,
    make_allocation,
    make_cluster,
    make_finding,
    make_nad,
    make_node,
    make_pod,
    make_pool,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    cluster = make_cluster("prod")
    other = make_cluster("lab")
    nad = make_nad(cluster, "blue", range="10.0.0.0/24", range_start="10.0.0.5")
    pool = make_pool(cluster, "10.0.0.0/24", nads=[nad])
    node = make_node(cluster, "worker-a")
    web = make_pod(cluster, "web-1", node=node, interfaces=[("net1", nad, ["10.0.0.5"], "")])
    make_pod(cluster, "db-1", node="worker-b", interfaces=[("net1", nad, ["10.0.0.6"], "")])
    a1 = make_allocation(pool, "10.0.0.5", pod=web)
    a2 = make_allocation(pool, "10.0.0.6", podref="default/db-1")
    a3 = make_allocation(pool, "10.0.0.7", podref="default/gone")
    make_pool(other, "10.9.0.0/24")
    leak = make_finding(cluster, allocation=a3)
    alert = make_alert(cluster, finding=leak)
    return {"cluster": cluster, "pool": pool, "allocs": [a1, a2, a3], "leak": leak, "alert": alert}


def token_for(user) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=user).key}"}


def test_anonymous_is_refused_with_401_not_redirected_to_the_login_page(client, world):
    response = client.get("/api/v1/pools/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")


def test_a_token_authenticates(client, world, make_user):
    response = client.get("/api/v1/pools/", **token_for(make_user("bot", "viewer")))
    assert response.status_code == 200
    assert response.json()["count"] == 2


def test_a_wrong_token_is_401(client, world):
    response = client.get("/api/v1/pools/", HTTP_AUTHORIZATION="Token nope")
    assert response.status_code == 401


def test_a_session_authenticates(viewer_client, world):
    assert viewer_client.get("/api/v1/clusters/").json()["count"] == 2


def test_drf_create_token_command_makes_a_working_token(client, world, make_user):
    make_user("script", "viewer")
    out = io.StringIO()
    call_command("drf_create_token", "script", stdout=out)
    key = Token.objects.get(user__username="script").key
    assert key in out.getvalue()
    assert client.get("/api/v1/nads/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200


def test_a_viewer_cannot_acknowledge(client, world, make_user):
    alert = world["alert"]
    headers = token_for(make_user("v", "viewer"))
    response = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {"note": "x"}, **headers)
    assert response.status_code == 403
    assert Alert.objects.get(pk=alert.pk).state == Alert.State.OPEN


def test_an_operator_acknowledges_through_the_service(client, world, make_user):
    alert = world["alert"]
    headers = token_for(make_user("op", "operator"))
    response = client.post(
        f"/api/v1/alerts/{alert.pk}/acknowledge/",
        {"note": "OPS-1"},
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["state"], body["acknowledged_by"], body["note"]) == ("acknowledged", "op", "OPS-1")
    stored = Alert.objects.get(pk=alert.pk)
    assert stored.state == Alert.State.ACKNOWLEDGED and stored.acknowledged_by.username == "op"


def test_acknowledging_a_resolved_alert_is_a_409_that_says_what_to_do(operator_client, world):
    resolved = make_alert(world["cluster"], state=Alert.State.RESOLVED)
    response = operator_client.post(f"/api/v1/alerts/{resolved.pk}/acknowledge/")
    assert response.status_code == 409
    assert "GET the alert again" in response.json()["detail"]


def test_reads_are_read_only(operator_client, world):
    response = operator_client.delete(f"/api/v1/alerts/{world['alert'].pk}/")
    assert response.status_code in (403, 405)
    assert Alert.objects.filter(pk=world["alert"].pk).exists()


def test_paging_with_limit_and_offset(viewer_client, world):
    first = viewer_client.get("/api/v1/allocations/?limit=2").json()
    assert first["count"] == 3 and len(first["results"]) == 2 and first["next"]
    rest = viewer_client.get("/api/v1/allocations/?limit=2&offset=2").json()
    ips = [r["ip"] for r in first["results"] + rest["results"]]
    assert ips == ["10.0.0.5", "10.0.0.6", "10.0.0.7"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ip=10.0.0.6", ["10.0.0.6"]),
        ("pod=default/web-1", ["10.0.0.5"]),
        ("pod=db-1", ["10.0.0.6"]),
        ("node=worker-a", ["10.0.0.5"]),
        ("node=worker-b", ["10.0.0.6"]),
        ("ip=not-an-ip", []),
    ],
)
def test_allocation_filters(viewer_client, world, query, expected):
    results = viewer_client.get(f"/api/v1/allocations/?{query}").json()["results"]
    assert [r["ip"] for r in results] == expected


def test_allocations_filter_by_pool_and_cluster(viewer_client, world):
    pool = world["pool"]
    assert viewer_client.get(f"/api/v1/allocations/?pool={pool.pk}").json()["count"] == 3
    assert viewer_client.get("/api/v1/pools/?cluster=lab").json()["count"] == 1
    response = viewer_client.get("/api/v1/pools/?cluster=nope")
    assert response.status_code == 400 and "clusters" in response.json()["cluster"]


def test_findings_filter_by_kind_and_state(viewer_client, world):
    make_finding(
        world["cluster"], kind=Finding.Kind.STALE_ALLOCATION, state="suspect", ip="10.0.0.9"
    )
    kinds = viewer_client.get("/api/v1/findings/?kind=orphaned_allocation").json()["results"]
    assert [f["ip"] for f in kinds] == ["10.0.0.7"]
    suspects = viewer_client.get("/api/v1/findings/?state=suspect").json()["results"]
    assert [f["ip"] for f in suspects] == ["10.0.0.9"]


def test_alerts_filter_by_state(viewer_client, world):
    make_alert(world["cluster"], state=Alert.State.RESOLVED)
    states = [a["state"] for a in viewer_client.get("/api/v1/alerts/?state=open").json()["results"]]
    assert states == ["open"]


def test_interfaces_filter_by_node_and_pod(viewer_client, world):
    on_a = viewer_client.get("/api/v1/interfaces/?node=worker-a").json()["results"]
    assert [(i["pod"], i["ips"]) for i in on_a] == [("default/web-1", ["10.0.0.5"])]
    db = viewer_client.get("/api/v1/interfaces/?pod=default/db-1").json()["results"]
    assert [i["node"] for i in db] == ["worker-b"]


def test_pools_show_usage_and_a_days_to_exhaustion_field(viewer_client, world):
    pool = viewer_client.get(f"/api/v1/pools/{world['pool'].pk}/").json()
    assert (pool["usable"], pool["nads"]) == (254, ["default/blue"])
    assert pool["free"] == pool["usable"] - pool["allocated"]
    assert "days_to_exhaustion" in pool


def test_list_pages_make_a_bounded_number_of_queries(
    viewer_client, world, django_assert_max_num_queries
):
    for n in range(5):
        make_pool(world["cluster"], f"10.1.{n}.0/24")
    for url in ("/api/v1/pools/", "/api/v1/nads/", "/api/v1/findings/", "/api/v1/alerts/"):
        with django_assert_max_num_queries(10):
            assert viewer_client.get(url).status_code == 200


def test_free_addresses_endpoint(viewer_client, world):
    pool = world["pool"]
    body = viewer_client.get(f"/api/v1/pools/{pool.pk}/free/?count=3").json()
    # range_start 10.0.0.5; .5 .6 .7 are allocated.
    assert body["addresses"] == ["10.0.0.8", "10.0.0.9", "10.0.0.10"]
    assert body["count"] == 3 and body["ranges"][0]["nad"] == "default/blue"
    capped = viewer_client.get(f"/api/v1/pools/{pool.pk}/free/?count=100000").json()
    # Capped at 256 asked; .8 .. .254 are the 247 left, never wrapping back to .1.
    assert capped["count"] == 256 and len(capped["addresses"]) == 247
    assert capped["addresses"][-1] == "10.0.0.254" and "only 247" in capped["reason"]
    bad = viewer_client.get(f"/api/v1/pools/{pool.pk}/free/?count=lots")
    assert bad.status_code == 400 and "whole number" in bad.json()["count"]


def test_csv_format_round_trips_every_row(viewer_client, world):
    response = viewer_client.get("/api/v1/allocations/?format=csv&limit=1")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    stored = Allocation.objects.order_by("ip")
    assert [(r["id"], r["ip"], r["podref"], r["key"], r["pool"]) for r in rows] == [
        (str(a.pk), str(a.ip), a.podref, a.key, str(a.pool_id)) for a in stored
    ]


def test_the_openapi_document_describes_the_free_and_acknowledge_endpoints(viewer_client, world):
    response = viewer_client.get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/pools/{id}/free/" in paths
    assert "post" in paths["/api/v1/alerts/{id}/acknowledge/"]


def test_the_docs_page_has_no_inline_script_or_style(viewer_client, world):
    from tests.html import select

    response = viewer_client.get("/api/v1/docs/")
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "script-src 'self'" in csp
    scripts = select(response.content.decode(), "script")
    assert scripts and all(s.get("src") for s in scripts)
    assert not select(response.content.decode(), "style")
    init = viewer_client.get("/api/v1/docs/?script=")
    assert init.status_code == 200 and "SwaggerUIBundle" in init.content.decode()


def test_the_docs_page_sends_anonymous_browsers_to_log_in(client):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_pools_carry_days_to_exhaustion_from_their_history(viewer_client, world):
    import datetime as dt

    from django.utils import timezone

    from ippam.models import IPPool, PoolSample

    pool = world["pool"]  # 254 usable
    # The pool's count as the sync left it, at the end of the history below (a history that
    # ends far from the current count is contradicted by it and gives no forecast).
    IPPool.objects.filter(pk=pool.pk).update(allocated=170)
    now = timezone.now()
    # Rising by 10 addresses a day for a week, sampled twice a day (15 samples: a forecast
    # needs 12 over a day); 84 free now: 84 / 10 = 8.4 days left.
    PoolSample.objects.bulk_create(
        PoolSample(
            pool=pool, at=now - dt.timedelta(hours=12 * h), allocated=170 - 5 * h, usable=254
        )
        for h in range(14, -1, -1)
    )
    detail = viewer_client.get(f"/api/v1/pools/{pool.pk}/").json()
    listed = viewer_client.get("/api/v1/pools/").json()["results"]
    by_id = {p["id"]: p for p in listed}
    assert detail["days_to_exhaustion"] == pytest.approx(8.4, abs=0.1)
    assert by_id[pool.pk]["days_to_exhaustion"] == pytest.approx(8.4, abs=0.1)
    # a straight history: its slope's interval is a point, so the band is the estimate
    assert detail["days_to_exhaustion_range"] == pytest.approx([8.4, 8.4], abs=0.1)
    flat = [p for p in listed if p["id"] != pool.pk]
    assert all(p["days_to_exhaustion"] is None for p in flat)
    assert all(p["days_to_exhaustion_range"] is None for p in flat)
