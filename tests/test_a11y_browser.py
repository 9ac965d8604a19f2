"""Accessibility in headless Chromium: axe-core (the engine behind Chrome's and Edge's
accessibility audits, shipped inside axe-playwright-python's wheel: no CDN) finds no WCAG 2.1
A/AA violation on any main page at desktop and phone width, and the keyboard alone walks
through the pool page, the NAD form and the reclaim flow."""

from __future__ import annotations

import re

import pytest

from ippam.models import Alert, Cluster, Finding, IPPool, NetworkAttachmentDefinition, Node

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# Outside WCAG but part of the gate: all content in landmarks, one main, no empty table
# header (axe's best practices; the rest of them are not enforced).
LANDMARK_RULES = {
    "region",
    "landmark-one-main",
    "landmark-no-duplicate-banner",
    "landmark-no-duplicate-contentinfo",
    "landmark-no-duplicate-main",
    "landmark-unique",
    "empty-table-header",
}
WIDTHS = (1400, 400)


@pytest.fixture
def demo(simcluster, settings):
    """simcluster's demo, synced and judged: pools with leaks, alerts, failures, nodes."""
    from ippam.leaks import leaks_detect
    from ippam.sync import cluster_sync_full

    settings.IPPAM_LEAK_GRACE_SECONDS = 0
    simcluster.load("demo", seed=1)
    cluster = Cluster.objects.create(
        name="demo", kubeconfig=simcluster.kubeconfig, context="simcluster", simulated=True
    )
    cluster_sync_full(cluster=cluster)
    leaks_detect(cluster=cluster)
    return cluster


