"""The UI promises only what runs: Reclaim is offered only where reclaiming frees something,
the dry-run dialog splits items into "will free" and "will skip (pod X holds it)" with the
run's own live re-check and counts only what will be freed, and every item of every run,
those the plan skipped included, leaves an audit entry."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string
from django.test import Client
from netaddr import IPAddress

from ippam.leaks import reclaim_execute, reclaim_plan
from ippam.models import AuditEntry, Cluster, Finding, ReclaimItem, ReclaimRun
from ippam.sync import cluster_sync_full
from simcluster.builder import ClusterBuilder
from tests.factories import make_allocation, make_cluster, make_finding, make_orip, make_pool
from tests.html import select, select_one, text

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
Kind, State = Finding.Kind, Finding.State
V6 = ("analytics", "v6-net")


@pytest.fixture(autouse=True)
def no_grace(settings) -> None:
    settings.IPPAM_LEAK_GRACE_SECONDS = 0


def offered(finding: Finding, rf, user) -> bool:
    request = rf.get("/leaks/")
    request.user = user
    html = render_to_string(
        "dashboard/actions/finding_actions.html", {"finding": finding}, request=request
    )
    return bool(select(html, f"#reclaim-finding-{finding.pk}"))


def test_a_finding_offers_reclaim_only_when_reclaiming_frees_it(rf, make_user):
    admin = make_user("a", "admin")
    cluster = make_cluster("prod")
    pool = make_pool(cluster, "10.0.0.0/24")

    def finding(kind, state=State.LEAKED, **kw):
        n = Finding.objects.count() + 10
        return make_finding(
            cluster, kind=kind, state=state, pool=pool, ip=f"10.0.0.{n}", podref="default/x", **kw
        )

    orip = make_orip(cluster, "10.0.0.99", podref="default/gone")
    cases = {
        "leaked orphaned allocation": (finding(Kind.ORPHANED_ALLOCATION), True),
        "leaked stale allocation": (finding(Kind.STALE_ALLOCATION), True),
        "orphaned reservation": (finding(Kind.ORPHANED_RESERVATION, reservation=orip), True),
        # the remedy is restarting the pod: a plan would only skip these
        "missing reservation": (finding(Kind.ORPHANED_RESERVATION), False),
        "untracked address": (finding(Kind.UNTRACKED_ADDRESS), False),
        "duplicate address": (finding(Kind.DUPLICATE_ADDRESS), False),
        # the pool's "include suspects" reclaims it, once the pod is checked
        "suspect orphaned allocation": (finding(Kind.ORPHANED_ALLOCATION, State.SUSPECT), False),
    }
    got = {name: offered(f, rf, admin) for name, (f, _) in cases.items()}
    assert got == {name: want for name, (_, want) in cases.items()}


def test_the_pool_page_offers_reclaim_only_with_something_to_reclaim(admin_client_role, make_user):
    cluster = make_cluster("prod")
    pool = make_pool(cluster, "10.0.0.0/24")
    make_finding(cluster, kind=Kind.UNTRACKED_ADDRESS, pool=pool, ip="10.0.0.7", podref="a/b")
    make_finding(cluster, kind=Kind.ORPHANED_RESERVATION, pool=pool, ip="10.0.0.8", podref="a/c")
    page = admin_client_role.get(f"/pools/{pool.pk}/").content.decode()
    assert select(page, "#reclaim-pool") == []  # only "restart the pod" remedies
    make_finding(cluster, allocation=make_allocation(pool, "10.0.0.9", podref="default/gone"))
    page = admin_client_role.get(f"/pools/{pool.pk}/").content.decode()
    assert select(page, "#reclaim-pool")
    viewer = Client()
    viewer.force_login(make_user("v", "viewer"))
    page = viewer.get(f"/pools/{pool.pk}/").content.decode()
    assert select(page, "#reclaim-pool") == []  # and only to whoever may reclaim


def v6_cluster(simcluster) -> tuple[Cluster, str, str]:
    """Two orphaned allocations of fd00:10:20::/64; a running pod lists the first."""
    b = ClusterBuilder(3)
    for ns in ("analytics", "kube-system"):
        b.namespace(ns)
    b.node("node-1")
    b.whereabouts_nad(*V6, "fd00:10:20::/64", master="eth1")
    pool = b.pools[b.wb_nads[V6].pool_key]
    held, free = pool.next_free(), pool.next_free()
    b.allocation(pool.name, held, "analytics/gone-1")
    b.allocation(pool.name, free, "analytics/gone-2")
    b.pod("analytics", "worker-0", "node-1", [V6], ips=[held], allocate=False, reserve=False)
    simcluster.seed(b.objects())
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig, simulated=True)
    cluster_sync_full(cluster=cluster)
    return cluster, held, free


def test_the_dialog_counts_only_what_will_be_freed(admin_client_role, simcluster):
    cluster, held, free = v6_cluster(simcluster)
    ids = list(
        Finding.objects.filter(cluster=cluster, kind=Kind.ORPHANED_ALLOCATION).values_list(
            "pk", flat=True
        )
    )
    assert len(ids) == 2
    page = admin_client_role.post("/reclaim/plan/", {"finding": ids}, **HTMX).content.decode()
    run = ReclaimRun.objects.get()
    rows = {str(i.ip): select_one(page, f"#plan-item-{i.pk}") for i in run.items.all()}
    assert rows[held].attrs["data-verdict"] == "skip"
    assert f"pod analytics/worker-0 lists {held} on net1 of analytics/v6-net" in text(rows[held])
    assert rows[free].attrs["data-verdict"] == "free" and "will free" in text(rows[free])
    assert text(select_one(page, "#reclaim-execute")) == "Reclaim 1 address"
    assert "1 will be skipped" in text(select_one(page, "#reclaim-skips"))
    # nothing was written by the dry run
    live = simcluster.list("ippools")[0]["spec"]["allocations"]
    assert len(live) == 2


def test_a_dialog_that_cannot_reach_the_cluster_says_so(admin_client_role):
    cluster = make_cluster("prod")  # its kubeconfig does not exist
    pool = make_pool(cluster, "10.0.0.0/24")
    finding = make_finding(cluster, allocation=make_allocation(pool, "10.0.0.9", podref="a/gone"))
    page = admin_client_role.post("/reclaim/plan/", {"finding": [finding.pk]}, **HTMX)
    assert page.status_code == 200
    assert "could not be read now" in text(select_one(page.content, "#reclaim-unchecked"))
    [row] = select(page.content, "[data-verdict]")
    assert row.attrs["data-verdict"] == "unknown"
    button = text(select_one(page.content, "#reclaim-execute"))
    assert button == "Re-check and reclaim up to 1 address"


def test_every_item_of_a_run_leaves_an_audit_entry_skipped_ones_included(simcluster):
    b = ClusterBuilder(1)
    for ns in ("default", "kube-system"):
        b.namespace(ns)
    b.node("node-1")
    net = ("default", "net-a")
    b.whereabouts_nad(*net, "10.1.0.0/24", master="eth1")
    pool = b.pools[b.wb_nads[net].pool_key]
    b.pod("default", "starting", "node-1", [net], "Pending")  # a suspect finding
    ip = pool.next_free()
    b.allocation(pool.name, ip, "default/gone-1")  # a leak
    b.pod("default", "hand", "node-1", [net], allocate=False, reserve=False)  # untracked
    simcluster.seed(b.objects())
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig, simulated=True)
    cluster_sync_full(cluster=cluster)
    findings = list(Finding.objects.filter(cluster=cluster).values_list("pk", flat=True))
    run = reclaim_plan(cluster=cluster, finding_ids=findings, actor="cli:alice")
    outcomes = dict(run.items.values_list("ip", "outcome"))
    assert ReclaimItem.Outcome.SKIPPED in outcomes.values()  # the plan skipped some
    assert ReclaimItem.Outcome.PENDING in outcomes.values()
    reclaim_execute(run_id=run.pk)
    reclaim_execute(run_id=run.pk)  # a second delivery adds nothing
    entries = AuditEntry.objects.filter(
        cluster=cluster, message__startswith=f"reclaim run {run.pk}:"
    )
    by_ip = {e.target.rsplit("(", 1)[-1].rstrip(")"): e for e in entries}
    assert entries.count() == run.items.count() == len(by_ip)
    for item in run.items.all():
        entry = by_ip[str(item.ip)]
        assert entry.outcome == item.outcome and entry.actor_name == "cli:alice"
        assert item.message in entry.message
    assert by_ip[str(IPAddress(ip))].outcome == ReclaimItem.Outcome.RECLAIMED
