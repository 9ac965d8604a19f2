"""Full sync against simcluster over a real socket: the database must equal the cluster."""

from __future__ import annotations

import ipaddress
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from ippam.models import (
    Allocation,
    Cluster,
    InterfaceAddress,
    IPPool,
    NetworkAttachmentDefinition,
    Node,
    OverlappingRangeIPReservation,
    Pod,
    PodEvent,
    PodInterface,
    SyncRun,
)
from ippam.signals import sync_finished
from ippam.sync import cluster_sync_full
from simcluster.builder import ClusterBuilder

pytestmark = pytest.mark.django_db

NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status"
LEGACY_NETWORK_STATUS = "k8s.v1.cni.cncf.io/networks-status"  # Multus before v3.7


@pytest.fixture
def make_cluster(simcluster):
    def make(name: str = "sim") -> Cluster:
        return Cluster.objects.create(name=name, kubeconfig=simcluster.kubeconfig)

    return make


def usable_equal(db_value, expected: int) -> bool:
    # SQLite keeps DecimalField values beyond 2**63 as REAL: 2**64-2 comes back rounded.
    if connection.vendor == "sqlite" and expected > 2**53:
        return abs(int(db_value) - expected) <= expected * 1e-12
    return int(db_value) == expected


def assert_db_matches(sim, cluster: Cluster) -> None:
    """Every NAD, pool, allocation, reservation, node, pod and pod interface, both ways."""
    nads = {
        (o["metadata"]["namespace"], o["metadata"]["name"])
        for o in sim.list("network-attachment-definitions")
    }
    assert (
        set(
            NetworkAttachmentDefinition.objects.filter(cluster=cluster).values_list(
                "namespace", "name"
            )
        )
        == nads
    )

    assert set(Node.objects.filter(cluster=cluster).values_list("name", flat=True)) == {
        o["metadata"]["name"] for o in sim.list("nodes")
    }

    store_pools = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o for o in sim.list("ippools")
    }
    db_pools = {(p.namespace, p.name): p for p in IPPool.objects.filter(cluster=cluster)}
    assert set(db_pools) == set(store_pools)
    for key, obj in store_pools.items():
        pool = db_pools[key]
        assert pool.range == obj["spec"]["range"]
        expected = {
            k: (v.get("podref", ""), v.get("ifname", ""), v.get("id", ""))
            for k, v in (obj["spec"].get("allocations") or {}).items()
        }
        network = ipaddress.ip_network(obj["spec"]["range"])
        rows = Allocation.objects.filter(pool=pool)
        got = {a.key: (a.podref, a.ifname, a.container_id) for a in rows}
        assert got == expected, key
        for a in rows:
            assert str(a.ip) == str(network.network_address + int(a.key))
            assert (a.pod_namespace, a.pod_name) == tuple(a.podref.split("/", 1))
        assert pool.allocated == len(expected)
    assert Allocation.objects.filter(cluster=cluster).count() == sum(
        len(o["spec"].get("allocations") or {}) for o in store_pools.values()
    )

    store_orips = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o
        for o in sim.list("overlappingrangeipreservations")
    }
    db_orips = {
        (o.namespace, o.name): o
        for o in OverlappingRangeIPReservation.objects.filter(cluster=cluster)
    }
    assert set(db_orips) == set(store_orips)
    for key, obj in store_orips.items():
        assert db_orips[key].podref == obj["spec"].get("podref", "")
        assert db_orips[key].ip is not None, f"{key}: name not read as an address"
        assert key[1].endswith(str(db_orips[key].ip).replace(":", "-")) or key[1].endswith(
            str(db_orips[key].ip).replace(":", "-") + "0"
        )

    store_pods = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in sim.list("pods")}
    db_pods = {(p.namespace, p.name): p for p in Pod.objects.filter(cluster=cluster)}
    assert set(db_pods) == set(store_pods)
    db_interfaces: dict[tuple[str, str], set] = {}
    for iface in (
        PodInterface.objects.filter(cluster=cluster)
        .select_related("pod")
        .prefetch_related("addresses")
    ):
        db_interfaces.setdefault((iface.pod.namespace, iface.pod.name), set()).add(
            (
                iface.network_name,
                iface.interface,
                iface.mac,
                tuple(sorted(str(a.ip) for a in iface.addresses.all())),
            )
        )
    for key, obj in store_pods.items():
        annotations = obj["metadata"].get("annotations") or {}
        raw = annotations.get(NETWORK_STATUS) or annotations.get(LEGACY_NETWORK_STATUS)
        expected = set()
        if raw:
            for entry in json.loads(raw):
                ips = tuple(
                    sorted(
                        str(ipaddress.ip_address(ip.split("/")[0])) for ip in entry.get("ips") or []
                    )
                )
                expected.add(
                    (entry.get("name", ""), entry.get("interface", ""), entry.get("mac", ""), ips)
                )
        assert db_interfaces.get(key, set()) == expected, key
        assert db_pods[key].uid == obj["metadata"]["uid"]
        assert db_pods[key].node_name == (obj["spec"].get("nodeName") or "")
    assert (
        InterfaceAddress.objects.filter(cluster=cluster).exclude(interface__cluster=cluster).count()
        == 0
    )