@pytest.fixture
def admin_context(browser, live_server, make_user):
    """A logged-in admin's browser context on the live server (admins see every page)."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(make_user("admin1", "admin"))
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    context = browser.new_context(base_url=live_server.url)
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}]
    )
    context.set_default_timeout(15_000)
    yield context
    context.close()


def _main_pages(cluster: Cluster) -> dict[str, str]:
    """The pages the gate checks, by name; acknowledges one alert first, so that the alerts
    page shows both states and the audit page an entry."""
    from django.contrib.auth import get_user_model

    from ippam.models import Allocation
    from ippam.services.alerts import alerts_acknowledge

    leaked_pool = (
        IPPool.objects.filter(cluster=cluster, findings__state=Finding.State.LEAKED)
        .order_by("-utilization")
        .first()
    )
    nad = NetworkAttachmentDefinition.objects.filter(cluster=cluster).order_by("name").first()
    node = Node.objects.filter(cluster=cluster).order_by("name").first()
    allocation = Allocation.objects.filter(cluster=cluster, pod_name__gt="").order_by("ip")[0]
    admin = get_user_model().objects.get(username="admin1")
    alerts_acknowledge(alerts=Alert.objects.filter(cluster=cluster)[:1], user=admin, note="X-1")
    assert leaked_pool and nad and node
    return {
        "overview": "/",
        "pools": "/pools/",
        "pool": f"/pools/{leaked_pool.pk}/",
        "nads": "/nads/",
        "nad": f"/nads/{nad.pk}/",
        "nodes": "/nodes/",
        "node": f"/nodes/{node.pk}/",
        "leaks": "/leaks/",
        "alerts": "/alerts/",
        "audit": "/audit/",
        "nad-form": "/nads/new/",
        "search": f"/search/?q={allocation.ip}",
        "notifications": "/alerts/notifications/",
    }


def _describe(violations: list[dict]) -> list[str]:
    """One line per rule: its id, impact, how many elements, and the first few targets."""
    lines = []
    for v in violations:
        targets = [" ".join(map(str, node["target"])) for node in v["nodes"][:3]]
        summary = v["nodes"][0].get("failureSummary", "").replace("\n", " ")[:200]
        lines.append(f"{v['id']} ({v['impact']}) x{len(v['nodes'])}: {targets} -- {summary}")
    return lines


def axe_violations(tab) -> list[dict]:
    """What axe-core finds on the page as it is now: WCAG 2.1 A/AA and the landmark rules."""
    from axe_playwright_python.sync_playwright import Axe

    options = {"runOnly": {"type": "tag", "values": [*WCAG_21_AA, "best-practice"]}}
    violations = Axe().run(tab, options=options).response["violations"]
    return [v for v in violations if set(v["tags"]) & set(WCAG_21_AA) or v["id"] in LANDMARK_RULES]


def test_no_wcag_21_aa_violation_on_any_main_page(
    admin_context, demo, browser, live_server, settings, tmp_path, make_user
):
    pages = _main_pages(demo)
    tab = admin_context.new_page()
    found: dict[str, list[str]] = {}
    total = 0
    for width in WIDTHS:
        tab.set_viewport_size({"width": width, "height": 900})
        for name, path in pages.items():
            tab.goto(path)
            tab.wait_for_load_state("networkidle")  # regions htmx loads after the page
            violations = axe_violations(tab)
            # Reflow (WCAG 1.4.10): the page never scrolls sideways; wide tables and maps
            # scroll inside their card.
            page_width = tab.evaluate("() => document.documentElement.scrollWidth")
            if page_width > width:
                found[f"{name} @{width}px reflow"] = [f"the page is {page_width} px wide"]
            if violations:
                total += sum(len(v["nodes"]) for v in violations)
                found[f"{name} @{width}px"] = _describe(violations)
    # The login page, to someone not logged in yet, as the demo shows it: with the note
    # naming the generated admin login.
    from ippam.demo_login import DemoLogin, demo_login_write

    settings.DEBUG, settings.VAR_DIR = True, tmp_path
    generated = make_user("demo-admin", "admin")
    demo_login_write(
        tmp_path / "demo-login.json", DemoLogin("demo-admin", "pw-123", generated.password)
    )
    anonymous = browser.new_context(base_url=live_server.url)
    login = anonymous.new_page()
    for width in WIDTHS:
        login.set_viewport_size({"width": width, "height": 900})
        login.goto("/login/")
        assert "pw-123" in login.locator("#demo-login").inner_text()
        violations = axe_violations(login)
        if violations:
            total += sum(len(v["nodes"]) for v in violations)
            found[f"login @{width}px"] = _describe(violations)
    anonymous.close()
    report = "\n".join(f"{where}:\n  " + "\n  ".join(lines) for where, lines in found.items())
    assert not found, f"{total} WCAG 2.1 A/AA violations (elements):\n{report}"


# The keyboard alone: Tab moves focus forward (never a click), Enter follows a link or
# presses a button, Space ticks a checkbox, letters pick a <select>'s option, Escape closes
# a dialog.


def _focused(tab, selector: str) -> bool:
    return tab.evaluate(
        "s => !!document.activeElement && document.activeElement.matches(s)", selector
    )


def _focus_description(tab) -> str:
    return tab.evaluate(
        "() => { const e = document.activeElement; return e ? e.outerHTML.slice(0, 160) : '' }"
    )


def focus_settles_in(tab, selector: str) -> None:
    """Wait until focus is on (or inside) `selector`: a swap moves focus once htmx settles,
    and the browser drops focus from a removed element only at its next rendering step."""
    try:
        tab.wait_for_function(
            "s => { const e = document.activeElement; return !!e && e.isConnected && !!e.closest(s) }",
            arg=selector,
            timeout=5_000,
        )
    except Exception as error:
        raise AssertionError(
            f"focus never reached {selector}; it is on {_focus_description(tab)}"
        ) from error


def tab_to(tab, selector: str, limit: int = 120, backwards: bool = False) -> None:
    """Press Tab (Shift+Tab backwards) until the focused element matches `selector`: it is
    reachable, in order."""
    for _ in range(limit):
        tab.keyboard.press("Shift+Tab" if backwards else "Tab")
        if _focused(tab, selector):
            return
    raise AssertionError(
        f"{selector} not reached in {limit} Tab presses; focus ends on {_focus_description(tab)}"
    )


def test_keyboard_walks_the_pools_and_a_pool_page(admin_context):
    """Skip link, a sort header (focus kept, result announced), a pool, its heat map's block
    (zoomed in place, focus stays in the map), an address cell to the search."""
    from playwright.sync_api import expect

    from ippam.pool_blocks import pool_blocks_refresh
    from tests.factories import make_allocation, make_cluster, make_nad, make_pool, pool_recount

    c = make_cluster("c")
    big = make_pool(c, "10.64.0.0/16", nads=[make_nad(c, "big", range="10.64.0.0/16")])
    make_allocation(big, "10.64.3.7")
    pool_recount(big)
    small = make_pool(c, "10.9.0.0/24", nads=[make_nad(c, "small", range="10.9.0.0/24")])
    pool_recount(small)
    pool_blocks_refresh(cluster_id=c.pk)
    tab = admin_context.new_page()
    tab.goto("/pools/")

    # The first Tab shows the skip link; following it puts the next Tab inside <main>.
    tab.keyboard.press("Tab")
    assert _focused(tab, "a.skip-link"), _focus_description(tab)
    expect(tab.locator("a.skip-link")).to_be_visible()
    tab.keyboard.press("Enter")
    tab.keyboard.press("Tab")
    assert tab.evaluate("() => !!document.activeElement.closest('main')"), _focus_description(tab)

    # Sorting by range through htmx: the table is replaced, the focus stays on its header.
    tab_to(tab, 'th.sortable a[data-focus-key="sort-range"]')
    tab.keyboard.press("Enter")
    tab.wait_for_url("**/pools/?sort=range")
    expect(tab.locator("#live-region")).to_have_text("2 rows")
    focus_settles_in(tab, 'th.sortable a[data-focus-key="sort-range"]')
    # Back to the filter box: typing filters the table as you type; focus stays in the box.
    tab_to(tab, "#pools-filter input[name=q]", backwards=True)
    tab.keyboard.type("10.64")
    expect(tab.locator("#live-region")).to_have_text("1 row")
    assert _focused(tab, "#pools-filter input[name=q]"), _focus_description(tab)

    tab_to(tab, f'#pools-table a[href="/pools/{big.pk}/"]')
    tab.keyboard.press("Enter")
    tab.wait_for_url(f"**/pools/{big.pk}/")
    tab.evaluate("window.notReloaded = true")
    # The heat map (a /16: the demo's pools are small enough for the address map) passes too.
    assert _describe(axe_violations(tab)) == []

    tab_to(tab, '.heat-map a[data-block="10.64.3.0/24"]', limit=200)
    tab.keyboard.press("Enter")
    tab.wait_for_url(f"**/pools/{big.pk}/?block=10.64.3.0%2F24")
    expect(tab.locator('#pool-map [data-ip="10.64.3.7"]')).to_be_visible()
    assert tab.evaluate("window.notReloaded === true")  # swapped in place
    # The block is gone with the heat map: focus is on the map that replaced it, not lost.
    focus_settles_in(tab, "#pool-map")

    tab_to(tab, '#pool-map a.cell[data-ip="10.64.3.7"]', limit=40)
    tab.keyboard.press("Enter")
    tab.wait_for_url("**/search/?q=10.64.3.7")
    expect(tab.locator("main")).to_contain_text("10.64.3.7")


def test_keyboard_creates_a_nad(admin_context, simcluster):
    """The NAD form from the first field to the created NAD, by keyboard."""
    from playwright.sync_api import expect

    simcluster.load("empty")
    Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig, simulated=True)
    tab = admin_context.new_page()
    tab.goto("/nads/new/")

    tab_to(tab, "#id_cluster")
    tab.keyboard.type("sim")  # a <select> picks the option its label starts with
    expect(tab.locator("#id_cluster option:checked")).to_have_text("sim")
    tab_to(tab, "#id_name", limit=10)
    tab.keyboard.type("blue-net")
    tab_to(tab, "#id_cni_type", limit=10)
    tab.keyboard.type("ipvlan")
    expect(tab.locator('#cni-fields fieldset[data-cni="ipvlan"]')).to_be_visible()
    tab_to(tab, "#id_ipvlan_master", limit=10)
    tab.keyboard.type("eth1")
    tab_to(tab, "#id_wb_range", limit=20)
    tab.keyboard.type("10.90.0.0/24")
    expect(tab.locator("#nad-preview-yaml")).to_contain_text("name: blue-net")
    tab_to(tab, "#nad-submit", limit=60)
    tab.keyboard.press("Enter")
    tab.wait_for_url(re.compile(r"/nads/\d+/$"))  # "**/nads/*/" would match /nads/new/
    nad = NetworkAttachmentDefinition.objects.get(name="blue-net")
    assert tab.url.endswith(f"/nads/{nad.pk}/")
    assert simcluster.get("network-attachment-definitions", "default", "blue-net") is not None


def test_keyboard_acknowledges_and_reclaims(admin_context, demo, monkeypatch):
    """Alerts by keyboard: acknowledge one (result announced), then plan a reclamation in the
    dialog (focus moves in), execute it, and Escape returns focus to the button."""
    from playwright.sync_api import expect

    from ippam.leaks import tasks

    finding = Finding.objects.filter(
        cluster=demo, kind=Finding.Kind.ORPHANED_ALLOCATION, state=Finding.State.LEAKED
    ).first()
    leak_alert = Alert.objects.get(finding=finding)
    other = Alert.objects.filter(cluster=demo, state=Alert.State.OPEN).exclude(pk=leak_alert.pk)[0]
    queued: list[int] = []
    monkeypatch.setattr(tasks.reclaim_run, "apply_async", lambda args, **kw: queued.extend(args))
    tab = admin_context.new_page()
    tab.goto(f"/alerts/?cluster={demo.pk}")

    tab_to(tab, f'#alert-{other.pk} input[name="alert"]', limit=200)
    tab.keyboard.press("Space")
    tab_to(tab, "#ack-note", limit=200)
    tab.keyboard.type("OPS-9")
    tab_to(tab, "#ack-submit", limit=5)
    tab.keyboard.press("Enter")
    expect(tab.locator("#ack-result")).to_contain_text("Acknowledged 1 alert")
    expect(tab.locator(f"#alert-{other.pk}")).to_have_attribute("data-state", "acknowledged")

    tab.goto(f"/alerts/?cluster={demo.pk}")
    tab_to(tab, f'#alert-{leak_alert.pk} input[name="alert"]', limit=200)
    tab.keyboard.press("Space")
    tab_to(tab, "#reclaim-selected", limit=200)
    tab.keyboard.press("Enter")
    dialog = tab.locator("#reclaim-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#reclaim-plan-items")).to_contain_text(str(finding.ip))
    assert _describe(axe_violations(tab)) == []  # the page with its dialog open
    focus_settles_in(tab, "#reclaim-dialog")
    assert _focused(tab, "#reclaim-dialog")  # the dialog itself, not its first button
    tab_to(tab, "#reclaim-execute", limit=10)
    tab.keyboard.press("Enter")
    expect(tab.locator("#reclaim-progress")).to_contain_text("waiting for a Celery worker")
    # The pressed button went with the plan: focus is still in the dialog, not on the page.
    focus_settles_in(tab, "#reclaim-dialog")
    assert len(queued) == 1
    tasks.reclaim_run(queued[0])  # the worker's part, run here; the dialog keeps polling
    expect(tab.locator("#reclaim-progress")).to_have_attribute("data-state", "done")
    tab.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    focus_settles_in(tab, "#reclaim-selected")
