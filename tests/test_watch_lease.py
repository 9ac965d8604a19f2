"""Sharded watchers (issue 15): each cluster followed by exactly one watcher, every event
applied exactly once, a dead watcher's clusters taken over with nothing missed; one full
sync per cluster at a time across workers."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from ippam import tasks
from ippam.models import Cluster, Pod, WatcherLease, WatchEventCount
from ippam.sync import cluster_sync_full
from ippam.watch import Batch, Watcher
from ippam.watch_lease import (
    LeaseLost,
    fair_share,
    lease_claim,
    lease_fence,
    leases_ensure,
)
from simcluster.builder import ClusterBuilder
from simcluster.fleet import Fleet

CLUSTERS = 4
LEASE = 4.0  # seconds; takeover waits for it, so keep it short (nothing asserts on time)


def eventually(check, timeout: float = 15.0):
    """Wait for a condition (a signal, not a sleep-and-hope); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except OperationalError:  # SQLite test database briefly locked by a writer
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check.__doc__ or check}")
        time.sleep(0.05)


def read(query):
    """A read while watchers write: SQLite's shared in-memory test database answers "table
    is locked" instead of waiting, so try again (PostgreSQL never needs to)."""
    for _ in range(100):
        try:
            return query()
        except OperationalError:
            time.sleep(0.05)
    return query()


def pods_of(b: ClusterBuilder, prefix: str, count: int) -> list[dict]:
    return [b.pod("lab", f"{prefix}-{i}", "n1", [("lab", "net-a")]) for i in range(count)]


@pytest.fixture
def fleet(tmp_path, transactional_db):
    fleet = Fleet(CLUSTERS, kubeconfig_dir=str(tmp_path), bookmark_interval=0.5)
    clusters = []
    for i, server in enumerate(fleet.servers):
        b = ClusterBuilder(seed=40 + i)
        b.node("n1")
        b.whereabouts_nad("lab", "net-a", "10.9.0.0/24")
        server.store.load_objects(b.objects())
        cluster = Cluster.objects.create(name=f"fleet-{i}", kubeconfig=fleet.kubeconfigs[i])
        cluster_sync_full(cluster=cluster)
        clusters.append(cluster)
    yield fleet, clusters
    fleet.stop()


def start(name: str) -> tuple[Watcher, threading.Thread]:
    watcher = Watcher(
        kinds=["pods"],
        batch_seconds=0.1,
        identity=name,
        lease_seconds=LEASE,
        renew_seconds=0.3,
    )
    thread = threading.Thread(target=watcher.run, name=name, daemon=True)
    thread.start()
    return watcher, thread


def settled(fleet: Fleet, watchers: list[Watcher], clusters: list[Cluster]) -> bool:
    """every cluster has one holder among the watchers (its fair share each), on one stream"""
    ids = {c.pk for c in clusters}
    held = [set(w.held) for w in watchers]
    if set().union(*held) != ids or sum(len(h) for h in held) != len(ids):
        return False
    share = fair_share(clusters=len(ids), watchers=len(watchers))
    if any(len(h) != share for h in held):
        return False
    if any(len(w.watches.get(pk, [])) != 1 for w in watchers for pk in w.held):
        return False
    return all(server.store.open_watches("pods") == 1 for server in fleet.servers)


def applied(cluster: Cluster) -> int:
    row = WatchEventCount.objects.filter(cluster=cluster, kind="pods").first()
    return row.total if row else 0


def test_two_watchers_share_the_fleet_and_apply_each_event_once(fleet):
    sim, clusters = fleet
    a, a_thread = start("watcher-a")
    b, b_thread = start("watcher-b")
    try:
        eventually(lambda: settled(sim, [a, b], clusters))
        # Fair share: with two live watchers neither keeps more than half.
        assert len(a.held) == len(b.held) == fair_share(clusters=CLUSTERS, watchers=2)
        leases = read(lambda: list(WatcherLease.objects.filter(cluster__in=clusters)))
        assert {lease.cluster_id: lease.holder for lease in leases} == {
            **{pk: "watcher-a" for pk in a.held},
            **{pk: "watcher-b" for pk in b.held},
        }

        for i, server in enumerate(sim.servers):
            b_ = ClusterBuilder(seed=70 + i)
            b_.whereabouts_nad("lab", "net-a", "10.9.0.0/24")
            for pod in pods_of(b_, "new", 5):
                server.store.create("pods", pod, "lab")
        for cluster in clusters:
            eventually(lambda c=cluster: applied(c) >= 5)
            assert (
                read(
                    lambda c=cluster: Pod.objects.filter(cluster=c, name__startswith="new-").count()
                )
                == 5
            )
        # Stable and exactly once: no event applied by both, none twice.
        assert read(lambda: [applied(c) for c in clusters]) == [5] * CLUSTERS
    finally:
        a.stop()
        b.stop()
        a_thread.join(10)
        b_thread.join(10)
    # A clean stop gives the leases back at once.
    assert not WatcherLease.objects.exclude(holder="").filter(expires_at__gt=timezone.now())