def test_demo_sync_matches_the_cluster(simcluster, make_cluster):
    simcluster.load("demo")
    cluster = make_cluster()
    run = cluster_sync_full(cluster=cluster)

    assert run.outcome == SyncRun.Outcome.OK
    assert_db_matches(simcluster, cluster)
    for ref, usage in simcluster.ground_truth["pools"].items():
        namespace, name = ref.split("/")
        pool = IPPool.objects.get(cluster=cluster, namespace=namespace, name=name)
        assert pool.allocated == usage["allocated"], ref
        assert usable_equal(pool.usable, usage["usable"]), ref
    cluster.refresh_from_db()
    assert cluster.sync_state == Cluster.SyncState.OK
    assert cluster.last_good_sync is not None
    assert set(cluster.resource_versions) >= {
        "pods",
        "nads",
        "ippools",
        "reservations",
        "nodes",
        "events",
    }
    assert run.counts["pods"] == len(simcluster.list("pods"))


def test_usable_is_the_union_of_the_nads_feeding_a_pool(simcluster, make_cluster):
    b = ClusterBuilder(seed=3)
    b.node("n1")
    b.whereabouts_nad(
        "a",
        "left",
        "10.9.0.0/24",
        range_start="10.9.0.10",
        range_end="10.9.0.19",
        network_name="shared",
    )
    b.whereabouts_nad(
        "b",
        "right",
        "10.9.0.0/24",
        range_start="10.9.0.15",
        range_end="10.9.0.29",
        network_name="shared",
    )
    b.whereabouts_nad("c", "holes", "10.8.0.0/28", exclude=["10.8.0.0/30", "10.8.0.9"])
    b.whereabouts_nad("c", "v6", "fd00:1::/120", network_name="six")
    b.pod("a", "p1", "n1", [("a", "left")])
    b.pod("b", "p2", "n1", [("b", "right"), ("c", "v6")])
    simcluster.seed(b.objects())
    cluster = make_cluster()
    cluster_sync_full(cluster=cluster)

    assert_db_matches(simcluster, cluster)
    shared = IPPool.objects.get(cluster=cluster, name="shared-10.9.0.0-24")
    assert int(shared.usable) == 20  # .10-.29: the union, not 10 + 15
    assert shared.network_name == "shared"
    assert sorted(shared.nad_ranges.values_list("nad__name", flat=True)) == ["left", "right"]
    assert int(IPPool.objects.get(cluster=cluster, name="10.8.0.0-28").usable) == 14 - 3 - 1
    assert int(IPPool.objects.get(cluster=cluster, name="six-fd00-1---120").usable) == 254
    v6 = OverlappingRangeIPReservation.objects.filter(cluster=cluster, network_name="six").get()
    assert str(v6.ip).startswith("fd00:1::")


