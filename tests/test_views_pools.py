"""Pools: the sortable, filterable table; the pool page with its map and allocations."""

from __future__ import annotations

import re

import pytest

from ippam.pool_blocks import pool_blocks_refresh
from tests.factories import (
    make_allocation,
    make_cluster,
    make_demo,
    make_event,
    make_finding,
    make_nad,
    make_node,
    make_pod,
    make_pool,
    pool_recount,
)

pytestmark = pytest.mark.django_db


# --- list ---------------------------------------------------------------------------------


def test_pool_list_full_page(viewer_client, django_assert_max_num_queries):
    demo = make_demo()
    with django_assert_max_num_queries(11):
        response = viewer_client.get("/pools/")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    assert 'id="pools-table"' in html
    assert "10.10.0.0/24" in html and "default/macvlan-a" in html
    assert f'href="/leaks/?pool={demo["pools"][0].pk}"' in html  # leak count links to the leaks


def test_pool_list_fragment(viewer_client, django_assert_max_num_queries):
    make_demo()
    with django_assert_max_num_queries(11):
        response = viewer_client.get("/pools/", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<html" not in html
    assert html.strip().startswith('<div id="pools-table"')


def test_pool_list_empty(viewer_client):
    make_cluster("c", synced=False)
    html = viewer_client.get("/pools/").content.decode()
    assert "No IPPools synced yet" in html


def test_pool_list_no_match(viewer_client):
    make_demo()
    html = viewer_client.get("/pools/?q=nothing-like-this", HTTP_HX_REQUEST="true").content.decode()
    assert "No pool matches" in html


@pytest.mark.parametrize(
    "sort, first",
    [
        ("utilization", "10.0.1.0/24"),
        ("-utilization", "10.0.3.0/24"),
        ("range", "10.0.1.0/24"),
        ("-range", "10.0.3.0/24"),
        ("-leaks", "10.0.2.0/24"),
        ("free", "10.0.3.0/24"),
    ],
)
def test_pool_list_sorts(viewer_client, sort, first):
    c = make_cluster("c")
    make_pool(c, "10.0.1.0/24", usable=100, allocated=1)
    p2 = make_pool(c, "10.0.2.0/24", usable=100, allocated=50)
    make_pool(c, "10.0.3.0/24", usable=100, allocated=99)
    make_finding(c, pool=p2, ip="10.0.2.9")
    html = viewer_client.get(f"/pools/?sort={sort}", HTTP_HX_REQUEST="true").content.decode()
    ranges = re.findall(r">(10\.0\.\d\.0/24)</a>", html)
    assert ranges[0] == first


@pytest.mark.parametrize(
    "params",
    [
        "sort=nonsense",
        "sort=-",
        "page=abc",
        "page=99999",
        "page=-1",
        "q=%00%ff",
        "q=10.0.0.0/99",
        "q=::::",
    ],
)
def test_pool_list_bad_params_never_fail(viewer_client, params):
    make_demo()
    assert viewer_client.get(f"/pools/?{params}").status_code == 200


@pytest.mark.parametrize(
    "q, hit, miss",
    [
        ("10.10.0.77", "10.10.0.0/24", "10.20.0.0/28"),
        ("10.20.0.0/16", "10.20.0.0/28", "10.10.0.0/24"),
        ("ipvlan", "10.20.0.0/28", "10.10.0.0/24"),
    ],
)
def test_pool_list_filters_by_ip_cidr_and_nad(viewer_client, q, hit, miss):
    make_demo()
    html = viewer_client.get(f"/pools/?q={q}", HTTP_HX_REQUEST="true").content.decode()
    assert hit in html and miss not in html


def test_pool_list_pages_with_fixed_query_count(viewer_client, django_assert_max_num_queries):
    c = make_cluster("c")
    nad = make_nad(c, "n", range=None)
    for i in range(120):
        pool = make_pool(c, f"10.{i // 200}.{i % 200}.0/24", allocated=i % 100)
        make_finding(c, pool=pool, ip=f"10.{i // 200}.{i % 200}.5")
    del nad
    with django_assert_max_num_queries(11):
        html = viewer_client.get("/pools/?page=2").content.decode()
    assert "page 2 of 3" in html
    assert len(re.findall(r'<tr id="pool-', html)) == 50
    assert 'href="/pools/?page=3"' in html and 'hx-get="/pools/?page=3"' in html


def test_pool_list_sort_links_keep_the_filter(viewer_client):
    make_demo()
    html = viewer_client.get("/pools/?q=10.10").content.decode()
    assert 'href="/pools/?q=10.10&amp;sort=utilization"' in html


# --- detail -------------------------------------------------------------------------------


def test_pool_detail_full_page(viewer_client, django_assert_max_num_queries):
    demo = make_demo()
    pool = demo["pools"][0]
    # session, user, the viewer's permissions (2), clusters; the pool with its NAD ranges
    # and leak count (one statement); the cell map's allocations, findings and recently
    # freed; the table's rows with their pods, nodes and findings (one statement); history
    # and recently freed (one statement). The free addresses and the failures come on their
    # own requests.
    with django_assert_max_num_queries(12):  # +1: the sync bar's watcher retry state
        response = viewer_client.get(f"/pools/{pool.pk}/")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    for needle in (
        'id="pool-map"',
        'class="alloc-map',
        'id="pool-allocations"',
        'id="pool-failures"',
        "default/web-0",
    ):
        assert needle in html


def test_pool_map_cells_have_states_and_tooltips(viewer_client):
    demo = make_demo()
    pool = demo["pools"][0]  # 10.10.0.0/24 from 10.10.0.10, excluding 10.10.0.100/30, gateway .1
    html = viewer_client.get(
        f"/pools/{pool.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="pool-map"
    ).content.decode()
    assert html.strip().startswith('<section id="pool-map"')
    cells = re.findall(r'class="cell ([\w ]+)"[^>]*title="([^"]*)"[^>]*data-ip="([^"]+)"', html)
    assert len(cells) == 256
    state = {ip: s for s, _, ip in cells}
    title = {ip: t for _, t, ip in cells}
    assert state["10.10.0.0"] == "network" and state["10.10.0.255"] == "broadcast"
    assert state["10.10.0.1"] == "gateway excluded"  # before range_start: never handed out
    assert state["10.10.0.5"] == "excluded"  # before range_start
    assert state["10.10.0.101"] == "excluded"  # in exclude
    assert state["10.10.0.10"] == "allocated" and "default/web-0" in title["10.10.0.10"]
    assert state["10.10.0.50"] == "leaked" and "default/web-gone" in title["10.10.0.50"]
    assert state["10.10.0.51"] == "suspect"
    assert state["10.10.0.200"] == "free"
    assert 'class="legend"' in html


def test_leaked_cell_links_to_the_address(viewer_client):
    demo = make_demo()
    html = viewer_client.get(f"/pools/{demo['pools'][0].pk}/").content.decode()
    assert re.search(r'<a class="cell leaked" href="/search/\?q=10\.10\.0\.50"', html)


def test_large_pool_gets_a_heat_map_that_drills_down(viewer_client, django_assert_max_num_queries):
    c = make_cluster("c")
    nad = make_nad(c, "big", range="10.64.0.0/16")
    pool = make_pool(c, "10.64.0.0/16", nads=[nad])
    for ip in ("10.64.0.5", "10.64.0.6", "10.64.3.7", "10.64.255.1"):
        make_allocation(pool, ip)
    leaked = make_allocation(pool, "10.64.3.9")
    make_finding(c, allocation=leaked)
    pool_recount(pool)
    pool_blocks_refresh(cluster_id=c.pk)  # as the sync does after writing allocations
    # the heat map is one statement (blocks and findings); see test_pool_detail_full_page
    with django_assert_max_num_queries(10):  # +1: the sync bar's watcher retry state
        html = viewer_client.get(f"/pools/{pool.pk}/").content.decode()
    assert 'class="heat-map"' in html and 'class="alloc-map' not in html
    blocks = re.findall(r'<a class="block ([^"]+)" href="([^"]+)"[^>]*data-block="([^"]+)"', html)
    assert len(blocks) == 256
    by_block = {b: cls for cls, _, b in blocks}
    assert blocks[3][1] == f"/pools/{pool.pk}/?block=10.64.3.0%2F24"
    assert "has-leaks" in by_block["10.64.3.0/24"]
    assert by_block["10.64.0.0/24"].startswith("heat-1")
    assert by_block["10.64.9.0/24"].startswith("heat-0")
    html = viewer_client.get(
        f"/pools/{pool.pk}/?block=10.64.3.0/24", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="pool-map"
    ).content.decode()
    assert 'class="alloc-map' in html
    assert re.search(r'class="cell leaked"[^>]*data-ip="10\.64\.3\.9"', html)
    assert "up to the whole pool" in html


def test_very_large_pool_heat_map_uses_coarser_blocks(viewer_client):
    c = make_cluster("c")
    pool = make_pool(c, "10.0.0.0/8")
    make_allocation(pool, "10.1.2.3")
    pool_blocks_refresh(cluster_id=c.pk)
    html = viewer_client.get(f"/pools/{pool.pk}/").content.decode()
    assert len(re.findall(r'class="block heat', html)) == 256 + 5  # blocks + legend
    html = viewer_client.get(f"/pools/{pool.pk}/?block=10.1.0.0/16").content.decode()
    assert "10.1.2.0/24" in html


@pytest.mark.parametrize(
    "block", ["nonsense", "192.168.0.0/24", "10.10.0.0/8", "fd00::/120", "10.10.0.0/99"]
)
def test_pool_map_ignores_blocks_outside_the_pool(viewer_client, block):
    demo = make_demo()
    response = viewer_client.get(f"/pools/{demo['pools'][0].pk}/", {"block": block})
    assert response.status_code == 200
    assert len(re.findall(r'class="cell [\w ]+"[^>]*data-ip', response.content.decode())) == 256


def test_ipv6_pool_map(viewer_client):
    c = make_cluster("c")
    nad = make_nad(c, "v6", range="fd00:10::/120")
    pool = make_pool(c, "fd00:10::/120", nads=[nad])
    make_allocation(pool, "fd00:10::5")
    html = viewer_client.get(f"/pools/{pool.pk}/").content.decode()
    assert re.search(r'class="cell allocated"[^>]*data-ip="fd00:10::5"', html)
    pool64 = make_pool(c, "fd00:20::/64")
    assert viewer_client.get(f"/pools/{pool64.pk}/").status_code == 200


def test_pool_allocations_fragment_search_and_states(viewer_client, django_assert_max_num_queries):
    demo = make_demo()
    pool = demo["pools"][0]
    with django_assert_max_num_queries(6):
        response = viewer_client.get(f"/pools/{pool.pk}/?q=web-gone", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.strip().startswith('<div id="pool-allocations"')
    assert "10.10.0.50" in html and "10.10.0.10<" not in html
    assert ">leaked<" in html
    html = viewer_client.get(
        f"/pools/{pool.pk}/?q=10.10.0.12", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "default/web-2" in html and "worker-1" in html
    html = viewer_client.get(
        f"/pools/{demo['pools'][1].pk}/", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert ">terminating<" in html and ">no pod<" in html


def test_pool_allocations_page_query_count_is_fixed(viewer_client, django_assert_max_num_queries):
    c = make_cluster("c")
    node = make_node(c, "n1")
    nad = make_nad(c, "a", range="10.0.0.0/22")
    pool = make_pool(c, "10.0.0.0/22", nads=[nad])
    for i in range(1, 130):
        ip = f"10.0.{i // 256}.{i % 256}"
        pod = make_pod(c, f"p{i}", node=node, interfaces=[("net1", nad, [ip], "")])
        a = make_allocation(pool, ip, pod=pod)
        if i % 10 == 0:
            make_finding(c, allocation=a)
    pool_recount(pool)
    with django_assert_max_num_queries(
        12
    ):  # +watcher retry state on the sync bar; as test_pool_detail_full_page, for any page
        html = viewer_client.get(f"/pools/{pool.pk}/?page=2").content.decode()
    assert "page 2 of 3" in html
    assert html.count('<tr id="alloc-') == 50


def test_pool_allocations_fragment_needs_no_map_nor_count(viewer_client):
    """Paging the table renders only the table: no heat map, and the pool's `allocated`
    counter (kept by sync) stands in for a COUNT(*) of its allocations."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    c = make_cluster("c")
    nad = make_nad(c, "big", range="10.64.0.0/16")
    pool = make_pool(c, "10.64.0.0/16", nads=[nad])
    for i in range(1, 121):
        make_allocation(pool, f"10.64.{i // 100}.{i % 100}")
    pool_recount(pool)
    with CaptureQueriesContext(connection) as ctx:
        html = viewer_client.get(
            f"/pools/{pool.pk}/?page=2", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="pool-allocations"
        ).content.decode()
    assert html.strip().startswith('<div id="pool-allocations"')
    assert "page 2 of 3 · 120 rows" in html and html.count('<tr id="alloc-') == 50
    sql = " ".join(q["sql"] for q in ctx.captured_queries).lower()
    assert "count(" not in sql and "substr" not in sql and "ippam_nadrange" not in sql
    # A filter is counted for real.
    html = viewer_client.get(
        f"/pools/{pool.pk}/?q=10.64.1.0/24", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "21 rows" in html  # 10.64.1.0 to 10.64.1.20


def test_pool_map_fragment_needs_no_table(viewer_client, django_assert_max_num_queries):
    demo = make_demo()
    pool = demo["pools"][0]
    with django_assert_max_num_queries(8):  # +1: the map's recently freed addresses
        html = viewer_client.get(
            f"/pools/{pool.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="pool-map"
        ).content.decode()
    assert html.strip().startswith('<section id="pool-map"')
    assert 'id="pool-allocations"' not in html and "alloc-map" in html


def test_allocation_rows_html(viewer_client):
    """The rows the `alloc_rows` tag builds: states, node link or name, defaults, escaping."""
    demo = make_demo()
    html = viewer_client.get(
        f"/pools/{demo['pools'][0].pk}/", HTTP_HX_REQUEST="true"
    ).content.decode()
    row = re.search(r'<tr id="alloc-[^"]+" class="state-allocated">.*?</tr>', html, re.S)
    assert row is not None
    assert re.search(r'<td><a href="/nodes/\d+/">worker-\d</a></td>', row.group(0))
    assert '<span class="badge st-allocated">allocated</span>' in row.group(0)
    leaked = re.search(r'<tr id="alloc-[^"]+" class="state-leaked">.*?</tr>', html, re.S)
    assert leaked is not None and 'class="badge st-leaked" title="' in leaked.group(0)
    html = viewer_client.get(
        f"/pools/{demo['pools'][1].pk}/", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'class="state-no-pod"' in html and '<span class="badge st-no-pod"' in html
    assert '<td><span class="muted">—</span></td>' in html


def test_pool_allocations_empty(viewer_client):
    c = make_cluster("c")
    pool = make_pool(c, "10.0.0.0/24")
    html = viewer_client.get(f"/pools/{pool.pk}/").content.decode()
    assert "Nothing is allocated from this pool" in html
    html = viewer_client.get(f"/pools/{pool.pk}/?failures=1").content.decode()
    assert "No attachment failures" in html


def test_pool_attachment_failures_come_on_their_own_request(
    viewer_client, django_assert_max_num_queries
):
    """The last card loads after the page (htmx on load); without JavaScript a link
    (?failures=1) renders the page with it inline."""
    demo = make_demo()
    url = f"/pools/{demo['pools'][1].pk}/"
    page = viewer_client.get(url).content.decode()
    card = re.search(r'<section class="card" id="pool-failures"[^>]*>.*?</section>', page, re.S)
    assert card is not None and "The pool is full" not in page
    assert f'hx-get="{url}" hx-trigger="load" hx-swap="outerHTML"' in card.group(0)
    assert 'href="?failures=1#pool-failures"' in card.group(0)
    with django_assert_max_num_queries(5):  # session, user, clusters, the pool, the failures
        fragment = viewer_client.get(
            url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="pool-failures"
        ).content.decode()
    assert fragment.strip().startswith('<section class="card" id="pool-failures">')
    assert "The pool is full" in fragment and "hx-get" not in fragment
    inline = viewer_client.get(f"{url}?failures=1").content.decode()
    assert "The pool is full" in inline and 'id="pool-map"' in inline


def test_pool_missing_is_404(viewer_client):
    assert viewer_client.get("/pools/999999/").status_code == 404
    assert viewer_client.get("/pools/abc/").status_code == 404


def test_pool_with_unparsable_range_still_renders(viewer_client):
    c = make_cluster("c")
    pool = make_pool(c, "10.0.0.0/24")
    type(pool).objects.filter(pk=pool.pk).update(range="garbage")
    html = viewer_client.get(f"/pools/{pool.pk}/").content.decode()
    assert "is not a CIDR" in html


def test_pool_failures_listed(viewer_client):
    c = make_cluster("c")
    pool = make_pool(c, "10.0.0.0/24")
    make_event(
        c,
        pod_name="x",
        pool=pool,
        message='plugin type="macvlan" failed (add): failed to lookup master "ens9": Link not found',
    )
    html = viewer_client.get(
        f"/pools/{pool.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="pool-failures"
    ).content.decode()
    assert (
        "The master interface &quot;ens9&quot; named by the NAD does not exist on this node."
        in html
    )


def test_allocation_filter_keeps_the_zoomed_block(viewer_client):
    c = make_cluster("c")
    pool = make_pool(c, "10.64.0.0/16", nads=[make_nad(c, "big", range="10.64.0.0/16")])
    html = viewer_client.get(f"/pools/{pool.pk}/?block=10.64.3.0/24").content.decode()
    assert '<input type="hidden" name="block" value="10.64.3.0/24">' in html
    html = viewer_client.get(f"/pools/{pool.pk}/").content.decode()
    assert 'name="block"' not in html
