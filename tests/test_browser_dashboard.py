"""Headless Chromium through the read-only dashboard on simcluster's demo: log in, the
overview, from the fullest pool to its map to a leaked address and its pod, switching
cluster, searching an IP. Each main page is saved under screenshots/ for a person to see."""

from __future__ import annotations

import pytest

from ippam.models import Cluster, Finding, IPPool, Pod
from tests.browser import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(simcluster, settings, make_user):
    from ippam.leaks import leaks_detect
    from ippam.sync import cluster_sync_full

    settings.IPPAM_LEAK_GRACE_SECONDS = 0
    simcluster.load("demo", seed=1)
    cluster = Cluster.objects.create(
        name="demo", kubeconfig=simcluster.kubeconfig, context="simcluster", simulated=True
    )
    cluster_sync_full(cluster=cluster)
    leaks_detect(cluster=cluster)
    Cluster.objects.create(name="lab", kubeconfig="/nonexistent/kubeconfig")  # never synced
    user = make_user("alice", "viewer")
    user.set_password("alice-pw-123")
    user.save()
    return cluster


def test_overview_drill_down_to_a_leaked_address_and_its_pod(page, live_server, demo):
    from playwright.sync_api import expect

    log_in(page, live_server.url, "alice", "alice-pw-123")
    expect(page.locator("h1").first).to_contain_text("Overview")
    expect(page.locator("body")).to_contain_text("simulated")
    screenshot(page, "overview")

    fullest = IPPool.objects.filter(cluster=demo).order_by("-utilization").first()
    page.goto(f"{live_server.url}/pools/?sort=-utilization")
    first_row = page.locator("#pools-table tbody tr").first
    expect(first_row).to_have_id(f"pool-{fullest.pk}")
    screenshot(page, "pools")

    first_row.locator("a").first.click()
    page.wait_for_url(f"{live_server.url}/pools/{fullest.pk}/")
    leaked_pool = (
        IPPool.objects.filter(
            cluster=demo, findings__state=Finding.State.LEAKED, findings__ip__isnull=False
        )
        .order_by("-utilization")
        .first()
    )
    if leaked_pool.pk != fullest.pk:
        screenshot(page, "pool-fullest")
        page.goto(f"{live_server.url}/pools/{leaked_pool.pk}/")
    expect(page.locator(".alloc-map")).to_be_visible()
    # The free-address region arrives on its own request once the page has loaded.
    expect(page.locator("#pool-free-blocks, #pool-free .empty").first).to_be_visible()
    screenshot(page, "pool-map")

    leaked_cell = page.locator(".alloc-map .cell.leaked").first
    expect(leaked_cell).to_be_visible()
    leaked_ip = leaked_cell.get_attribute("data-ip")
    finding = Finding.objects.filter(
        cluster=demo, pool=leaked_pool, state=Finding.State.LEAKED, ip=leaked_ip
    ).first()
    assert finding is not None, f"map shows {leaked_ip} as leaked but no finding says so"
    leaked_cell.click()
    page.wait_for_url(f"**/search/?q={leaked_ip}")
    expect(page.locator("#content")).to_contain_text(leaked_ip)
    expect(page.locator("#content")).to_contain_text(finding.podref)
    screenshot(page, "search-leaked-address")

    pod_namespace, pod_name = finding.podref.split("/")
    if Pod.objects.filter(cluster=demo, namespace=pod_namespace, name=pod_name).exists():
        # The holder still exists (a stale allocation): its row links on to the pod's node.
        holder = page.locator("#content a", has_text=pod_name).first
        expect(holder).to_be_visible()
        holder.click()
        expect(page.locator("#content")).to_contain_text(pod_name)


def test_switch_cluster_and_search_an_ip(page, live_server, demo):
    from playwright.sync_api import expect

    log_in(page, live_server.url, "alice", "alice-pw-123")
    page.select_option("#cluster-select", "lab")
    page.wait_for_url("**cluster=lab**")
    expect(page.locator("#cluster-select")).to_have_value("lab")
    expect(page.locator("body")).to_contain_text("never synced")
    screenshot(page, "overview-never-synced")

    page.select_option("#cluster-select", "demo")
    expect(page.locator("#cluster-select")).to_have_value("demo")

    from ippam.models import Allocation

    allocation = Allocation.objects.filter(cluster=demo, pod_name__gt="").order_by("ip").first()
    page.fill("#search-box input[name=q]", str(allocation.ip))
    page.press("#search-box input[name=q]", "Enter")
    page.wait_for_url(f"**/search/?q={allocation.ip}")
    expect(page.locator("#content")).to_contain_text(allocation.pool.name)
    expect(page.locator("#content")).to_contain_text(allocation.podref)
    screenshot(page, "search")

    for path, name in (("/nads/", "nads"), ("/nodes/", "nodes"), ("/leaks/", "leaks")):
        page.goto(f"{live_server.url}{path}")
        expect(page.locator("#content")).to_be_visible()
        screenshot(page, name)


def test_heat_map_block_zooms_in_place(page, live_server, make_user):
    """A /16's heat-map block swaps the map for that /24's cells in place (htmx: the
    target, swap and URL push are the map's, inherited by its 256 links) and its URL is
    pushed, so back and a reload show the same."""
    from playwright.sync_api import expect

    from ippam.pool_blocks import pool_blocks_refresh
    from tests.factories import make_allocation, make_cluster, make_nad, make_pool, pool_recount

    c = make_cluster("c")
    pool = make_pool(c, "10.64.0.0/16", nads=[make_nad(c, "big", range="10.64.0.0/16")])
    make_allocation(pool, "10.64.3.7")
    pool_recount(pool)
    pool_blocks_refresh(cluster_id=c.pk)
    user = make_user("bob", "viewer")
    user.set_password("bob-pw-123")
    user.save()
    log_in(page, live_server.url, "bob", "bob-pw-123")
    page.goto(f"{live_server.url}/pools/{pool.pk}/")
    page.evaluate("window.notReloaded = true")
    page.locator('.heat-map a[data-block="10.64.3.0/24"]').click()
    page.wait_for_url(f"{live_server.url}/pools/{pool.pk}/?block=10.64.3.0%2F24")
    expect(page.locator("#pool-map .alloc-map")).to_be_visible()
    expect(page.locator('#pool-map [data-ip="10.64.3.7"]')).to_have_class("cell allocated")
    assert page.evaluate("window.notReloaded === true")  # swapped, not a page load
    assert page.locator("h1").count() == 1
