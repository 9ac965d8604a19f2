"""Overview: totals, fullest pools with coloured bars, alerts, sync health, attachment failures."""

from __future__ import annotations

import pytest

from tests.factories import (
    make_cluster,
    make_demo,
    make_event,
    make_pool,
)

pytestmark = pytest.mark.django_db

REGIONS = [
    "overview-totals",
    "overview-pools",
    "overview-alerts",
    "overview-sync",
    "overview-failures",
]

# session, user and clusters, then each region's own: one statement at most
REGION_QUERIES = {
    "overview-totals": 4,
    "overview-pools": 4,
    "overview-alerts": 4,
    "overview-sync": 4,  # +1: the watchers' retry state
    "overview-failures": 4,
}


def test_overview_full_page(viewer_client, django_assert_max_num_queries):
    make_demo()
    with django_assert_max_num_queries(
        10
    ):  # +2: the sync bar's and the sync region's watcher retry state; the failures come on their own request
        response = viewer_client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" in html
    for region in REGIONS:
        assert f'id="{region}"' in html
    assert 'hx-trigger="every 10s"' in html
    assert "10.20.0.0/28" in html and "10.10.0.0/24" in html
    assert "1 orphaned allocation" in html and "1 pool exhausted" in html


def test_overview_pools_sorted_by_utilization_with_bar_colours(viewer_client):
    c = make_cluster("c")
    make_pool(c, "10.0.1.0/24", usable=100, allocated=10)
    make_pool(c, "10.0.2.0/24", usable=100, allocated=75)
    make_pool(c, "10.0.3.0/24", usable=100, allocated=90)
    make_pool(c, "10.0.4.0/24", usable=100, allocated=74)
    html = viewer_client.get(
        "/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="overview-pools"
    ).content.decode()
    order = [html.index(r) for r in ("10.0.3.0/24", "10.0.2.0/24", "10.0.4.0/24", "10.0.1.0/24")]
    assert order == sorted(order)
    assert 'class="bar bad" title="90% used"' in html
    assert 'class="bar warn" title="75% used"' in html
    assert 'class="bar ok" title="74% used"' in html
    assert 'class="bar ok" title="10% used"' in html


@pytest.mark.parametrize("region", REGIONS)
def test_overview_polled_region_is_a_fragment(viewer_client, region, django_assert_max_num_queries):
    make_demo()
    # A polled region computes its own data only.
    with django_assert_max_num_queries(REGION_QUERIES[region]):
        response = viewer_client.get("/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET=region)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert html.strip().startswith(f'<section id="{region}"')
    assert 'hx-trigger="every 10s"' in html  # keeps polling after the swap


def test_overview_htmx_without_known_target_gets_the_body(viewer_client):
    make_demo()
    html = viewer_client.get("/", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html and 'id="overview-body"' in html


def test_overview_history_restore_gets_the_full_page(viewer_client):
    html = viewer_client.get(
        "/", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    ).content.decode()
    assert "<html" in html


def test_overview_empty(viewer_client):
    make_cluster("empty", synced=False)
    html = viewer_client.get("/").content.decode()
    assert "No IPPools synced yet" in html
    assert "No open alerts" in html
    assert "No attachment failures" in viewer_client.get("/?failures=1").content.decode()
    assert "never synced" in html


def test_overview_attachment_failure_in_plain_words_with_links(viewer_client):
    demo = make_demo()
    html = viewer_client.get(
        "/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="overview-failures"
    ).content.decode()
    assert "The pool is full" in html
    assert f'href="/nads/{demo["nads"][1].pk}/"' in html
    assert f'href="/pools/{demo["pools"][1].pk}/"' in html
    assert "Could not allocate IP in range" in html  # the raw error, folded


def test_overview_failures_load_after_the_page(viewer_client):
    """The failures region is empty in the page and loads itself (htmx on load), then polls
    like the others; without JavaScript ?failures=1 renders it inline."""
    make_demo()
    html = viewer_client.get("/").content.decode()
    section = html[html.index('<section id="overview-failures"') :]
    section = section[: section.index("</section>")]
    assert 'hx-trigger="load"' in section and "The pool is full" not in html
    assert 'href="?failures=1#overview-failures"' in section
    fragment = viewer_client.get(
        "/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="overview-failures"
    ).content.decode()
    assert 'hx-trigger="every 10s"' in fragment and "The pool is full" in fragment
    inline = viewer_client.get("/?failures=1").content.decode()
    assert "The pool is full" in inline and 'id="overview-totals"' in inline


def test_overview_queries_do_not_grow_with_rows(viewer_client, django_assert_max_num_queries):
    c = make_cluster("c")
    for i in range(40):
        make_pool(c, f"10.1.{i}.0/24", allocated=i)
        make_event(c, pod_name=f"p{i}")
    with django_assert_max_num_queries(
        10
    ):  # +2: the watcher retry state, in the sync bar and the sync region
        assert viewer_client.get("/").status_code == 200
    with django_assert_max_num_queries(
        11
    ):  # +2: the watcher retry state, in the sync bar and the sync region
        assert viewer_client.get("/?failures=1").status_code == 200


def test_overview_allocations_total_is_the_pools_counters(viewer_client):
    """The total sums each pool's `allocated` (kept by sync), never counting Allocation rows."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    a, b = make_cluster("alpha"), make_cluster("beta")
    make_pool(a, "10.1.0.0/24", usable=254, allocated=1200)
    make_pool(a, "10.1.1.0/24", usable=254, allocated=34)
    make_pool(b, "10.2.0.0/24", usable=254, allocated=7)
    with CaptureQueriesContext(connection) as ctx:
        html = viewer_client.get(
            "/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="overview-totals"
        ).content.decode()
    assert "<b>1,241</b><span>allocations</span>" in html
    assert "<b>3</b><span>pools</span>" in html
    assert not any("ippam_allocation" in q["sql"] for q in ctx.captured_queries)
    html = viewer_client.get(
        "/?cluster=alpha", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="overview-totals"
    ).content.decode()
    assert "<b>1,234</b><span>allocations</span>" in html
    make_cluster("empty")
    html = viewer_client.get(
        "/?cluster=empty", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="overview-totals"
    ).content.decode()
    assert "<b>0</b><span>allocations</span>" in html


def test_overview_scoped_to_selected_cluster(viewer_client):
    a, b = make_cluster("alpha"), make_cluster("beta")
    make_pool(a, "10.1.0.0/24")
    make_pool(b, "10.2.0.0/24")
    html = viewer_client.get("/?cluster=alpha").content.decode()
    assert "10.1.0.0/24" in html and "10.2.0.0/24" not in html
