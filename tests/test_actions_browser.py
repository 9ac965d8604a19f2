"""Headless Chromium through the acting pages: the htmx wiring (fieldset swap, live preview,
inline acknowledgement, reclaim dialog and progress) works in a real browser."""

from __future__ import annotations

import pytest

from ippam.models import Alert, Cluster, NetworkAttachmentDefinition

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def page(browser, live_server, make_user):
    """An admin's tab on the live server (the shared headless Chromium of tests/browser.py)."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(make_user("admin1", "admin"))
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    context = browser.new_context(base_url=live_server.url)
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}]
    )
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


def test_create_a_nad_with_live_preview(page, simcluster):
    from playwright.sync_api import expect

    simcluster.load("empty")
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig, simulated=True)
    page.goto("/nads/new/")
    page.select_option("#id_cluster", str(cluster.pk))
    page.fill("#id_name", "blue-net")
    page.select_option("#id_cni_type", "ipvlan")
    expect(page.locator("#cni-fields fieldset")).to_have_count(1)
    expect(page.locator('#cni-fields fieldset[data-cni="ipvlan"]')).to_be_visible()
    page.fill("#id_ipvlan_master", "eth1")
    page.fill("#id_wb_range", "10.90.0.0/24")
    page.fill("#id_wb_gateway", "10.90.0.1")
    expect(page.locator("#nad-preview-yaml")).to_contain_text("name: blue-net")
    expect(page.locator("#nad-preview-yaml")).to_contain_text('"master": "eth1"')
    expect(page.locator("#msg-wb_gateway")).to_contain_text("inside the allocatable range")
    expect(page.locator("#nad-preview-kubectl")).to_contain_text("kubectl apply -f - <<'EOF'")
    page.fill("#id_name", "Blue Net")
    expect(page.locator("#msg-name")).to_contain_text("is not a valid name")
    page.fill("#id_name", "blue-net")
    expect(page.locator("#msg-name")).to_be_empty()
    page.click("#nad-submit")
    page.wait_for_url("**/nads/*/")
    nad = NetworkAttachmentDefinition.objects.get(name="blue-net")
    assert page.url.endswith(f"/nads/{nad.pk}/")
    assert simcluster.get("network-attachment-definitions", "default", "blue-net") is not None
    page.goto("/nads/")
    expect(page.locator("main")).to_contain_text("blue-net")


def test_acknowledge_inline(page):
    from playwright.sync_api import expect

    from tests.factories import make_alert, make_cluster

    cluster = make_cluster("prod")
    a1, a2 = make_alert(cluster, message="first"), make_alert(cluster, message="second")
    page.goto("/alerts/")
    page.check(f'#alert-{a1.pk} input[name="alert"]')
    page.check(f'#alert-{a2.pk} input[name="alert"]')
    page.fill("#ack-note", "OPS-7")
    page.click("#ack-submit")
    expect(page.locator("#ack-result")).to_contain_text("Acknowledged 2 alerts.")
    expect(page.locator(f"#alert-{a1.pk}")).to_have_attribute("data-state", "acknowledged")
    expect(page.locator(f"#alert-{a2.pk}")).to_contain_text("OPS-7")
    assert Alert.objects.filter(state=Alert.State.ACKNOWLEDGED).count() == 2


def test_reclaim_from_dry_run_to_done(page, simcluster, settings, monkeypatch):
    from playwright.sync_api import expect

    from ippam.leaks import leaks_detect, tasks
    from ippam.models import Finding
    from ippam.sync import cluster_sync_full

    settings.IPPAM_LEAK_GRACE_SECONDS = 0
    simcluster.load("demo", seed=1)
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig, simulated=True)
    cluster_sync_full(cluster=cluster)
    leaks_detect(cluster=cluster)
    finding = Finding.objects.filter(
        cluster=cluster, kind=Finding.Kind.ORPHANED_ALLOCATION, state=Finding.State.LEAKED
    ).first()
    alert = Alert.objects.get(finding=finding)
    # The test plays the Celery worker (on its own thread, which shares the live server's
    # in-memory database); the page polls until the run is done.
    queued: list[int] = []
    monkeypatch.setattr(tasks.reclaim_run, "apply_async", lambda args, **kw: queued.extend(args))
    page.goto(f"/alerts/?cluster={cluster.pk}")
    page.check(f'#alert-{alert.pk} input[name="alert"]')
    page.click("#reclaim-selected")
    dialog = page.locator("#reclaim-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#reclaim-plan-items")).to_contain_text(str(finding.ip))
    page.click("#reclaim-execute")
    expect(page.locator("#reclaim-progress")).to_contain_text("waiting for a Celery worker")
    assert len(queued) == 1
    tasks.reclaim_run(queued[0])  # the worker's part, run here; the page keeps polling
    expect(page.locator("#reclaim-progress")).to_have_attribute(
        "data-state", "done", timeout=15_000
    )
    expect(page.locator("#reclaim-items tbody tr").first).to_have_attribute(
        "data-outcome", "reclaimed"
    )
