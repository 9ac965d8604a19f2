"""The fault suite: after each fault the database equals the cluster, or keeps its last
complete state; never a half-written sync, never stale data kept.

Each test ends with `differences(...)`, which compares every kind (keys, uids,
resourceVersions, key fields, allocations, interfaces) through ippam.sync.verify.
"""

from __future__ import annotations

import pytest

from ippam.kube.client import KubeError
from ippam.kube.resources import RESOURCES
from ippam.models import Allocation, Cluster, Node, Pod, SyncRun
from ippam.selectors.clusters import cluster_health
from ippam.sync import cluster_sync_full
from ippam.sync.verify import cluster_differences, cluster_verify
from tests.test_watch import eventually

pytestmark = pytest.mark.django_db

PLURALS = {
    "nads": "network-attachment-definitions",
    "ippools": "ippools",
    "reservations": "overlappingrangeipreservations",
    "nodeslicepools": "nodeslicepools",
    "nodes": "nodes",
    "pods": "pods",
}


def cluster_state(sim) -> dict[str, list[dict]]:
    """Every object of every compared kind, read from the store (works on a dead server)."""
    return {kind: sim.list(plural) for kind, plural in PLURALS.items()}


def differences(sim, cluster: Cluster) -> list[str]:
    """Every difference between the database and the simulated cluster, both ways."""
    return cluster_differences(cluster, cluster_state(sim))


def change_everything(sim) -> None:
    """One change of every kind, so a sync that wrote half of it would show."""
    for obj in sim.list("pods")[:5]:
        sim.delete("pods", obj["metadata"]["namespace"], obj["metadata"]["name"])
    pool = sim.list("ippools")[0]
    sim.patch(
        "ippools",
        pool["metadata"]["namespace"],
        pool["metadata"]["name"],
        {"spec": {"allocations": None}},
    )
    orip = sim.list("overlappingrangeipreservations")[0]
    sim.delete(
        "overlappingrangeipreservations", orip["metadata"]["namespace"], orip["metadata"]["name"]
    )
    nad = sim.list("network-attachment-definitions")[0]
    sim.patch(
        "network-attachment-definitions",
        nad["metadata"]["namespace"],
        nad["metadata"]["name"],
        {"metadata": {"annotations": {"fault-suite": "changed"}}},
    )
    node = sim.list("nodes")[0]
    sim.patch("nodes", None, node["metadata"]["name"], {"metadata": {"labels": {"fault": "1"}}})


@pytest.fixture
def synced(simcluster):
    simcluster.load("demo")
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig)
    cluster_sync_full(cluster=cluster)
    cluster.refresh_from_db()
    assert differences(simcluster, cluster) == []
    return cluster


def pods_by_key(cluster: Cluster) -> dict[tuple[str, str], tuple[str, str, str]]:
    return {
        (p.namespace, p.name): (p.uid, p.resource_version, p.node_name)
        for p in Pod.objects.filter(cluster=cluster)
    }


def other_node(nodes: list[str]):
    """A change for `rebuild`: every pod scheduled on the next node of `nodes`."""

    def change(pod: dict) -> None:
        spec = pod.setdefault("spec", {})
        if spec.get("nodeName") in nodes:
            spec["nodeName"] = nodes[(nodes.index(spec["nodeName"]) + 1) % len(nodes)]

    return change


# --- issue 10, case 2: a rebuilt cluster keeps stale data -------------------------------


@pytest.mark.parametrize("bulk", [False, True], ids=["executemany", "copy-staging"])
def test_a_cluster_rebuilt_under_the_same_name_is_read_again(
    request, simcluster, synced, monkeypatch, bulk
):
    if bulk:  # PostgreSQL: every batch through COPY into a staging table + ON CONFLICT
        request.getfixturevalue("postgres_required")  # SQLite has no COPY path to test
        monkeypatch.setattr("ippam.sync.store.COPY_THRESHOLD", 1)
    before = pods_by_key(synced)
    nodes = sorted(Node.objects.filter(cluster=synced).values_list("name", flat=True))
    simcluster.rebuild({"pods": other_node(nodes)})
    rebuilt = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o for o in simcluster.list("pods")
    }
    # The premise: same keys and resourceVersions, new uids, other nodes.
    assert {k: o["metadata"]["resourceVersion"] for k, o in rebuilt.items()} == {
        k: v[1] for k, v in before.items()
    }
    assert all(o["metadata"]["uid"] != before[k][0] for k, o in rebuilt.items())

    run = cluster_sync_full(cluster=synced)

    after = pods_by_key(synced)
    assert {k: v[0] for k, v in after.items()} == {
        k: o["metadata"]["uid"] for k, o in rebuilt.items()
    }
    moved = [k for k, v in before.items() if v[2]]
    assert moved and all(after[k][2] != before[k][2] for k in moved)
    assert differences(simcluster, synced) == []
    synced.refresh_from_db()
    assert "kube-system namespace has a new uid" in synced.sync_notice
    assert synced.rebuilt_at is not None
    assert "cluster rebuilt" in cluster_health(synced).message  # the sync bar says it
    assert cluster_verify(synced) == []  # the same comparison, reading over the API
    assert "kube-system" in run.counts["rebuilt"]


