"""Links the database does not enforce (no FK constraints on the sync's child tables) still
hold after every write path: full sync, resync with deletions, the watcher, removing a
cluster. `rows_orphaned` is the check; the fault suite runs it after every fault too."""

from __future__ import annotations

import pytest
from django.db import connection

from ippam.clusters import cluster_remove
from ippam.models import (
    Allocation,
    Cluster,
    InterfaceAddress,
    IPPool,
    Pod,
    PodInterface,
)
from ippam.sync import cluster_sync_full
from ippam.sync.store import table
from ippam.sync.verify import rows_orphaned
from tests.test_watch import eventually

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(simcluster) -> Cluster:
    simcluster.load("demo")
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig)
    cluster_sync_full(cluster=cluster)
    assert Pod.objects.filter(cluster=cluster).exists()
    return cluster


def test_an_orphan_is_reported_by_name(synced):
    interface = PodInterface.objects.filter(cluster=synced).first()
    with connection.cursor() as cursor:  # what a faulty writer would leave behind
        cursor.execute(f"DELETE FROM {table(Pod)} WHERE id = %s", [interface.pod_id])
    count = PodInterface.objects.filter(pod_id=interface.pod_id).count()
    assert rows_orphaned() == [f"{count} pod interfaces point at a pod that no longer exists"]


def test_deletions_by_a_resync_leave_no_orphans(simcluster, synced):
    pod = simcluster.list("pods")[0]["metadata"]
    simcluster.delete("pods", pod["namespace"], pod["name"])
    pool = simcluster.list("ippools")[0]["metadata"]
    simcluster.delete("ippools", pool["namespace"], pool["name"])
    nad = simcluster.list("network-attachment-definitions")[0]["metadata"]
    simcluster.delete("network-attachment-definitions", nad["namespace"], nad["name"])

    run = cluster_sync_full(cluster=synced)

    assert (run.counts["deleted"]["pods"], run.counts["deleted"]["ippools"]) == (1, 1)
    assert run.counts["deleted"]["nads"] == 1
    assert rows_orphaned() == []


def test_deletions_through_the_watcher_leave_no_orphans(simcluster, watched):
    victims = [p["metadata"] for p in simcluster.list("pods")[:3]]
    for pod in victims:
        simcluster.delete("pods", pod["namespace"], pod["name"])
    pool = simcluster.list("ippools")[0]["metadata"]
    simcluster.delete("ippools", pool["namespace"], pool["name"])

    def applied() -> bool:
        """the watcher removed the pods and the pool"""
        names = [p["name"] for p in victims]
        return not Pod.objects.filter(cluster=watched, name__in=names).exists() and (
            not IPPool.objects.filter(cluster=watched, name=pool["name"]).exists()
        )

    eventually(applied)
    assert rows_orphaned() == []


def test_removing_a_cluster_removes_every_row_it_owned(synced, simcluster):
    other = Cluster.objects.create(name="other", kubeconfig=simcluster.kubeconfig)
    cluster_sync_full(cluster=other)

    cluster_remove(name="sim")

    assert rows_orphaned() == []
    for model in (Pod, PodInterface, InterfaceAddress, IPPool, Allocation):
        assert not model.objects.filter(cluster_id=synced.pk).exists()
        assert model.objects.filter(cluster=other).exists()  # the other cluster untouched
