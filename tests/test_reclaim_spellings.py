"""A live pod keeps its address through reclaim however its network-status spells it.

Multus and whereabouts are Go: net.ParseIP reads `::ffff:10.1.0.4` and `::ffff:a01:4` as the
IPv4 address 10.1.0.4, and refuses `010.001.000.004`, ` 10.1.0.4 ` and `10.1.0.4/24`, which
anyone who may annotate a pod can still write (Multus tolerates the /prefix in hand-written
annotations). Reclaim compares as Go does, and a listing Go cannot parse holds every address
a lenient reading of it could denote. Each spelling is run through the CLI (dry run and
--yes) and through the UI (the dry-run dialog, then the run as the worker runs it), over
simcluster with the official client: the address is kept, the sentence names the pod and the
listing, and the skipped item leaves an audit entry.
"""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from netaddr import IPAddress

from ippam.leaks.tasks import reclaim_run
from ippam.models import AuditEntry, Cluster, Finding, ReclaimItem, ReclaimRun
from ippam.sync import cluster_sync_full
from simcluster.builder import NETWORK_STATUS, ClusterBuilder
from tests.html import select, select_one, text

pytestmark = pytest.mark.django_db

POOL = ("kube-system", "10.1.0.0-24")
NET = ("default", "net-a")
HTMX = {"HTTP_HX_REQUEST": "true"}


def mapped_hex(ip: str) -> str:
    n = int(IPAddress(ip))
    return f"::ffff:{n >> 16:x}:{n & 0xFFFF:x}"


SPELLINGS = {
    "mapped-dotted": lambda ip: f"::ffff:{ip}",
    "mapped-hex": mapped_hex,
    "mapped-long-upper": lambda ip: "0:0:0:0:0:FFFF:" + mapped_hex(ip)[len("::ffff:") :].upper(),
    "leading-zeros": lambda ip: ".".join(f"{int(o):03d}" for o in ip.split(".")),
    "padded": lambda ip: f" {ip} ",
    "with-prefix": lambda ip: f"{ip}/24",
}
# The spellings Go reads as the address itself; the others are listings it cannot parse.
GO_READS = {"mapped-dotted", "mapped-hex", "mapped-long-upper"}


@pytest.fixture(autouse=True)
def no_grace(settings) -> None:
    settings.IPPAM_LEAK_GRACE_SECONDS = 0


def respell(pod: dict, ip: str, written: str) -> dict:
    """Rewrite `ip` in the pod's network-status as `written`, as a hand-edit would."""
    annotations = pod["metadata"]["annotations"]
    status = json.loads(annotations[NETWORK_STATUS])
    for entry in status:
        entry["ips"] = [written if listed == ip else listed for listed in entry.get("ips", [])]
    annotations[NETWORK_STATUS] = json.dumps(status)
    return pod


def orphan_held_by_a_spelling(simcluster, spelling: str) -> tuple[Cluster, Finding, str, str]:
    """An orphaned allocation (its pod is gone) whose address a running pod, web-9, lists in
    `spelling` with no allocation of its own (set by hand, or from an overlapping range)."""
    b = ClusterBuilder(1)
    for ns in ("default", "kube-system"):
        b.namespace(ns)
    b.node("node-1")
    b.whereabouts_nad(*NET, "10.1.0.0/24", master="eth1")
    b.pod("default", "web-1", "node-1", [NET])
    pool = b.pools[b.wb_nads[NET].pool_key]
    ip = pool.next_free()
    b.allocation(pool.name, ip, "default/gone-1")
    written = SPELLINGS[spelling](ip)
    holder = b.pod("default", "web-9", "node-1", [NET], ips=[ip], allocate=False, reserve=False)
    respell(holder, ip, written)
    simcluster.seed(b.objects())
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig, simulated=True)
    cluster_sync_full(cluster=cluster)
    finding = Finding.objects.get(cluster=cluster, kind=Finding.Kind.ORPHANED_ALLOCATION)
    assert str(finding.ip) == ip
    return cluster, finding, ip, written


def live_podref(simcluster, ip: str) -> str | None:
    allocations = simcluster.get("ippools", *POOL)["spec"]["allocations"]
    entry = allocations.get(str(int(IPAddress(ip)) - int(IPAddress("10.1.0.0"))))
    return entry["podref"] if entry else None