def test_a_dead_watchers_clusters_are_taken_over_with_nothing_missed(fleet):
    sim, clusters = fleet
    a, a_thread = start("watcher-a")
    b, b_thread = start("watcher-b")
    try:
        eventually(lambda: settled(sim, [a, b], clusters))
        orphaned = set(a.held)
        a.stop(release=False)  # dies: its leases stay until they expire
        a_thread.join(10)
        # Events during the gap, before anyone follows a's clusters again.
        for i, server in enumerate(sim.servers):
            b_ = ClusterBuilder(seed=80 + i)
            b_.whereabouts_nad("lab", "net-a", "10.9.0.0/24")
            for pod in pods_of(b_, "gap", 3):
                server.store.create("pods", pod, "lab")

        def taken_over():
            """watcher-b holds every cluster, including the dead one's"""
            return set(b.held) == {c.pk for c in clusters}

        eventually(taken_over, timeout=3 * LEASE + 5)
        for pk in orphaned:
            lease = read(lambda pk=pk: WatcherLease.objects.get(cluster_id=pk))
            assert lease.holder == "watcher-b"
            assert lease.generation >= 2  # a new tenure: a's generation is fenced off
        for cluster in clusters:
            eventually(lambda c=cluster: applied(c) >= 3)
            assert (
                read(
                    lambda c=cluster: Pod.objects.filter(cluster=c, name__startswith="gap-").count()
                )
                == 3
            )
        assert read(lambda: [applied(c) for c in clusters]) == [3] * CLUSTERS
    finally:
        a.stop(release=False)
        b.stop()
        b_thread.join(10)


def test_a_stale_holder_cannot_write_after_a_takeover(simcluster, transactional_db):
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig)
    leases_ensure([cluster.pk])
    old = lease_claim(cluster_id=cluster.pk, identity="old", lease_seconds=15)
    assert old == 1
    assert lease_claim(cluster_id=cluster.pk, identity="new", lease_seconds=15) is None
    # "old" stalls past its lease (expiry moved instead of waiting 15 s); "new" takes over.
    WatcherLease.objects.filter(cluster=cluster).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert lease_claim(cluster_id=cluster.pk, identity="new", lease_seconds=15) == 2

    with pytest.raises(LeaseLost, match="no longer held by old"):
        lease_fence(cluster_id=cluster.pk, identity="old", generation=old)

    stale = Watcher(kinds=["pods"], identity="old")
    stale.held[cluster.pk] = old
    stale.sessions[cluster.pk] = 1
    pod = ClusterBuilder(seed=3).pod("lab", "late", "n1", [])
    stale._apply([Batch(cluster.pk, "pods", [("ADDED", pod)], "999", None, 1)], [])
    assert not Pod.objects.filter(cluster=cluster, name="late").exists()
    assert Cluster.objects.get(pk=cluster.pk).resource_versions.get("pods") != "999"
    assert cluster.pk not in stale.held  # it noticed, and stops following the cluster


def test_one_full_sync_per_cluster_at_a_time_across_workers(simcluster, transactional_db):
    """Two workers handed the same cluster: one syncs, the other sees the lock and skips."""
    simcluster.seed(ClusterBuilder(seed=5).objects())
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig)
    simcluster.fault(r"/api/v1/pods", latency=1.0, count=1)  # hold the first sync open
    simcluster.clear_requests()
    results: list[dict] = []
    first = threading.Thread(target=lambda: results.append(tasks.sync_cluster(cluster.pk)))
    first.start()
    eventually(lambda: any(r["path"] == "/api/v1/pods" for r in simcluster.requests))
    second = tasks.sync_cluster(cluster.pk)
    first.join(30)
    assert second == {"status": "locked", "cluster": "sim"}
    assert results[0]["status"] == "ok"
