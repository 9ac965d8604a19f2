"""No exported cell starts a spreadsheet formula (issue 21, item 5): text a cluster user
controls (a NAD's master, mode and resource name; a pod's interface name and MAC; a podref)
is written with a leading ' in every page export and in the API's CSV."""

from __future__ import annotations

import csv
import io

import pytest

from tests.factories import (
    make_allocation,
    make_cluster,
    make_finding,
    make_nad,
    make_pod,
    make_pool,
)

pytestmark = pytest.mark.django_db

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MASTER = "=cmd|' /C calc'!A0"
MODE = "+1+1"
RESOURCE = "@SUM(1+1)*cmd|' /C calc'!A0"
IFNAME = "-2+3+cmd|' /C calc'!A0"
MAC = "=1+1"
PODREF = '=HYPERLINK("http://evil")/pod'
REASON = "\tpasted"


@pytest.fixture
def hostile():
    cluster = make_cluster("prod")
    nad = make_nad(cluster, "blue", master=MASTER, mode=MODE, resource_name=RESOURCE)
    pool = make_pool(cluster, "10.0.0.0/24", nads=[nad])
    make_pod(cluster, "web-1", interfaces=[(IFNAME, nad, ["10.0.0.5"], MAC)])
    allocation = make_allocation(pool, "10.0.0.9", podref=PODREF, ifname=IFNAME)
    make_finding(cluster, allocation=allocation, reason=REASON)
    return pool


def cells(response) -> list[str]:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/csv")
    return [c for row in csv.reader(io.StringIO(response.content.decode())) for c in row]


def assert_neutralised(all_cells: list[str], expected: set[str]) -> None:
    assert not [c for c in all_cells if c.startswith(FORMULA_STARTS)]
    # The values are kept, readable, behind the quote.
    assert {f"'{value}" for value in expected} <= set(all_cells)


def test_the_pools_export(viewer_client, hostile):
    make_pool(hostile.cluster, "10.1.0.0/24", name="-pool")
    assert_neutralised(cells(viewer_client.get("/pools/export.csv")), {"-pool"})


def test_the_findings_export(viewer_client, hostile):
    assert_neutralised(cells(viewer_client.get("/leaks/export.csv")), {PODREF, REASON})


def test_the_pool_allocations_export(viewer_client, hostile):
    response = viewer_client.get(f"/pools/{hostile.pk}/allocations.csv")
    assert_neutralised(cells(response), {PODREF, IFNAME})


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("nads", {MASTER, MODE, RESOURCE}),
        ("interfaces", {IFNAME, MAC}),
        ("allocations", {PODREF, IFNAME}),
        ("findings", {PODREF, REASON}),
        ("pools", set()),
        ("clusters", set()),
        ("alerts", set()),
    ],
)
def test_the_api_csv_renderer(viewer_client, hostile, endpoint, expected):
    response = viewer_client.get(f"/api/v1/{endpoint}/", {"format": "csv"})
    assert_neutralised(cells(response), expected)


def test_numbers_are_written_as_numbers(viewer_client, hostile):
    from dashboard.api.renderers import cell

    assert (cell(-3), cell(-1.5), cell("-3")) == ("-3", "-1.5", "'-3")