def assert_names_the_pod_and_the_listing(message: str, ip: str, written: str, spelling: str):
    assert "pod default/web-9 lists" in message, message
    assert repr(written) in message, message  # the listing as it is written
    assert "on net1 of default/net-a" in message, message
    if spelling in GO_READS:
        assert f"which Go reads as {ip}" in message, message
    else:
        assert f"which Go cannot parse, and which could mean {ip}" in message, message


def assert_skip_audited(cluster: Cluster, ip: str) -> AuditEntry:
    entry = AuditEntry.objects.get(
        cluster=cluster, action=AuditEntry.Action.ALLOCATION_RECLAIM, target__contains=f"({ip})"
    )
    assert entry.outcome == ReclaimItem.Outcome.SKIPPED
    assert "pod default/web-9 lists" in entry.message
    return entry


@pytest.mark.parametrize("spelling", list(SPELLINGS))
def test_the_cli_keeps_an_address_a_live_pod_lists_in_any_spelling(simcluster, capsys, spelling):
    cluster, finding, ip, written = orphan_held_by_a_spelling(simcluster, spelling)

    call_command("reclaim", "--dry-run", "--json", "--finding", str(finding.pk))
    [planned] = json.loads(capsys.readouterr().out)["items"]
    assert planned["verdict"] == "will skip"
    assert_names_the_pod_and_the_listing(planned["message"], ip, written, spelling)
    assert not ReclaimRun.objects.exists()  # a dry run is only shown

    call_command("reclaim", "--yes", "--finding", str(finding.pk))
    out = capsys.readouterr().out
    assert "skipped 1" in out and "reclaimed" not in out, out
    item = ReclaimItem.objects.get()
    assert item.outcome == ReclaimItem.Outcome.SKIPPED
    assert_names_the_pod_and_the_listing(item.message, ip, written, spelling)
    assert live_podref(simcluster, ip) == "default/gone-1"  # kept
    assert_skip_audited(cluster, ip)


@pytest.mark.parametrize("spelling", list(SPELLINGS))
def test_the_ui_dry_run_says_it_will_skip_and_the_run_keeps_it(
    admin_client_role, simcluster, spelling
):
    cluster, finding, ip, written = orphan_held_by_a_spelling(simcluster, spelling)

    page = admin_client_role.post("/reclaim/plan/", {"finding": [finding.pk]}, **HTMX)
    assert page.status_code == 200
    run = ReclaimRun.objects.get()
    row = select_one(page.content, f"#plan-item-{run.items.get().pk}")
    assert row.attrs["data-verdict"] == "skip"
    assert_names_the_pod_and_the_listing(text(row), ip, written, spelling)
    # nothing will be freed, so nothing is offered
    assert select(page.content, "#reclaim-execute") == []
    assert "Nothing will be freed" in text(select_one(page.content, "#reclaim-nothing"))

    # a run of the plan anyway (the task body, as a worker runs it) skips it too
    reclaim_run(run.pk)
    progress = admin_client_role.get(f"/reclaim/{run.pk}/", **HTMX).content.decode()
    row = select_one(progress, f"#reclaim-item-{run.items.get().pk}")
    assert row.attrs["data-outcome"] == "skipped"
    assert_names_the_pod_and_the_listing(text(row), ip, written, spelling)
    assert live_podref(simcluster, ip) == "default/gone-1"
    assert_skip_audited(cluster, ip)