def test_resource_versions_going_backwards_mean_rebuilt_even_without_kube_system(
    simcluster, synced
):
    # Advance the counter past what the rebuilt cluster will serve.
    for obj in simcluster.list("pods")[:3]:
        simcluster.patch(
            "pods",
            obj["metadata"]["namespace"],
            obj["metadata"]["name"],
            {"metadata": {"labels": {"bumped": "1"}}},
        )
    cluster_sync_full(cluster=synced)
    simcluster.rebuild()
    # Not allowed to read namespaces: only the resourceVersions can tell.
    simcluster.fault(r"^/api/v1/namespaces/kube-system$", status=403, count=100)

    run = cluster_sync_full(cluster=synced)

    assert "went backwards" in run.counts["rebuilt"]
    synced.refresh_from_db()
    assert "went backwards" in synced.sync_notice
    assert differences(simcluster, synced) == []


def test_a_cluster_without_kube_system_syncs(simcluster, synced):
    simcluster.delete("namespaces", None, "kube-system")
    run = cluster_sync_full(cluster=synced)
    assert run.outcome == SyncRun.Outcome.OK
    assert "rebuilt" not in run.counts
    assert differences(simcluster, synced) == []


# --- faults: each either syncs exactly or fails cleanly keeping the last complete state ---


@pytest.mark.parametrize(
    "path",
    [
        r"^/api/v1/namespaces/kube-system$",
        r"^/apis/k8s.cni.cncf.io/v1/network-attachment-definitions$",
        r"^/apis/whereabouts.cni.cncf.io/v1alpha1/ippools$",
        r"^/apis/whereabouts.cni.cncf.io/v1alpha1/overlappingrangeipreservations$",
        r"^/apis/whereabouts.cni.cncf.io/v1alpha1/nodeslicepools$",
        r"^/api/v1/nodes$",
        r"^/api/v1/pods$",
        r"^/api/v1/events$",
    ],
)
def test_a_500_on_any_read_fails_cleanly_and_the_next_sync_repairs(simcluster, synced, path):
    before = cluster_state(simcluster)
    change_everything(simcluster)
    simcluster.fault(path, status=500, count=1)

    with pytest.raises(KubeError, match="HTTP 500"):
        cluster_sync_full(cluster=synced)

    assert cluster_differences(synced, before) == []  # the last complete state, untouched
    assert SyncRun.objects.filter(cluster=synced).first().outcome == SyncRun.Outcome.FAILED
    cluster_sync_full(cluster=synced)
    assert differences(simcluster, synced) == []


def test_slow_answers_sync_exactly(simcluster, synced):
    change_everything(simcluster)
    simcluster.fault(r"^/api", latency=0.2, count=6)
    run = cluster_sync_full(cluster=synced)
    assert run.outcome == SyncRun.Outcome.OK
    assert differences(simcluster, synced) == []


def test_an_answer_slower_than_the_read_timeout_fails_cleanly(simcluster, synced, monkeypatch):
    monkeypatch.setattr("ippam.kube.resources.LIST_TIMEOUT", (2.0, 0.3))
    before = cluster_state(simcluster)
    change_everything(simcluster)
    simcluster.fault(r"^/api/v1/pods$", latency=1.0, count=1)

    with pytest.raises(KubeError, match="no answer"):
        cluster_sync_full(cluster=synced)

    assert cluster_differences(synced, before) == []
    synced.refresh_from_db()
    assert synced.sync_state == Cluster.SyncState.UNREACHABLE
    cluster_sync_full(cluster=synced)
    assert differences(simcluster, synced) == []


def test_continue_tokens_that_keep_expiring_fail_cleanly(simcluster, synced, settings):
    settings.IPPAM_LIST_PAGE_SIZE = 40
    before = cluster_state(simcluster)
    change_everything(simcluster)

    def progress(kind, phase, count):
        if kind == "pods" and phase == "listing":
            simcluster.compact()  # every next page's continue token is too old: 410

    with pytest.raises(KubeError, match="HTTP 410"):
        cluster_sync_full(cluster=synced, progress=progress)

    assert cluster_differences(synced, before) == []
    run = SyncRun.objects.filter(cluster=synced).first()
    assert run.outcome == SyncRun.Outcome.FAILED and "too old" in run.error
    cluster_sync_full(cluster=synced)
    assert differences(simcluster, synced) == []


def test_an_expired_continue_token_mid_list_restarts_it(simcluster, synced, settings):
    settings.IPPAM_LIST_PAGE_SIZE = 40
    change_everything(simcluster)
    compacted = []

    def progress(kind, phase, count):
        if kind == "pods" and not compacted:
            compacted.append(count)
            simcluster.compact()

    cluster_sync_full(cluster=synced, progress=progress)

    assert any(r["status"] == 410 for r in simcluster.requests)
    assert differences(simcluster, synced) == []