def test_resync_writes_nothing_new_and_keeps_ids(simcluster, make_cluster):
    simcluster.load("demo")
    cluster = make_cluster()
    cluster_sync_full(cluster=cluster)
    before = {
        model: sorted(model.objects.filter(cluster=cluster).values_list("id", flat=True))
        for model in (
            Pod,
            PodInterface,
            IPPool,
            Allocation,
            NetworkAttachmentDefinition,
            OverlappingRangeIPReservation,
        )
    }
    run = cluster_sync_full(cluster=cluster)

    assert run.counts["written"]["pods"] == 0
    assert run.counts["deleted"] == {kind: 0 for kind in run.counts["deleted"]}
    for model, ids in before.items():
        assert sorted(model.objects.filter(cluster=cluster).values_list("id", flat=True)) == ids, (
            model
        )
    assert_db_matches(simcluster, cluster)


def test_changes_between_syncs_are_applied(simcluster, make_cluster):
    simcluster.load("demo")
    cluster = make_cluster()
    cluster_sync_full(cluster=cluster)
    pods = simcluster.list("pods")
    gone = pods[0]["metadata"]
    simcluster.delete("pods", gone["namespace"], gone["name"])
    pool = simcluster.list("ippools")[0]
    first_key = sorted(pool["spec"]["allocations"])[0]
    simcluster.patch(
        "ippools",
        pool["metadata"]["namespace"],
        pool["metadata"]["name"],
        {"spec": {"allocations": {first_key: None}}},
    )
    b = ClusterBuilder(seed=9)
    b.whereabouts_nad("lab", "new-net", "10.99.0.0/29")
    simcluster.seed(
        {"network-attachment-definitions": b.objects()["network-attachment-definitions"]}
    )
    simcluster.delete("network-attachment-definitions", "storage", "bridge-net")

    run = cluster_sync_full(cluster=cluster)

    assert run.counts["deleted"]["pods"] == 1
    assert run.counts["deleted"]["nads"] == 1
    assert_db_matches(simcluster, cluster)
    assert not Pod.objects.filter(
        cluster=cluster, namespace=gone["namespace"], name=gone["name"]
    ).exists()
    nad = NetworkAttachmentDefinition.objects.get(cluster=cluster, name="new-net")
    assert int(nad.ranges.get().usable) == 6


def test_malformed_inputs_are_recorded_and_never_stop_a_sync(simcluster, make_cluster):
    b = ClusterBuilder(seed=5)
    b.node("n1")
    b.whereabouts_nad("lab", "ok-net", "10.7.0.0/24")
    b.nad("lab", "broken", '{"cniVersion": "0.3.1", # a comment\n "type": macvlan}')
    b.pod("lab", "good", "n1", [("lab", "ok-net")])
    objects = b.objects()
    simcluster.seed(objects)
    bad_pod = b.pod("lab", "garbled", "n1", [])
    bad_pod["metadata"].setdefault("annotations", {})[NETWORK_STATUS] = "[{not json"
    bad_pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] = "lab/ok-net@@x,/"
    simcluster.create("pods", bad_pod)
    pool = simcluster.list("ippools")[0]
    simcluster.patch(
        "ippools",
        pool["metadata"]["namespace"],
        pool["metadata"]["name"],
        {
            "spec": {
                "allocations": {
                    "abc": {"id": "x", "podref": "lab/ghost"},
                    "100000": {"id": "y", "podref": "lab/far"},
                }
            }
        },
    )
    cluster = make_cluster()

    run = cluster_sync_full(cluster=cluster)

    assert run.outcome == SyncRun.Outcome.OK
    broken = NetworkAttachmentDefinition.objects.get(cluster=cluster, name="broken")
    assert broken.config is None and "not valid JSON" in broken.problems[0]
    garbled = Pod.objects.get(cluster=cluster, name="garbled")
    assert any("network-status" in p for p in garbled.annotation_problems)
    assert any("networks" in p for p in garbled.annotation_problems)
    db_pool = IPPool.objects.get(cluster=cluster, name=pool["metadata"]["name"])
    assert any("'abc'" in p for p in db_pool.problems)
    assert any("'100000'" in p and "outside" in p for p in db_pool.problems)
    assert db_pool.allocated == len(pool["spec"]["allocations"])
    assert not Allocation.objects.filter(pool=db_pool, key__in=["abc", "100000"]).exists()


