"""An allocation keeps its database id while its pool, key and holder stay the same.

API consumers and links name allocations by id (/api/v1/allocations/<id>/): a resync, a
watch event on the pool or a bump of the pool's resourceVersion must not renumber the
allocations they did not change. Everything goes through simcluster over a real socket.
"""

from __future__ import annotations

import threading

import pytest

from ippam.models import Allocation, Cluster, FreedAddress, IPPool
from ippam.sync import cluster_sync_full
from ippam.sync.verify import rows_orphaned
from ippam.watch import Watcher
from simcluster.builder import ClusterBuilder
from tests.test_watch import eventually

pytestmark = pytest.mark.django_db

POOL = ("kube-system", "10.5.0.0-24")


def _seed(simcluster) -> None:
    b = ClusterBuilder(seed=11)
    b.node("n1")
    b.whereabouts_nad("lab", "net-a", "10.5.0.0/24")
    for i in range(6):
        b.pod("lab", f"p{i}", "n1", [("lab", "net-a")])
    simcluster.seed(b.objects())


def _ids(cluster: Cluster) -> dict[str, tuple[int, str]]:
    """key -> (id, podref) of the pool's allocation rows."""
    return {
        key: (pk, podref)
        for pk, key, podref in Allocation.objects.filter(
            cluster=cluster, pool__name=POOL[1]
        ).values_list("id", "key", "podref")
    }


def _allocations(simcluster) -> dict[str, dict]:
    return simcluster.get("ippools", *POOL)["spec"]["allocations"]


def _patch_allocations(simcluster, change: dict) -> None:
    simcluster.patch("ippools", *POOL, {"spec": {"allocations": change}})


@pytest.fixture
def synced(simcluster) -> Cluster:
    _seed(simcluster)
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig)
    cluster_sync_full(cluster=cluster)
    assert len(_ids(cluster)) == 6
    return cluster


@pytest.mark.parametrize("force", [False, True], ids=["resync", "forced-resync"])
def test_a_resync_keeps_every_allocation_id(simcluster, synced, force):
    """A forced resync rewrites every pool (a parser bump, a rebuilt cluster): still no
    allocation that stayed the same gets a new id."""
    before = _ids(synced)
    cluster_sync_full(cluster=synced, force=force)
    assert _ids(synced) == before


def test_a_changed_pool_keeps_the_ids_of_the_allocations_it_still_holds(simcluster, synced):
    """The pool changes between syncs (one allocation freed, one added): the full sync
    rewrites that pool, and only the freed and the added allocation are other rows."""
    before = _ids(synced)
    freed_key = sorted(before, key=int)[0]
    _patch_allocations(
        simcluster,
        {freed_key: None, "200": {"id": "c" * 64, "podref": "lab/late", "ifname": "net1"}},
    )
    cluster_sync_full(cluster=synced)
    after = _ids(synced)
    assert freed_key not in after
    assert after["200"][1] == "lab/late"
    assert {k: v for k, v in after.items() if k != "200"} == {
        k: v for k, v in before.items() if k != freed_key
    }
    assert rows_orphaned() == []


def test_a_resource_version_bump_keeps_the_ids(simcluster, synced):
    """A change elsewhere in the IPPool (a label) bumps its resourceVersion: the pool is
    written again, its allocations are the same rows."""
    before = _ids(synced)
    version = simcluster.get("ippools", *POOL)["metadata"]["resourceVersion"]
    simcluster.patch("ippools", *POOL, {"metadata": {"labels": {"touched": "yes"}}})
    assert simcluster.get("ippools", *POOL)["metadata"]["resourceVersion"] != version
    run = cluster_sync_full(cluster=synced)
    assert run.counts["written"]["ippools"] == 1
    assert _ids(synced) == before