def test_a_restart_after_batches_were_written_rolls_back_only_that_kind(
    postgres_required, simcluster, synced, settings, monkeypatch
):
    """On PostgreSQL the sync writes batches while it lists (one writer thread for every
    kind, each kind in a savepoint). Small batches: pods are partly written when their list
    restarts, and reservations and pools are still queued behind them."""
    settings.IPPAM_LIST_PAGE_SIZE = 40
    monkeypatch.setattr("ippam.sync.full.WRITE_BATCH", 25)
    change_everything(simcluster)
    compacted = []

    def progress(kind, phase, count):
        if kind == "pods" and count >= 120 and not compacted:
            compacted.append(count)
            simcluster.compact()

    from ippam.sync import store

    pods_write, pods_sent = store.pods_write, []

    def counting(cluster_id, generation, records, *args, **kwargs):
        pods_sent.append(len(records))
        return pods_write(cluster_id, generation, records, *args, **kwargs)

    monkeypatch.setattr(store, "pods_write", counting)
    # force: every object is written again, so batches of pods are in before the restart.
    run = cluster_sync_full(cluster=synced, progress=progress, force=True)

    assert compacted and any(r["status"] == 410 for r in simcluster.requests)
    pods = len(simcluster.list("pods"))
    assert sum(pods_sent) > pods  # some were written before the restart, then rolled back
    assert run.counts["written"]["pods"] == pods  # and counted once
    assert differences(simcluster, synced) == []


def test_the_server_killed_mid_sync_leaves_the_last_complete_state(simcluster_own, settings):
    sim = simcluster_own
    settings.IPPAM_LIST_PAGE_SIZE = 50
    sim.load("demo")
    cluster = Cluster.objects.create(name="own", kubeconfig=sim.kubeconfig)
    cluster_sync_full(cluster=cluster)
    before = cluster_state(sim)
    change_everything(sim)

    def progress(kind, phase, count):
        if kind == "pods" and phase == "listing" and not sim.dead:
            sim.kill()

    with pytest.raises(KubeError, match="no answer|connection broke"):
        cluster_sync_full(cluster=cluster, progress=progress)

    assert cluster_differences(cluster, before) == []
    run = SyncRun.objects.filter(cluster=cluster).first()
    assert run.outcome == SyncRun.Outcome.FAILED
    assert "listing pods" in run.error and "API server" in run.error
    sim.revive()
    cluster_sync_full(cluster=cluster)
    assert differences(sim, cluster) == []


def test_a_crash_while_writing_leaves_the_last_complete_state(simcluster, synced, monkeypatch):
    before = cluster_state(simcluster)
    change_everything(simcluster)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    # Pods are written last but for events: NADs, pools, reservations and nodes are
    # already written in the transaction when this fails.
    monkeypatch.setattr("ippam.sync.store.pods_write", broken)
    with pytest.raises(RuntimeError):
        cluster_sync_full(cluster=synced)

    assert cluster_differences(synced, before) == []
    assert "disk full" in SyncRun.objects.filter(cluster=synced).first().error
    monkeypatch.undo()
    cluster_sync_full(cluster=synced)
    assert differences(simcluster, synced) == []


def test_the_helper_finds_a_planted_difference(simcluster, synced):
    pod = Pod.objects.filter(cluster=synced).exclude(node_name="").first()
    Pod.objects.filter(pk=pod.pk).update(node_name="elsewhere")
    allocation = Allocation.objects.filter(cluster=synced).select_related("pool").first()
    allocation.delete()
    Node.objects.filter(
        cluster=synced, name=sorted(n["metadata"]["name"] for n in simcluster.list("nodes"))[0]
    ).update(uid="stale")
    simcluster.delete(
        "overlappingrangeipreservations",
        *(lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))(
            simcluster.list("overlappingrangeipreservations")[0]
        ),
    )

    found = differences(simcluster, synced)

    assert len(found) == 4, found
    assert any(f"pods {pod.namespace}/{pod.name}" in d and "elsewhere" in d for d in found)
    assert any(
        f"ippools {allocation.pool.namespace}/{allocation.pool.name}" in d
        and "missing from the database" in d
        for d in found
    )
    assert any("nodes " in d and "'stale'" in d for d in found)
    assert any("overlappingrange" not in d and "gone from the cluster" in d for d in found)


# --- the watcher ---------------------------------------------------------------------------


def test_dropped_watches_resume_and_the_database_follows(simcluster, watched):
    simcluster.drop_watches()
    change_everything(simcluster)  # made while the watcher is reconnecting
    simcluster.wait_for_watches(len(RESOURCES))
    eventually(lambda: differences(simcluster, watched) == [], timeout=15)


def test_the_watcher_answers_a_rebuilt_cluster_with_a_full_sync(simcluster, watched):
    nodes = sorted(Node.objects.filter(cluster=watched).values_list("name", flat=True))
    simcluster.rebuild({"pods": other_node(nodes)})

    eventually(lambda: differences(simcluster, watched) == [], timeout=20)
    watched.refresh_from_db()
    assert "kube-system namespace has a new uid" in watched.sync_notice
    # ... and it watches the new cluster afterwards.
    simcluster.wait_for_watches(len(RESOURCES))
    change_everything(simcluster)
    eventually(lambda: differences(simcluster, watched) == [], timeout=15)