def test_the_podrefs_own_pod_holds_it_in_a_mapped_spelling(simcluster):
    """A stale allocation: its pod lists the address only as ::ffff:a01:x on net2."""
    b = ClusterBuilder(1)
    for ns in ("default", "kube-system"):
        b.namespace(ns)
    b.node("node-1")
    b.whereabouts_nad(*NET, "10.1.0.0/24", master="eth1")
    pool = b.pools[b.wb_nads[NET].pool_key]
    b.pod("default", "web-1", "node-1", [NET])
    ip = pool.next_free()
    b.allocation(pool.name, ip, "default/web-1", "net2")
    simcluster.seed(b.objects())
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig, simulated=True)
    cluster_sync_full(cluster=cluster)
    finding = Finding.objects.get(cluster=cluster, kind=Finding.Kind.STALE_ALLOCATION)
    pod = simcluster.get("pods", "default", "web-1")
    status = json.loads(pod["metadata"]["annotations"][NETWORK_STATUS])
    status.append({"name": "default/net-a", "interface": "net2", "ips": [mapped_hex(ip)]})
    simcluster.patch(
        "pods",
        "default",
        "web-1",
        {"metadata": {"annotations": {NETWORK_STATUS: json.dumps(status)}}},
    )
    call_command("reclaim", "--yes", "--finding", str(finding.pk))
    item = ReclaimItem.objects.get()
    assert item.outcome == ReclaimItem.Outcome.SKIPPED
    assert item.message.startswith(
        f"Skipped: pod default/web-1 holds it (net2 of default/net-a lists {ip} "
        f"(written {mapped_hex(ip)!r}, which Go reads as {ip})"
    ), item.message
    assert live_podref(simcluster, ip) == "default/web-1"


@pytest.mark.parametrize(
    "listing",
    ["010.001.000.099", "::ffff:a01:63", " 10.1.0.99 "],
    ids=["leading-zeros", "mapped-hex", "padded"],
)
def test_a_listing_that_cannot_mean_the_address_does_not_hold_it(simcluster, listing):
    """Leniency has a bound: 10.1.0.99 in any spelling does not keep 10.1.0.x."""
    cluster, finding, ip, _ = orphan_held_by_a_spelling(simcluster, "padded")
    pod = simcluster.get("pods", "default", "web-9")
    respell(pod, f" {ip} ", listing)
    simcluster.patch("pods", "default", "web-9", {"metadata": pod["metadata"]})
    call_command("reclaim", "--yes", "--finding", str(finding.pk))
    item = ReclaimItem.objects.get()
    assert item.outcome == ReclaimItem.Outcome.RECLAIMED, item.message
    assert live_podref(simcluster, ip) is None


def test_a_mapped_listing_in_another_whereabouts_network_does_not_hold_it(simcluster):
    """Scope still counts: the same range under another network_name is tracked apart."""
    b = ClusterBuilder(1)
    for ns in ("default", "kube-system"):
        b.namespace(ns)
    b.node("node-1")
    b.whereabouts_nad(*NET, "10.1.0.0/24", master="eth1")
    b.whereabouts_nad("default", "net-b", "10.1.0.0/24", network_name="blue", master="eth2")
    pool = b.pools[b.wb_nads[NET].pool_key]
    ip = pool.next_free()
    b.allocation(pool.name, ip, "default/gone-1")
    other = b.pod(
        "default",
        "web-9",
        "node-1",
        [("default", "net-b")],
        ips=[ip],
        allocate=False,
        reserve=False,
    )
    respell(other, ip, f"::ffff:{ip}")
    simcluster.seed(b.objects())
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig, simulated=True)
    cluster_sync_full(cluster=cluster)
    finding = Finding.objects.get(cluster=cluster, kind=Finding.Kind.ORPHANED_ALLOCATION)
    call_command("reclaim", "--yes", "--finding", str(finding.pk))
    assert ReclaimItem.objects.get().outcome == ReclaimItem.Outcome.RECLAIMED
    assert live_podref(simcluster, ip) is None


def test_an_annotation_that_does_not_parse_holds_a_mapped_mention(simcluster):
    """Not JSON: the network cannot be told, and the mention is read as Go would."""
    cluster, finding, ip, written = orphan_held_by_a_spelling(simcluster, "mapped-hex")
    broken = f'[{{"name": "default/net-a", "ips": ["{written}"]'  # cut short
    simcluster.patch(
        "pods", "default", "web-9", {"metadata": {"annotations": {NETWORK_STATUS: broken}}}
    )
    call_command("reclaim", "--yes", "--finding", str(finding.pk))
    item = ReclaimItem.objects.get()
    assert item.outcome == ReclaimItem.Outcome.SKIPPED
    assert f"pod default/web-9 mentions {ip} (written {written!r}" in item.message, item.message
    assert "does not parse" in item.message
    assert live_podref(simcluster, ip) == "default/gone-1"
