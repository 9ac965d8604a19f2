"""A full sync holds its cluster's row for its whole transaction. A watcher that serves
several clusters must not stall all of them meanwhile: the busy cluster's batches wait
(in order) and are applied once the sync commits; the others go on."""

from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction

from ippam.models import Cluster, Pod
from ippam.sync import cluster_sync_full
from ippam.watch import Watcher
from simcluster.builder import ClusterBuilder
from tests.test_watch import eventually


@pytest.fixture
def two_watched(simcluster, transactional_db, postgres_required):
    b = ClusterBuilder(seed=5)
    b.node("n1")
    b.whereabouts_nad("lab", "net-a", "10.6.0.0/24")
    b.pod("lab", "p0", "n1", [("lab", "net-a")])
    simcluster.seed(b.objects())
    # Two registered clusters served by the same API server: every event reaches both.
    busy = Cluster.objects.create(name="busy", kubeconfig=simcluster.kubeconfig)
    free = Cluster.objects.create(name="free", kubeconfig=simcluster.kubeconfig)
    for cluster in (busy, free):
        cluster_sync_full(cluster=cluster)
    watcher = Watcher(batch_seconds=0.1, kinds=["pods"])
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    eventually(lambda: all(watcher.watches.get(c.pk) for c in (busy, free)))
    simcluster.wait_for_watches(2)
    yield busy, free, b, watcher
    watcher.stop()
    thread.join(10)


def hold_cluster_row(cluster: Cluster, release: threading.Event, held: threading.Event) -> None:
    """What a full sync's transaction does to the cluster row, until `release`."""
    try:
        with transaction.atomic():
            Cluster.objects.select_for_update().get(pk=cluster.pk)
            held.set()
            release.wait(20)
    finally:
        connections.close_all()


def test_a_busy_cluster_waits_and_the_others_go_on(simcluster, two_watched):
    busy, free, b, watcher = two_watched
    release, held = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold_cluster_row, args=(busy, release, held), daemon=True)
    holder.start()
    assert held.wait(10)
    try:
        simcluster.create("pods", b.pod("lab", "fresh", "n1", [("lab", "net-a")]))
        simcluster.delete("pods", "lab", "p0")

        def free_applied() -> bool:
            """the free cluster has the new pod and lost p0 while the other is held"""
            names = set(Pod.objects.filter(cluster=free).values_list("name", flat=True))
            return "fresh" in names and "p0" not in names

        eventually(free_applied)
        names = set(Pod.objects.filter(cluster=busy).values_list("name", flat=True))
        assert names == {"p0"}  # nothing applied while the sync holds the row
        assert watcher.deferred  # waiting, not dropped
    finally:
        release.set()
        holder.join(10)

    def busy_applied() -> bool:
        """once released, the held cluster gets both events, in order"""
        return set(Pod.objects.filter(cluster=busy).values_list("name", flat=True)) == {"fresh"}

    eventually(busy_applied)
    assert not watcher.deferred


def test_a_watcher_commit_does_not_wait_for_the_disk_and_nothing_else_changes(
    postgres_required, transactional_db
):
    from django.db import connection

    from ippam.watch import _commit_without_flush_wait

    def setting() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    with transaction.atomic():
        _commit_without_flush_wait()
        assert setting() == "off"  # this transaction only (SET LOCAL) ...
    assert setting() == "on"  # ... the connection's other work keeps its durability
