"""CSV and JSON exports from the pools, leaks and pool pages: the page's filters, every row,
and files that read back into exactly the database's rows."""

from __future__ import annotations

import csv
import io
import json

import pytest

from ippam.models import Allocation, Finding, IPPool
from tests.factories import make_allocation, make_cluster, make_finding, make_nad, make_pool
from tests.html import select

pytestmark = pytest.mark.django_db


@pytest.fixture
def data():
    cluster = make_cluster("prod")
    nad = make_nad(cluster, "blue", range="10.0.0.0/24", exclude=["10.0.0.0/28"])
    pool = make_pool(cluster, "10.0.0.0/24", nads=[nad], usable=238)
    make_pool(cluster, "fd00::/120", problems=['a, "quoted" problem\nover two lines'])
    allocs = [
        make_allocation(pool, f"10.0.0.{i}", podref=f"ns-{i}/pod,{i}", ifname="net1")
        for i in (16, 17, 40)
    ]
    make_finding(cluster, allocation=allocs[2], details={"why": ["gone", 1]})
    make_finding(cluster, kind=Finding.Kind.UNTRACKED_ADDRESS, ip="10.0.0.99", state="suspect")
    return {"pool": pool, "allocs": allocs}


def read_csv(response) -> list[dict[str, str]]:
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_pools_csv_round_trips_with_the_pages_filter(viewer_client, data):
    everything = read_csv(viewer_client.get("/pools/export.csv"))
    assert {(r["range"], int(r["usable"]), int(r["allocated"])) for r in everything} == {
        (p.range, int(p.usable), p.allocated) for p in IPPool.objects.all()
    }
    v6 = next(r for r in everything if r["range"] == "fd00::/120")
    assert json.loads(v6["problems"]) == ['a, "quoted" problem\nover two lines']
    filtered = read_csv(viewer_client.get("/pools/export.csv?q=fd00::5"))
    assert [r["range"] for r in filtered] == ["fd00::/120"]


def test_allocations_csv_round_trips_every_row_of_the_pool(viewer_client, data):
    pool = data["pool"]
    rows = read_csv(viewer_client.get(f"/pools/{pool.pk}/allocations.csv"))
    assert [
        (int(r["id"]), r["ip"], r["key"], r["podref"], r["ifname"], r["container_id"]) for r in rows
    ] == [
        (a.pk, str(a.ip), a.key, a.podref, a.ifname, a.container_id)
        for a in Allocation.objects.filter(pool=pool).order_by("ip")
    ]
    one = read_csv(viewer_client.get(f"/pools/{pool.pk}/allocations.csv?q=10.0.0.17"))
    assert [r["podref"] for r in one] == ["ns-17/pod,17"]


def test_findings_json_with_the_pages_filters(viewer_client, data):
    response = viewer_client.get("/leaks/export.json?kind=orphaned_allocation")
    assert response["Content-Type"] == "application/json"
    rows = response.json()
    stored = Finding.objects.get(kind="orphaned_allocation")
    assert [(r["id"], r["ip"], r["details"]) for r in rows] == [
        (stored.pk, "10.0.0.40", {"why": ["gone", 1]})
    ]
    suspects = read_csv(viewer_client.get("/leaks/export.csv?state=suspect"))
    assert [(r["kind"], r["ip"]) for r in suspects] == [("untracked_address", "10.0.0.99")]


def test_the_export_links_keep_the_current_filters(viewer_client, data):
    pools = viewer_client.get("/pools/?q=fd00::5").content
    hrefs = [a["href"] for a in select(pools, ".exports a")]
    assert hrefs and all("q=fd00%3A%3A5" in h for h in hrefs)
    leaks = viewer_client.get("/leaks/?state=suspect").content
    assert all("state=suspect" in a["href"] for a in select(leaks, ".exports a"))
    pool = viewer_client.get(f"/pools/{data['pool'].pk}/?q=10.0.0.17").content
    assert all("q=10.0.0.17" in a["href"] for a in select(pool, ".exports a"))


def test_exports_need_a_login_and_a_known_format(viewer_client, data):
    from django.test import Client

    assert Client().get("/pools/export.csv").status_code == 302
    assert viewer_client.get("/pools/export.xml").status_code == 404
