"""Accessibility in headless Chromium: axe-core (the engine behind Chrome's and Edge's
accessibility audits, shipped inside axe-playwright-python's wheel: no CDN) finds no WCAG 2.1
A/AA violation on any main page at desktop and phone width, and the keyboard alone walks
through the pool page, the NAD form and the reclaim flow."""

from __future__ import annotations

import pytest

from ippam.models import Alert, Cluster, Finding, IPPool, NetworkAttachmentDefinition, Node

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
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
    # An acknowledged alert: the alerts page shows both states and the audit page an entry.
    from django.contrib.auth import get_user_model

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
    }


def _describe(violations: list[dict]) -> list[str]:
    """One line per rule: its id, impact, how many elements, and the first few targets."""
    lines = []
    for v in violations:
        targets = [" ".join(map(str, node["target"])) for node in v["nodes"][:3]]
        summary = v["nodes"][0].get("failureSummary", "").replace("\n", " ")[:200]
        lines.append(f"{v['id']} ({v['impact']}) x{len(v['nodes'])}: {targets} -- {summary}")
    return lines


def test_no_wcag_21_aa_violation_on_any_main_page(admin_context, demo):
    from axe_playwright_python.sync_playwright import Axe

    pages = _main_pages(demo)
    axe = Axe()
    tab = admin_context.new_page()
    found: dict[str, list[str]] = {}
    total = 0
    for width in WIDTHS:
        tab.set_viewport_size({"width": width, "height": 900})
        for name, path in pages.items():
            tab.goto(path)
            tab.wait_for_load_state("networkidle")  # regions htmx loads after the page
            results = axe.run(tab, options={"runOnly": {"type": "tag", "values": WCAG_21_AA}})
            violations = results.response["violations"]
            if violations:
                total += sum(len(v["nodes"]) for v in violations)
                found[f"{name} @{width}px"] = _describe(violations)
    report = "\n".join(f"{where}:\n  " + "\n  ".join(lines) for where, lines in found.items())
    assert not found, f"{total} WCAG 2.1 A/AA violations (elements):\n{report}"