def test_events_link_a_stuck_pod_to_its_nad_and_pool(simcluster, make_cluster):
    simcluster.load("demo")
    cluster = make_cluster()
    cluster_sync_full(cluster=cluster)

    for ref in simcluster.ground_truth["failed_pods"]:
        namespace, name = ref.split("/")
        event = PodEvent.objects.get(cluster=cluster, pod_namespace=namespace, pod_name=name)
        assert event.reason == PodEvent.Reason.FAILED_SANDBOX
        assert "Could not allocate IP in range" in event.message
        assert (event.nad.namespace, event.nad.name) == ("lab", "tiny-net")
        assert event.pool.name == "10.40.0.0-28"
    added = PodEvent.objects.filter(
        cluster=cluster, reason=PodEvent.Reason.ADDED_INTERFACE, nad__isnull=False
    ).first()
    assert added is not None and added.ip is not None and added.interface.startswith("net")
    assert added.pool is not None or added.nad.ipam_type != "whereabouts"


def test_events_older_than_the_retention_are_not_kept(simcluster, make_cluster, settings):
    settings.IPPAM_EVENT_RETENTION_SECONDS = 1800
    simcluster.load("demo")
    cluster = make_cluster()
    cluster_sync_full(cluster=cluster)
    assert PodEvent.objects.filter(cluster=cluster).exists()
    settings.IPPAM_EVENT_RETENTION_SECONDS = 1
    cluster_sync_full(cluster=cluster)
    assert not PodEvent.objects.filter(cluster=cluster).exists()


def test_watched_events_older_than_the_retention_are_not_kept(simcluster, make_cluster, settings):
    """A watch without a resourceVersion replays every event the API server keeps as ADDED;
    the watcher must apply the same retention window as a full sync."""
    from ippam.sync import objects_apply

    settings.IPPAM_EVENT_RETENTION_SECONDS = 1800
    simcluster.load("demo")
    cluster = make_cluster()
    events = [("ADDED", event) for event in simcluster.list("events")]
    objects_apply(cluster_id=cluster.pk, kind="events", events=events)
    kept = PodEvent.objects.filter(cluster=cluster)
    cutoff = timezone.now() - timedelta(seconds=1800)
    assert kept.exists()
    assert not kept.filter(last_seen__lt=cutoff).exists()
    cluster_sync_full(cluster=cluster)
    assert run_counts_deleted_events(cluster) == 0


def run_counts_deleted_events(cluster) -> int:
    return SyncRun.objects.filter(cluster=cluster).latest("started_at").counts["deleted"]["events"]


def test_missing_optional_crds_mean_absent_not_failed(simcluster, make_cluster):
    simcluster.load("demo")
    cluster = make_cluster()
    cluster_sync_full(cluster=cluster)
    simcluster.remove_crd("nodeslicepools")
    run = cluster_sync_full(cluster=cluster)
    assert run.outcome == SyncRun.Outcome.OK and run.counts["absent"] == ["nodeslicepools"]

    for plural in ("ippools", "overlappingrangeipreservations"):
        simcluster.remove_crd(plural)
    run = cluster_sync_full(cluster=cluster)
    assert set(run.counts["absent"]) == {"nodeslicepools", "ippools", "reservations"}
    assert not IPPool.objects.filter(cluster=cluster).exists()
    assert not Allocation.objects.filter(cluster=cluster).exists()
    assert Pod.objects.filter(cluster=cluster).count() == len(simcluster.list("pods"))


def test_two_clusters_sync_side_by_side(simcluster, make_cluster):
    simcluster.load("demo")
    one, two = make_cluster("one"), make_cluster("two")
    cluster_sync_full(cluster=one)
    cluster_sync_full(cluster=two)
    assert_db_matches(simcluster, one)
    assert_db_matches(simcluster, two)
    two.delete()
    assert_db_matches(simcluster, one)


def test_sync_finished_is_sent_and_a_failing_receiver_does_not_fail_the_sync(
    simcluster, make_cluster
):
    seen = []

    def receiver(sender, *, cluster, **kwargs):
        seen.append(cluster.name)

    def broken(sender, **kwargs):
        raise RuntimeError("boom")

    sync_finished.connect(broken, weak=False)
    sync_finished.connect(receiver, weak=False)
    try:
        run = cluster_sync_full(cluster=make_cluster())
    finally:
        sync_finished.disconnect(broken)
        sync_finished.disconnect(receiver)
    assert run.outcome == SyncRun.Outcome.OK
    assert seen == ["sim"]