def test_a_new_container_of_the_same_pod_is_updated_in_place(simcluster, synced):
    """Same pool, key and holder (a pod re-created under its name, as a StatefulSet's is):
    the row is updated, its id and first_seen kept."""
    key = sorted(_ids(synced), key=int)[1]
    row = Allocation.objects.get(cluster=synced, pool__name=POOL[1], key=key)
    value = dict(_allocations(simcluster)[key], id="d" * 64, ifname="net2")
    _patch_allocations(simcluster, {key: value})
    cluster_sync_full(cluster=synced)
    again = Allocation.objects.get(cluster=synced, pool__name=POOL[1], key=key)
    assert (again.id, again.podref, again.first_seen) == (row.id, row.podref, row.first_seen)
    assert (again.container_id, again.ifname) == ("d" * 64, "net2")


def test_a_changed_holder_is_a_new_allocation_with_a_new_id(simcluster, synced):
    """Same pool and key, another pod: whereabouts never moves an allocation from one pod
    to another; it freed the offset and handed it out again (it reuses freed offsets at
    once). So the row that named the old pod is gone (its id must not start naming
    another pod to whoever follows it) and the new holder's row has an id, and a
    first_seen, of its own; the old holder is recorded as freed."""
    before = _ids(synced)
    key = sorted(before, key=int)[2]
    row = Allocation.objects.get(cluster=synced, pool__name=POOL[1], key=key)
    _patch_allocations(
        simcluster, {key: {"id": "e" * 64, "podref": "lab/successor", "ifname": "net1"}}
    )
    cluster_sync_full(cluster=synced)
    after = _ids(synced)
    assert after[key][1] == "lab/successor"
    assert after[key][0] != row.id
    assert not Allocation.objects.filter(pk=row.id).exists()
    assert {k: v for k, v in after.items() if k != key} == {
        k: v for k, v in before.items() if k != key
    }
    assert FreedAddress.objects.filter(cluster=synced, key=key, podref=row.podref).exists()


def test_the_copy_path_keeps_the_ids(postgres_required, simcluster, synced, monkeypatch):
    """Big batches take COPY on PostgreSQL (the pools' upsert through a staging table, the
    new allocations straight in): forced on the test's sizes, the other ids still stay."""
    from ippam.sync import store

    monkeypatch.setattr(store, "COPY_THRESHOLD", 2)
    before = _ids(synced)
    freed_key, changed_key = sorted(before, key=int)[:2]
    value = dict(_allocations(simcluster)[changed_key], id="a" * 64)
    new = {"id": "b" * 64, "podref": "lab/late", "ifname": "net1"}
    _patch_allocations(simcluster, {freed_key: None, changed_key: value, "200": new})
    cluster_sync_full(cluster=synced, force=True)
    after = _ids(synced)
    assert after.pop("200")[1] == "lab/late"
    assert after == {k: v for k, v in before.items() if k != freed_key}
    assert Allocation.objects.get(pk=before[changed_key][0]).container_id == "a" * 64


def test_a_watch_event_on_the_pool_keeps_the_ids_of_the_others(simcluster, transactional_db):
    """The watcher applies an IPPool MODIFIED event that frees one allocation and changes
    another's container: every other allocation keeps its id, the changed one too."""
    _seed(simcluster)
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig)
    cluster_sync_full(cluster=cluster)
    before = _ids(cluster)
    freed_key, changed_key = sorted(before, key=int)[:2]
    watcher = Watcher(batch_seconds=0.1)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        eventually(
            lambda: (
                watcher.watches.get(cluster.pk)
                and all(t.is_alive() for t in watcher.watches[cluster.pk])
            )
        )
        simcluster.wait_for_watches(len(watcher.watches[cluster.pk]))
        value = dict(_allocations(simcluster)[changed_key], id="f" * 64)
        _patch_allocations(simcluster, {freed_key: None, changed_key: value})

        def applied():
            """the watcher wrote the pool's new allocations"""
            return (
                not Allocation.objects.filter(
                    cluster=cluster, pool__name=POOL[1], key=freed_key
                ).exists()
                and Allocation.objects.filter(
                    cluster=cluster, pool__name=POOL[1], key=changed_key, container_id="f" * 64
                ).exists()
            )

        eventually(applied)
    finally:
        watcher.stop()
        thread.join(10)
    assert _ids(cluster) == {k: v for k, v in before.items() if k != freed_key}
    assert IPPool.objects.get(cluster=cluster, name=POOL[1]).allocated == 5
    assert rows_orphaned() == []
