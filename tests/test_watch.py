"""The watcher applies adds, changes and deletes between full syncs, and survives faults."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError

from ippam.models import Cluster, IPPool, NetworkAttachmentDefinition, Pod, PodInterface
from ippam.sync import cluster_sync_full, objects_apply
from ippam.watch import Watcher
from simcluster.builder import ClusterBuilder

NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status"


def eventually(check, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except OperationalError:  # SQLite's shared in-memory test database: table locked
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check.__doc__ or check}")
        time.sleep(0.05)


@pytest.fixture
def watching(simcluster, transactional_db):
    b = ClusterBuilder(seed=11)
    b.node("n1")
    b.whereabouts_nad("lab", "net-a", "10.5.0.0/24")
    for i in range(5):
        b.pod("lab", f"p{i}", "n1", [("lab", "net-a")])
    simcluster.seed(b.objects())
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig)
    cluster_sync_full(cluster=cluster)
    watcher = Watcher(batch_seconds=0.1)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    eventually(
        lambda: (
            watcher.watches.get(cluster.pk)
            and all(t.is_alive() for t in watcher.watches[cluster.pk])
        )
    )
    simcluster.wait_for_watches(len(watcher.watches[cluster.pk]))
    yield cluster, b
    watcher.stop()
    thread.join(10)


def new_pod(b: ClusterBuilder, name: str) -> dict:
    return b.pod("lab", name, "n1", [("lab", "net-a")])


def test_a_created_pod_appears_and_a_deleted_one_goes(simcluster, watching):
    cluster, b = watching
    pod = new_pod(b, "fresh")
    started = time.monotonic()
    simcluster.create("pods", pod)

    def appeared():
        """the pod and its net1 interface are in the database"""
        return PodInterface.objects.filter(
            cluster=cluster, pod__name="fresh", interface="net1"
        ).exists()

    eventually(appeared)
    assert time.monotonic() - started < 5

    simcluster.delete("pods", "lab", "fresh")
    eventually(lambda: not Pod.objects.filter(cluster=cluster, name="fresh").exists())
    eventually(lambda: not PodInterface.objects.filter(cluster=cluster, pod__name="fresh").exists())


def test_modified_objects_are_updated_and_pool_usage_follows(simcluster, watching):
    cluster, _b = watching
    pool = simcluster.list("ippools")[0]
    key = sorted(pool["spec"]["allocations"])[0]
    simcluster.patch(
        "ippools", "kube-system", pool["metadata"]["name"], {"spec": {"allocations": {key: None}}}
    )

    db_pool = eventually(lambda: IPPool.objects.filter(cluster=cluster, allocated=4).first())
    assert db_pool.utilization == pytest.approx(4 / 254)

    simcluster.patch(
        "pods",
        "lab",
        "p0",
        {
            "metadata": {
                "annotations": {
                    NETWORK_STATUS: '[{"name": "lab/net-a", "interface": "net9", "ips": ["10.5.0.200"]}]'
                }
            }
        },
    )
    eventually(
        lambda: PodInterface.objects.filter(
            cluster=cluster, pod__name="p0", interface="net9"
        ).exists()
    )
    eventually(lambda: PodInterface.objects.filter(cluster=cluster, pod__name="p0").count() == 1)


def test_dropped_watches_resume_without_losing_events(simcluster, watching):
    cluster, b = watching
    simcluster.drop_watches()
    simcluster.create("pods", new_pod(b, "after-drop"))
    eventually(lambda: Pod.objects.filter(cluster=cluster, name="after-drop").exists(), timeout=8)


def test_an_expired_version_relists_and_removes_what_was_missed(simcluster, watching):
    cluster, b = watching
    simcluster.server.store.drop_watches()
    simcluster.compact()
    # Changes the watches cannot replay (the log is gone): only a re-list sees them.
    simcluster.delete("pods", "lab", "p1")
    simcluster.create(
        "network-attachment-definitions", b.whereabouts_nad("lab", "late-net", "10.6.0.0/28")
    )
    simcluster.compact()
    eventually(lambda: not Pod.objects.filter(cluster=cluster, name="p1").exists(), timeout=8)
    eventually(
        lambda: NetworkAttachmentDefinition.objects.filter(
            cluster=cluster, name="late-net"
        ).exists(),
        timeout=8,
    )


def test_objects_apply_keeps_the_last_event_per_object(simcluster, db):
    b = ClusterBuilder(seed=2)
    b.node("n1")
    b.whereabouts_nad("lab", "net-a", "10.5.0.0/24")
    pod = b.pod("lab", "x", "n1", [("lab", "net-a")])
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig)
    objects_apply(
        cluster_id=cluster.pk,
        kind="nads",
        events=[("ADDED", o) for o in b.objects()["network-attachment-definitions"]],
    )
    result = objects_apply(
        cluster_id=cluster.pk,
        kind="pods",
        events=[("ADDED", pod), ("DELETED", pod), ("ADDED", pod)],
    )
    assert result == {"upserted": 1, "deleted": 0}
    iface = PodInterface.objects.get(cluster=cluster, pod__name="x", interface="net1")
    assert iface.nad.name == "net-a"
    objects_apply(
        cluster_id=cluster.pk, kind="pods", events=[("DELETED", pod)], resource_version="77"
    )
    assert not Pod.objects.filter(cluster=cluster).exists()
    cluster.refresh_from_db()
    assert cluster.resource_versions["pods"] == "77"


def test_a_relist_replaces_an_object_with_a_new_uid_at_the_same_version(simcluster, db):
    """A re-list after 410 from a rebuilt cluster: same resourceVersion, another object."""
    from ippam.sync.apply import kind_replace

    b = ClusterBuilder(seed=4)
    b.node("n1")
    b.whereabouts_nad("lab", "net-a", "10.5.0.0/24")
    b.pod("lab", "p0", "n1", [("lab", "net-a")])
    simcluster.seed(b.objects())
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig)
    cluster_sync_full(cluster=cluster)
    assert PodInterface.objects.filter(cluster=cluster, pod__name="p0").count() == 2
    pod = simcluster.get("pods", "lab", "p0")
    pod["metadata"]["uid"] = "another-pod"
    pod["metadata"]["annotations"][NETWORK_STATUS] = "[]"

    kind_replace(cluster_id=cluster.pk, kind="pods", objects=[pod])

    assert Pod.objects.get(cluster=cluster, name="p0").uid == "another-pod"
    assert PodInterface.objects.filter(cluster=cluster, pod__name="p0").count() == 0