def test_bulk_copy_paths_give_the_same_rows(
    postgres_required, simcluster, make_cluster, monkeypatch
):
    """On PostgreSQL big batches go through COPY (first sync: straight into the tables;
    later: a staging table and INSERT ... ON CONFLICT). Force them on the demo's sizes.
    SQLite has no COPY: there the test would pass without touching it, so it needs PostgreSQL."""
    from ippam.sync import store

    monkeypatch.setattr(store, "COPY_THRESHOLD", 5)
    simcluster.load("demo")
    cluster = make_cluster()
    cluster_sync_full(cluster=cluster)
    assert_db_matches(simcluster, cluster)
    for obj in simcluster.list("pods")[:10]:
        simcluster.patch(
            "pods",
            obj["metadata"]["namespace"],
            obj["metadata"]["name"],
            {"metadata": {"labels": {"x": "y"}}},
        )
    cluster_sync_full(cluster=cluster, force=True)
    assert_db_matches(simcluster, cluster)


def test_binary_copy_keeps_every_value_exactly(postgres_required, make_cluster, monkeypatch):
    """A first sync COPYs in binary form (ippam.sync.store.insert). Odd values must land
    exactly as the row-by-row INSERT path writes them: tabs, newlines, backslashes and
    non-ASCII in annotations, JSON text, nulls, microseconds."""
    from ippam.sync import store

    cluster = make_cluster()
    odd = 'tab\there\nnew line \\ back\\slash \r ü 日本 "quoted"'
    stamp = timezone.now().replace(microsecond=123456)
    json_text = json.dumps([{"name": odd, "ips": ["10.0.0.1"], "n": 1.5, "none": None}])

    def pod_row(pod_id: int, name: str) -> tuple:
        return (pod_id, cluster.pk, 7, stamp, "ns", name, "uid-1", "42", stamp, odd, "Running")

    def rows_written(first_id: int, threshold: int) -> list[tuple]:
        monkeypatch.setattr(store, "COPY_THRESHOLD", threshold)
        columns = (
            "id",
            "cluster_id",
            "sync_generation",
            "synced_at",
            "namespace",
            "name",
            "uid",
            "resource_version",
            "created_at",
            "node_name",
            "phase",
        )
        extra = ("deletion_timestamp", "disruption_target", "networks_annotation")
        extra += ("network_status_annotation", "requested_networks", "annotation_problems")
        pods = [
            (
                *pod_row(first_id + i, f"p{first_id + i}"),
                None,
                i % 2 == 0,
                odd,
                odd,
                json_text,
                "[]",
            )
            for i in range(40)
        ]
        assert store._binary_copy_oids(store.table(Pod), columns + extra)  # binary, not text
        store.insert(Pod, columns + extra, pods)
        return list(
            Pod.objects.filter(id__gte=first_id, id__lt=first_id + 40)
            .order_by("id")
            .values_list(*[c for c in columns + extra if c not in ("id", "name")])
        )

    copied = rows_written(1_000_000, threshold=8)  # COPY from 1 row
    inserted = rows_written(2_000_000, threshold=10_000)  # executemany
    assert copied == inserted
    assert copied[0][7] == odd and copied[0][13] == json.loads(json_text)


def test_an_event_that_cannot_be_read_is_skipped_not_fatal(simcluster, make_cluster, monkeypatch):
    from ippam.sync import full

    simcluster.load("demo")
    read, calls = full.event_record, []

    def first_one_breaks(obj, **kwargs):
        calls.append(obj)
        if len(calls) == 1:
            raise ValueError("an event nobody foresaw")
        return read(obj, **kwargs)

    monkeypatch.setattr(full, "event_record", first_one_breaks)
    run = cluster_sync_full(cluster=make_cluster())

    assert run.outcome == SyncRun.Outcome.OK
    assert len(calls) == run.counts["events"] > 1  # the others were read
