"""Reclamation against the simulated API server: the protocol of docs/design.md §4, its races,
idempotency, and a property: a live pod that lists an address never loses its allocation."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
from django.core.management import call_command
from netaddr import IPAddress, IPNetwork

from ippam.kube.writes import KubeWrites
from ippam.leaks import reclaim_execute, reclaim_plan
from ippam.leaks.tasks import reclaim_run
from ippam.models import Allocation, AuditEntry, Cluster, Finding, IPPool, ReclaimItem
from ippam.sync import cluster_sync_full
from simcluster.builder import NETWORK_STATUS, ClusterBuilder
from tests.html import select

pytestmark = pytest.mark.django_db

POOL = ("kube-system", "10.1.0.0-24")
NET = ("default", "net-a")
Outcome = ReclaimItem.Outcome


@pytest.fixture(autouse=True)
def no_grace(settings) -> None:
    settings.IPPAM_LEAK_GRACE_SECONDS = 0


def build(seed: int = 1) -> tuple[ClusterBuilder, dict]:
    b = ClusterBuilder(seed)
    for ns in ("default", "kube-system"):
        b.namespace(ns)
    b.node("node-1")
    b.node("node-2")
    b.whereabouts_nad(*NET, "10.1.0.0/24", master="eth1")
    for i in range(1, 4):
        b.pod("default", f"web-{i}", f"node-{1 + i % 2}", [NET])
    pool = b.pools[b.wb_nads[NET].pool_key]
    orphan_ip = pool.next_free()
    b.allocation(pool.name, orphan_ip, "default/gone-1")
    b.reservation(orphan_ip, "default/gone-1")
    stale_ip = pool.next_free()
    b.allocation(pool.name, stale_ip, "default/web-1", "net2")
    b.reservation(stale_ip, "default/web-1", ifname="net2")
    return b, {"orphan": orphan_ip, "stale": stale_ip}


def synced(simcluster, b: ClusterBuilder) -> Cluster:
    simcluster.seed(b.objects())
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig, simulated=True)
    cluster_sync_full(cluster=cluster)  # detection runs as its after-sync hook
    return cluster


def live_allocations(simcluster) -> dict[str, str]:
    pool = simcluster.get("ippools", *POOL)
    allocations = pool["spec"]["allocations"]
    if not isinstance(allocations, dict):
        return {"(odd)": repr(allocations)}
    return {
        k: v.get("podref", "") if isinstance(v, dict) else repr(v) for k, v in allocations.items()
    }


def key_of(ip: str) -> str:
    return str(int(IPAddress(ip)) - int(IPAddress("10.1.0.0")))


def finding_ids(cluster: Cluster, kind: str) -> list[int]:
    return list(Finding.objects.filter(cluster=cluster, kind=kind).values_list("pk", flat=True))


def test_plan_is_a_dry_run_of_reclaimable_findings(simcluster):
    b, ips = build()
    cluster = synced(simcluster, b)
    simcluster.clear_requests()
    run = reclaim_plan(cluster=cluster, actor="cli:test")
    items = {i.ip: i for i in run.items.all()}
    assert set(items) == {IPAddress(ips["orphan"]), IPAddress(ips["stale"])}
    orphan = items[IPAddress(ips["orphan"])]
    assert (orphan.pool_namespace, orphan.pool_name, orphan.allocation_key) == (
        *POOL,
        key_of(ips["orphan"]),
    )
    assert orphan.podref == "default/gone-1" and "no longer exists" in orphan.why
    assert orphan.reservation_name == ips["orphan"]
    assert all(i.outcome == Outcome.PENDING for i in items.values())
    assert [r for r in simcluster.requests if r["method"] != "GET"] == []


def test_execute_frees_the_allocations_and_reservations_and_audits(simcluster):
    b, ips = build()
    cluster = synced(simcluster, b)
    run = reclaim_plan(cluster=cluster, actor="cli:alice")
    summary = reclaim_run(run.pk)
    assert summary["counts"]["reclaimed"] == 2 and summary["noop"] is False
    live = live_allocations(simcluster)
    assert key_of(ips["orphan"]) not in live and key_of(ips["stale"]) not in live
    assert len(live) == 3  # the three pods keep theirs
    assert simcluster.get("overlappingrangeipreservations", "kube-system", ips["orphan"]) is None
    assert simcluster.get("overlappingrangeipreservations", "kube-system", ips["stale"]) is None
    audits = AuditEntry.objects.filter(action=AuditEntry.Action.ALLOCATION_RECLAIM)
    assert audits.count() == 2 and {a.actor_name for a in audits} == {"cli:alice"}
    entry = audits.get(target__contains=f"key {key_of(ips['orphan'])} ")
    assert entry.outcome == Outcome.RECLAIMED
    assert (
        entry.before["allocation"]["podref"] == "default/gone-1"
        and entry.after["allocation"] is None
    )
    assert AuditEntry.objects.filter(action=AuditEntry.Action.RESERVATION_DELETE).count() == 2
    # the database follows: rows gone, pool recounted, findings resolved
    pool = IPPool.objects.get(cluster=cluster, name=POOL[1])
    assert pool.allocated == Allocation.objects.filter(pool=pool).count() == 3
    assert not Finding.objects.filter(cluster=cluster).exists()


def test_task_delivered_twice_frees_nothing_twice(simcluster):
    b, _ = build()
    cluster = synced(simcluster, b)
    run = reclaim_plan(cluster=cluster, actor="cli:test")
    first = reclaim_run(run.pk)
    simcluster.clear_requests()
    second = reclaim_run(run.pk)
    assert first["counts"]["reclaimed"] == 2
    assert second["noop"] is True and second["counts"] == first["counts"]
    assert [r for r in simcluster.requests if r["method"] in ("PATCH", "DELETE")] == []


def test_a_second_plan_of_the_same_findings_is_a_noop(simcluster):
    b, _ = build()
    cluster = synced(simcluster, b)
    one = reclaim_plan(cluster=cluster, actor="cli:a")
    two = reclaim_plan(cluster=cluster, actor="cli:b")
    reclaim_execute(run_id=one.pk)
    run = reclaim_execute(run_id=two.pk)
    assert run.noop is True
    assert set(run.items.values_list("outcome", flat=True)) == {Outcome.NOOP}
    assert "no longer allocated" in run.items.first().message


def test_a_pod_that_appears_after_the_plan_keeps_its_address(simcluster):
    b, ips = build()
    cluster = synced(simcluster, b)
    run = reclaim_plan(
        cluster=cluster,
        finding_ids=finding_ids(cluster, Finding.Kind.ORPHANED_ALLOCATION),
        actor="t",
    )
    # the pod named by the allocation comes back (a StatefulSet pod, recreated) and shows it
    pod = b.pod(
        "default", "gone-1", "node-1", [NET], ips=[ips["orphan"]], allocate=False, reserve=False
    )
    simcluster.create("pods", pod)
    run = reclaim_execute(run_id=run.pk)
    [item] = run.items.all()
    assert item.outcome == Outcome.SKIPPED
    assert item.message.startswith(
        f"Skipped: pod default/gone-1 holds it (net1 of default/net-a lists {ips['orphan']}"
    )
    assert live_allocations(simcluster)[key_of(ips["orphan"])] == "default/gone-1"
    assert (
        simcluster.get("overlappingrangeipreservations", "kube-system", ips["orphan"]) is not None
    )


def test_a_pod_whose_network_status_gains_the_address_keeps_it(simcluster):
    b, ips = build()
    cluster = synced(simcluster, b)
    run = reclaim_plan(
        cluster=cluster, finding_ids=finding_ids(cluster, Finding.Kind.STALE_ALLOCATION), actor="t"
    )
    pod = simcluster.get("pods", "default", "web-1")
    status = json.loads(pod["metadata"]["annotations"][NETWORK_STATUS])
    status.append({"name": "default/net-a", "interface": "net2", "ips": [ips["stale"]], "dns": {}})
    simcluster.patch(
        "pods",
        "default",
        "web-1",
        {"metadata": {"annotations": {NETWORK_STATUS: json.dumps(status)}}},
    )
    run = reclaim_execute(run_id=run.pk)
    [item] = run.items.all()
    assert item.outcome == Outcome.SKIPPED and "pod default/web-1 holds it (net2" in item.message
    assert live_allocations(simcluster)[key_of(ips["stale"])] == "default/web-1"


def concurrent_writer(monkeypatch, simcluster, ops: list[dict], times: int = 1) -> None:
    """Make another writer change the IPPool between our GET and our PATCH."""
    original = KubeWrites.patch_ippool_json
    calls = {"n": 0}

    def racing(self, namespace, name, patch):
        if calls["n"] < times:
            calls["n"] += 1
            simcluster.json_patch("ippools", namespace, name, ops)
        return original(self, namespace, name, patch)

    monkeypatch.setattr(KubeWrites, "patch_ippool_json", racing)


def test_a_pool_changed_concurrently_is_reread_and_the_result_is_right(simcluster, monkeypatch):
    b, ips = build()
    cluster = synced(simcluster, b)
    run = reclaim_plan(
        cluster=cluster,
        finding_ids=finding_ids(cluster, Finding.Kind.ORPHANED_ALLOCATION),
        actor="t",
    )
    other = {"id": "c0ffee", "podref": "default/web-7", "ifname": "net1"}
    concurrent_writer(
        monkeypatch, simcluster, [{"op": "add", "path": "/spec/allocations/200", "value": other}]
    )
    run = reclaim_execute(run_id=run.pk)
    [item] = run.items.all()
    assert item.outcome == Outcome.RECLAIMED and item.attempts == 2
    live = live_allocations(simcluster)
    assert key_of(ips["orphan"]) not in live
    assert live["200"] == "default/web-7"  # the other writer's allocation survived


def test_an_address_reallocated_concurrently_is_skipped_and_says_who_holds_it(
    simcluster, monkeypatch
):
    b, ips = build()
    cluster = synced(simcluster, b)
    run = reclaim_plan(
        cluster=cluster,
        finding_ids=finding_ids(cluster, Finding.Kind.ORPHANED_ALLOCATION),
        actor="t",
    )
    key = key_of(ips["orphan"])
    concurrent_writer(
        monkeypatch,
        simcluster,
        [{"op": "replace", "path": f"/spec/allocations/{key}/podref", "value": "default/web-1"}],
    )
    run = reclaim_execute(run_id=run.pk)
    [item] = run.items.all()
    assert item.outcome == Outcome.SKIPPED
    assert item.message == (
        f"IPPool kube-system/10.1.0.0-24 changed while reclaiming {ips['orphan']}; re-checked and "
        "skipped: default/web-1 now holds it (it was default/gone-1's when planned)."
    )
    assert live_allocations(simcluster)[key] == "default/web-1"
    # the reservation names the old pod still, but its allocation was not freed: leave it
    assert (
        simcluster.get("overlappingrangeipreservations", "kube-system", ips["orphan"]) is not None
    )


def test_retries_are_bounded(simcluster, monkeypatch, settings):
    settings.IPPAM_RECLAIM_MAX_ATTEMPTS = 2
    b, ips = build()
    cluster = synced(simcluster, b)
    run = reclaim_plan(
        cluster=cluster,
        finding_ids=finding_ids(cluster, Finding.Kind.ORPHANED_ALLOCATION),
        actor="t",
    )
    simcluster.fault(r"/ippools/10\.1\.0\.0-24$", status=409, count=5, method="PATCH")
    run = reclaim_execute(run_id=run.pk)
    [item] = run.items.all()
    assert item.outcome == Outcome.FAILED and item.attempts == 2
    assert "kept changing" in item.message and "run the reclaim again" in item.message
    assert key_of(ips["orphan"]) in live_allocations(simcluster)


def test_suspects_need_the_override(simcluster):
    b, _ = build()
    b.pod("default", "starting", "node-1", [NET], "Pending")
    cluster = synced(simcluster, b)
    [suspect] = Finding.objects.filter(cluster=cluster, state=Finding.State.SUSPECT)
    run = reclaim_plan(cluster=cluster, finding_ids=[suspect.pk], actor="t")
    [item] = run.items.all()
    assert item.outcome == Outcome.SKIPPED and "--include-suspect" in item.message


def test_cli_dry_run_then_yes(simcluster, capsys):
    b, ips = build()
    synced(simcluster, b)
    call_command("reclaim", "--dry-run")
    out = capsys.readouterr().out
    assert out.count("will free") == 2 and "dry run: 2 will be freed, 0 will be skipped" in out
    assert len(live_allocations(simcluster)) == 5
    call_command("reclaim", "--yes", "--pool", "kube-system/10.1.0.0-24")
    out = capsys.readouterr().out
    assert f"freed {ips['orphan']}" in out and "reclaimed 2" in out
    call_command("leaks", "--json")
    assert json.loads(capsys.readouterr().out) == []


def test_reclamation_never_frees_an_address_a_live_pod_lists(simcluster):
    """Property over seeded random cluster states, with races between plan and execute."""
    outcomes: Counter[str] = Counter()
    for seed in range(4):
        rng = random.Random(seed)
        simcluster.reset()
        Cluster.objects.all().delete()
        b = ClusterBuilder(seed)
        for ns in ("default", "kube-system"):
            b.namespace(ns)
        b.node("node-1")
        b.node("node-2", ready=rng.random() < 0.7)
        b.whereabouts_nad(*NET, "10.1.0.0/24", master="eth1")
        pool = b.pools[b.wb_nads[NET].pool_key]
        alive = []
        for i in range(rng.randint(3, 8)):
            phase = rng.choice(["Running", "Running", "Running", "Pending"])
            alive.append(b.pod("default", f"p{i}", rng.choice(["node-1", "node-2"]), [NET], phase))
        leaks = []
        for j in range(rng.randint(2, 6)):
            ip = pool.next_free()
            holder = rng.choice([f"default/gone-{j}", f"default/p{rng.randrange(len(alive))}"])
            b.allocation(pool.name, ip, holder, "net9")
            if rng.random() < 0.5:
                b.reservation(ip, holder, ifname="net9")
            leaks.append((ip, holder))
        cluster = synced(simcluster, b)
        run = reclaim_plan(cluster=cluster, include_suspect=True, actor="property")
        # races: pods come back, or start listing the leaked address
        for ip, holder in leaks:
            if rng.random() < 0.4:
                ns, name = holder.split("/")
                current = simcluster.get("pods", ns, name)
                if current is None:
                    simcluster.create(
                        "pods",
                        b.pod(ns, name, "node-1", [NET], ips=[ip], allocate=False, reserve=False),
                    )
                else:
                    status = json.loads(
                        current["metadata"]["annotations"].get(NETWORK_STATUS, "[]")
                    )
                    status.append({"name": "default/net-a", "interface": "net9", "ips": [ip]})
                    simcluster.patch(
                        "pods",
                        ns,
                        name,
                        {"metadata": {"annotations": {NETWORK_STATUS: json.dumps(status)}}},
                    )
        before = live_allocations(simcluster)
        run = reclaim_execute(run_id=run.pk)
        outcomes.update(run.items.values_list("outcome", flat=True))
        after = live_allocations(simcluster)
        for pod in simcluster.list("pods"):
            md = pod["metadata"]
            if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                continue
            podref = f"{md['namespace']}/{md['name']}"
            for entry in json.loads((md.get("annotations") or {}).get(NETWORK_STATUS, "[]")):
                for ip in entry.get("ips", []):
                    if IPAddress(ip) not in IPNetwork("10.1.0.0/24"):
                        continue
                    key = str(int(IPAddress(ip)) - int(IPAddress("10.1.0.0")))
                    if before.get(key) == podref:
                        assert after.get(key) == podref, (seed, podref, ip)
    # the generated states exercised both sides: addresses freed, and addresses kept
    assert outcomes[Outcome.RECLAIMED] > 0 and outcomes[Outcome.SKIPPED] > 0, outcomes


def test_reclaiming_the_demo_frees_exactly_the_leaked_addresses(simcluster):
    simcluster.load("demo", seed=1)
    cluster = Cluster.objects.create(name="demo", kubeconfig=simcluster.kubeconfig)
    cluster_sync_full(cluster=cluster)
    pools_before = {
        (p["metadata"]["namespace"], p["metadata"]["name"]): dict(
            p["spec"].get("allocations") or {}
        )
        for p in simcluster.list("ippools")
    }
    run = reclaim_plan(cluster=cluster, actor="cli:demo")
    outcomes = dict(run.items.values_list("kind", "outcome"))
    reclaim_run(run.pk)
    run.refresh_from_db()
    done = {(i.kind, str(i.ip)): i.outcome for i in run.items.all()}
    # the planted orphaned and stale allocations and the orphaned reservation; the
    # Pending pod's allocation (suspect) is left alone
    assert sorted(k for k, v in done.items() if v == Outcome.RECLAIMED) == sorted(
        (t["kind"], t["ip"])
        for t in simcluster.ground_truth["findings"]
        if t["state"] == "leaked"
        and t["kind"] in ("orphaned_allocation", "stale_allocation")
        or t.get("reservation")
    )
    assert outcomes.get("stale_allocation") is not None
    freed = 0
    for p in simcluster.list("ippools"):
        key = (p["metadata"]["namespace"], p["metadata"]["name"])
        after = p["spec"].get("allocations") or {}
        assert set(after) <= set(pools_before[key])
        freed += len(pools_before[key]) - len(after)
    assert freed == 2


# --- issue 10, case 1: every live holder of the address is re-checked, not only the podref --


def orphan_run(cluster: Cluster, **kwargs):
    return reclaim_plan(
        cluster=cluster,
        finding_ids=finding_ids(cluster, Finding.Kind.ORPHANED_ALLOCATION),
        actor="t",
        **kwargs,
    )


def another_pod_listing(b: ClusterBuilder, ip: str, name: str = "web-9", nad=NET, **kw) -> dict:
    """A running pod that lists `ip` in its network-status without any allocation of its own
    (an overlapping range, or an address set by hand)."""
    return b.pod("default", name, "node-2", [nad], ips=[ip], allocate=False, reserve=False, **kw)


def test_an_address_another_live_pod_lists_is_not_freed(simcluster):
    b, ips = build()
    another_pod_listing(b, ips["orphan"])
    cluster = synced(simcluster, b)
    run = reclaim_execute(run_id=orphan_run(cluster).pk)
    [item] = run.items.all()
    assert item.outcome == Outcome.SKIPPED
    assert f"pod default/web-9 lists {ips['orphan']} on net1 of default/net-a" in item.message, (
        item.message
    )
    assert live_allocations(simcluster)[key_of(ips["orphan"])] == "default/gone-1"
    assert simcluster.get("overlappingrangeipreservations", "kube-system", ips["orphan"])


def test_a_pod_that_starts_listing_the_address_after_the_plan_keeps_it(simcluster):
    b, ips = build()
    cluster = synced(simcluster, b)
    run = orphan_run(cluster)
    simcluster.create("pods", another_pod_listing(b, ips["orphan"], created_ago=600))
    run = reclaim_execute(run_id=run.pk)
    [item] = run.items.all()
    assert item.outcome == Outcome.SKIPPED and "pod default/web-9 lists" in item.message
    assert key_of(ips["orphan"]) in live_allocations(simcluster)


def test_a_listing_on_an_unknown_nad_counts_as_the_same_network(simcluster):
    b, ips = build()
    cluster = synced(simcluster, b)
    run = orphan_run(cluster)
    # a NAD ippam has never synced: its scope cannot be told, so skipping is the safe answer
    simcluster.create("pods", another_pod_listing(b, ips["orphan"], nad=("default", "nope")))
    run = reclaim_execute(run_id=run.pk)
    [item] = run.items.all()
    assert item.outcome == Outcome.SKIPPED and "of default/nope" in item.message


def test_a_listing_in_another_whereabouts_network_does_not_hold_the_address(simcluster):
    b, ips = build()
    # the same range under another network_name: whereabouts tracks it separately
    b.whereabouts_nad("default", "net-b", "10.1.0.0/24", network_name="blue", master="eth2")
    cluster = synced(simcluster, b)
    run = orphan_run(cluster)
    simcluster.create("pods", another_pod_listing(b, ips["orphan"], nad=("default", "net-b")))
    run = reclaim_execute(run_id=run.pk)
    [item] = run.items.all()
    assert item.outcome == Outcome.RECLAIMED, item.message
    assert key_of(ips["orphan"]) not in live_allocations(simcluster)


def test_a_dead_pod_listing_the_address_does_not_hold_it(simcluster):
    b, ips = build()
    cluster = synced(simcluster, b)
    run = orphan_run(cluster)
    pod = another_pod_listing(b, ips["orphan"])
    pod["status"]["phase"] = "Succeeded"
    simcluster.create("pods", pod)
    run = reclaim_execute(run_id=run.pk)
    assert run.items.get().outcome == Outcome.RECLAIMED


def test_a_pod_recreated_under_the_same_name_is_another_pod(simcluster):
    b, ips = build()
    cluster = synced(simcluster, b)
    run = reclaim_plan(
        cluster=cluster,
        finding_ids=finding_ids(cluster, Finding.Kind.STALE_ALLOCATION),
        include_suspect=True,
        actor="t",
    )
    [planned] = run.items.all()
    assert planned.pod_uid == simcluster.get("pods", "default", "web-1")["metadata"]["uid"]
    # a StatefulSet re-creates web-1 before execution: it is starting, and whereabouts hands
    # the allocation of its podref back to it on CNI ADD
    simcluster.delete("pods", "default", "web-1")
    simcluster.create("pods", b.pod("default", "web-1", "node-1", [NET], "Pending", created_ago=1))
    run = reclaim_execute(run_id=run.pk)
    [item] = run.items.all()
    assert item.outcome == Outcome.SKIPPED, item.message
    assert "re-created" in item.message and "Pending" in item.message
    assert key_of(ips["stale"]) in live_allocations(simcluster)


def test_a_recreated_pod_that_lists_the_address_holds_it(simcluster):
    b, ips = build()
    cluster = synced(simcluster, b)
    run = reclaim_plan(
        cluster=cluster,
        finding_ids=finding_ids(cluster, Finding.Kind.STALE_ALLOCATION),
        actor="t",
    )
    simcluster.delete("pods", "default", "web-1")
    pod = b.pod("default", "web-1", "node-1", [NET, NET], ips=[None, ips["stale"]], allocate=False)
    simcluster.create("pods", pod)
    run = reclaim_execute(run_id=run.pk)
    [item] = run.items.all()
    assert item.outcome == Outcome.SKIPPED and "re-created" in item.message, item.message
    assert f"lists {ips['stale']}" in item.message


def test_an_orphaned_reservation_another_pod_lists_is_kept(simcluster):
    b, ips = build()
    pool = b.pools[b.wb_nads[NET].pool_key]
    ip = pool.next_free()
    b.reservation(ip, "default/gone-2")  # no allocation: an orphaned reservation
    cluster = synced(simcluster, b)
    [finding] = Finding.objects.filter(cluster=cluster, kind=Finding.Kind.ORPHANED_RESERVATION)
    run = reclaim_plan(cluster=cluster, finding_ids=[finding.pk], actor="t")
    simcluster.create("pods", another_pod_listing(b, ip))
    run = reclaim_execute(run_id=run.pk)
    [item] = run.items.all()
    assert item.outcome == Outcome.SKIPPED and "pod default/web-9 lists" in item.message
    assert simcluster.get("overlappingrangeipreservations", "kube-system", ip) is not None


# --- issue 10, case 3: odd allocation values never crash the worker; runs always end ---------


@pytest.mark.parametrize(
    "value",
    ["garbage", None, ["default/gone-1"], 7, {"id": "x"}, {"id": "x", "podref": 5}],
    ids=["string", "null", "list", "number", "no-podref", "podref-not-a-string"],
)
def test_an_odd_allocation_value_ends_the_item_with_a_sentence(simcluster, value):
    b, ips = build()
    cluster = synced(simcluster, b)
    run = orphan_run(cluster)
    key = key_of(ips["orphan"])
    simcluster.json_patch(
        "ippools", *POOL, [{"op": "replace", "path": f"/spec/allocations/{key}", "value": value}]
    )
    run = reclaim_execute(run_id=run.pk)
    run.refresh_from_db()
    [item] = run.items.all()
    assert run.state == "done"
    assert item.outcome in (Outcome.SKIPPED, Outcome.NOOP) and item.message.endswith(".")
    assert key in live_allocations(simcluster)  # an allocation we cannot read is not freed


def test_odd_allocations_map_ends_the_item(simcluster):
    b, ips = build()
    cluster = synced(simcluster, b)
    run = orphan_run(cluster)
    simcluster.json_patch(
        "ippools", *POOL, [{"op": "replace", "path": "/spec/allocations", "value": ["x"]}]
    )
    run = reclaim_execute(run_id=run.pk)
    [item] = run.items.all()
    assert run.state == "done" and item.outcome == Outcome.SKIPPED, item.message


def test_an_unexpected_error_fails_one_item_and_the_run_goes_on(simcluster, monkeypatch):
    b, ips = build()
    cluster = synced(simcluster, b)
    run = reclaim_plan(cluster=cluster, actor="t")
    original = KubeWrites.get_pod

    def broken(self, namespace, name):
        if name == "gone-1":
            raise RuntimeError("boom")
        return original(self, namespace, name)

    monkeypatch.setattr(KubeWrites, "get_pod", broken)
    run = reclaim_execute(run_id=run.pk)
    run.refresh_from_db()
    items = {str(i.ip): i for i in run.items.all()}
    assert run.state == "done"
    assert items[ips["orphan"]].outcome == Outcome.FAILED
    assert "RuntimeError: boom" in items[ips["orphan"]].message
    assert items[ips["stale"]].outcome == Outcome.RECLAIMED
    assert key_of(ips["orphan"]) in live_allocations(simcluster)


def test_a_run_whose_worker_died_is_failed_when_read(simcluster, admin_client, settings):
    import datetime as dt

    from django.utils import timezone

    from ippam.models import ReclaimRun

    settings.IPPAM_RECLAIM_DEADLINE_SECONDS = 600
    b, _ = build()
    cluster = synced(simcluster, b)
    run = reclaim_plan(cluster=cluster, actor="t")
    ReclaimRun.objects.filter(pk=run.pk).update(
        state=ReclaimRun.State.RUNNING, started_at=timezone.now() - dt.timedelta(seconds=601)
    )
    page = admin_client.get(f"/reclaim/{run.pk}/", HTTP_HX_REQUEST="true").content.decode()
    run.refresh_from_db()
    assert run.state == ReclaimRun.State.FAILED and run.finished_at is not None
    assert select(page, "[hx-trigger='every 1s']") == []  # no more polling
    messages = set(run.items.values_list("message", flat=True))
    assert messages == {
        "The worker stopped before this item ran; nothing was freed for it (check the audit log)."
    }
    assert len(live_allocations(simcluster)) == 5
    # a worker that comes back late frees nothing for the failed run
    simcluster.clear_requests()
    assert reclaim_run(run.pk)["noop"] is True
    assert [r for r in simcluster.requests if r["method"] in ("PATCH", "DELETE")] == []


def test_a_running_run_within_its_deadline_keeps_polling(simcluster, admin_client):
    from django.utils import timezone

    from ippam.models import ReclaimRun

    b, _ = build()
    cluster = synced(simcluster, b)
    run = reclaim_plan(cluster=cluster, actor="t")
    ReclaimRun.objects.filter(pk=run.pk).update(
        state=ReclaimRun.State.RUNNING, started_at=timezone.now()
    )
    page = admin_client.get(f"/reclaim/{run.pk}/", HTTP_HX_REQUEST="true").content.decode()
    run.refresh_from_db()
    assert run.state == ReclaimRun.State.RUNNING and select(page, "[hx-trigger='every 1s']")
