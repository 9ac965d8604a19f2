"""Odd objects (issue 10, case 4) and the grace of undated allocations (case 7).

Whatever a real API server's CRD schemas would reject (and an older whereabouts, which
installs none, lets through) becomes a problem on the object, never a crash, and never
counts as allocated. Parsers are tested pure; the same objects then go through a real sync
against simcluster, leak detection and the --json commands.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from ippam.annotations import parse_network_status
from ippam.leaks import leaks_detect
from ippam.models import (
    Allocation,
    Cluster,
    Finding,
    IPPool,
    NetworkAttachmentDefinition,
    Node,
    NodeSlicePool,
    OverlappingRangeIPReservation,
    Pod,
)
from ippam.sync import cluster_sync_full
from ippam.sync.records.common import timestamp
from ippam.sync.records.events import event_record
from ippam.sync.records.nads import nad_record
from ippam.sync.records.nodes import node_record
from ippam.sync.records.nodeslices import nodeslicepool_record
from ippam.sync.records.pods import pod_record
from ippam.sync.records.pools import MAX_PROBLEMS, pool_record
from ippam.sync.records.reservations import reservation_record
from tests.html import select_one, text

NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status"
WB = "whereabouts.cni.cncf.io/v1alpha1"


def ippool(allocations: Any, range_: Any = "10.0.0.0/24", name: str = "10.0.0.0-24") -> dict:
    return {
        "apiVersion": WB,
        "kind": "IPPool",
        "metadata": {"namespace": "kube-system", "name": name, "uid": "p1"},
        "spec": {"range": range_, "allocations": allocations},
    }


def orip(name: str, spec: Any = None, **extra: Any) -> dict:
    obj: dict[str, Any] = {
        "apiVersion": WB,
        "kind": "OverlappingRangeIPReservation",
        "metadata": {"namespace": "kube-system", "name": name, "uid": f"o-{name}"},
        **extra,
    }
    if spec is not None:
        obj["spec"] = spec
    return obj


def good(podref: str = "default/web-1") -> dict:
    return {"id": "c0ffee", "podref": podref, "ifname": "net1"}


# --- IPPool allocations (pure) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [(None, "null"), ("garbage", "a string"), ([1, 2], "a list"), (7, "a number")],
)
def test_an_allocation_value_that_is_not_an_object_is_a_problem_not_an_allocation(value, kind):
    record = pool_record(ippool({"5": value, "6": good()}))
    assert [a.key for a in record.allocations] == ["6"]
    assert record.row.allocated == 1
    problems = json.loads(record.row.problems)
    assert any("'5'" in p and kind in p and "not counted" in p for p in problems), problems


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("-1", "negative"),
        ("five", "not a decimal offset"),
        ("0x5", "not a decimal offset"),
        ("256", "outside 10.0.0.0/24"),
        ("9" * 5000, "outside 10.0.0.0/24"),  # int() of it would raise ValueError
    ],
)
def test_keys_whereabouts_skips_are_problems_and_not_counted(key, words):
    record = pool_record(ippool({key: good(), "6": good()}))
    assert record.row.allocated == 1
    assert any(words in p for p in json.loads(record.row.problems))


def test_two_keys_of_one_offset_count_once():
    record = pool_record(ippool({"5": good("a/x"), "05": good("a/y")}))
    assert record.row.allocated == 1
    assert any("same offset" in p for p in json.loads(record.row.problems))


@pytest.mark.parametrize("podref", ["web-1", "a/b/c", "/x", 12, None])
def test_a_podref_that_is_not_namespace_name_is_a_problem_but_still_held(podref):
    # whereabouts decodes the key and keeps the address out of circulation whatever the
    # podref says, so it stays allocated; the pool says what is odd.
    value = {"id": "c0ffee", "podref": podref}
    record = pool_record(ippool({"5": value}))
    assert record.row.allocated == 1
    assert record.allocations[0].podref == (podref if isinstance(podref, str) else "")
    problems = json.loads(record.row.problems)
    assert any("'5'" in p and "podref" in p for p in problems), problems


@pytest.mark.parametrize(
    ("spec_range", "words"),
    [(None, "missing"), (24, "a number"), ("10.0.0.0", "no /prefix"), ("ten/8", "not a CIDR")],
)
def test_a_pool_range_that_is_not_a_cidr_counts_nothing(spec_range, words):
    record = pool_record(ippool({"5": good()}, range_=spec_range))
    assert record.row.allocated == 0 and record.allocations == []
    assert any(words in p for p in json.loads(record.row.problems))


def test_many_odd_allocations_are_summed_up_not_listed_one_by_one():
    record = pool_record(ippool({str(i): None for i in range(200)}))
    problems = json.loads(record.row.problems)
    assert record.row.allocated == 0
    assert len(problems) == MAX_PROBLEMS and "more problems" in problems[-1]


# --- OverlappingRangeIPReservations (pure) -----------------------------------------------------


@pytest.mark.parametrize("name", ["not-an-ip", "10.0.0.999", "10.0.0.01", "net-10.0.0.5.1"])
def test_a_reservation_name_that_is_no_address_is_a_problem(name):
    row = reservation_record(orip(name, {"podref": "default/web-1"}), ["net"])
    assert row.ip is None
    problems = json.loads(row.problems)
    assert any(
        p.startswith("name is not an address whereabouts could have written") for p in problems
    )


@pytest.mark.parametrize(
    ("obj", "words"),
    [
        (orip("10.0.0.5", "garbage"), "spec is a string"),
        (orip("10.0.0.5"), "spec is null"),
        (orip("10.0.0.5", {"podref": 5}), "spec.podref is a number"),
        (orip("10.0.0.5", {"ifname": "net1"}), "spec.podref is null"),
        (orip("10.0.0.5", {"podref": "web-1"}), "not 'namespace/name'"),
        (orip("10.0.0.5", {"podref": "a/b", "ifname": ["x"]}), "spec.ifname is a list"),
    ],
)
def test_a_reservation_spec_the_crd_rejects_is_a_problem(obj, words):
    row = reservation_record(obj, [])
    assert row.ip is not None  # the name is fine; the spec is not
    assert any(words in p for p in json.loads(row.problems)), row.problems


def test_a_well_formed_reservation_has_no_problem():
    row = reservation_record(orip("net-fd00--5", {"podref": "a/b", "ifname": "net1"}), ["net"])
    assert row.network_name == "net" and json.loads(row.problems) == []


# --- pods, NADs, node-slice pools, nodes (pure) --------------------------------------------------


def test_a_network_status_object_instead_of_a_list_yields_no_interface():
    raw = json.dumps({"name": "lab/a", "interface": "net1", "ips": ["10.0.0.5"]})
    entries, problems = parse_network_status(raw)
    assert entries == [] and "not a list" in problems[0]
    record = pod_record(pod_with_status(raw))
    assert record.interfaces == []
    assert any("not a list" in p for p in json.loads(record.row.annotation_problems))


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (["lab/a"], "not a JSON object"),
        ([{"name": "lab/a", "interface": "net1", "ips": {"a": 1}}], "ips is not a list"),
        ([{"name": "lab/a", "interface": 7, "ips": []}], "interface is not a string"),
        ([{"name": 5, "ips": []}], "non-string name"),
        (42, "not a JSON array"),
    ],
)
def test_network_status_entries_of_the_wrong_shape_are_problems(status, words):
    record = pod_record(pod_with_status(json.dumps(status)))
    assert any(words in p for p in json.loads(record.row.annotation_problems))


def test_a_network_status_annotation_that_is_not_text_is_a_problem():
    obj = pod_with_status("")
    obj["metadata"]["annotations"][NETWORK_STATUS] = [{"name": "lab/a"}]
    record = pod_record(obj)
    assert record.interfaces == []
    assert any("not a string" in p for p in json.loads(record.row.annotation_problems))


def pod_with_status(raw: str) -> dict:
    return {
        "metadata": {
            "namespace": "lab",
            "name": "p",
            "uid": "u1",
            "creationTimestamp": "2026-01-02T03:04:05Z",
            "annotations": {NETWORK_STATUS: raw},
        },
        "spec": {"nodeName": "n1"},
        "status": {"phase": "Running"},
    }


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (None, "spec is missing"),
        ("macvlan", "spec is a string"),
        ({"config": 5}, "spec.config is not a string"),
    ],
)
def test_a_nad_without_a_readable_spec_reports_a_problem(spec, words):
    obj: dict[str, Any] = {"metadata": {"namespace": "lab", "name": "a", "uid": "n1"}}
    if spec is not None:
        obj["spec"] = spec
    record = nad_record(obj)
    assert any(words in p for p in json.loads(record.row.problems))


def test_odd_node_slice_pools_and_nodes_are_problems():
    nsp = nodeslicepool_record(
        {
            "metadata": {"namespace": "kube-system", "name": "s"},
            "spec": {"range": 10, "sliceSize": 24},
            "status": {"allocations": ["node-1", {"nodeName": "n2", "sliceRange": None}]},
        }
    )
    problems = json.loads(nsp.problems)
    assert json.loads(nsp.allocations) == []
    assert "spec.range is a number, not a string; ignored" in problems
    assert any("allocations[0]" in p for p in problems)
    assert any("allocations[1]" in p and "sliceRange" in p for p in problems)
    node = node_record({"metadata": {"name": "n"}, "status": {"conditions": 7, "addresses": 3}})
    assert not node.ready
    assert len(json.loads(node.problems)) == 2


def test_a_timestamp_without_a_zone_is_read_as_utc():
    assert timestamp("2026-01-02T03:04:05") == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


# Any JSON at any level: nothing raises.
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_shapes = {
    "pool": lambda v: pool_record(ippool({"1": v, "x": v}, range_="fd00::/120") | {"status": v}),
    "pool_spec": lambda v: pool_record({"metadata": {"name": "p"}, "spec": v}),
    "orip": lambda v: reservation_record(orip("10.0.0.5", v), ["n"]),
    "orip_meta": lambda v: reservation_record({"metadata": v, "spec": v}, ["n"]),
    "nsp": lambda v: nodeslicepool_record({"metadata": {"name": "s"}, "spec": v, "status": v}),
    "nsp_alloc": lambda v: nodeslicepool_record({"spec": {}, "status": {"allocations": [v, v]}}),
    "nad": lambda v: nad_record({"metadata": {"name": "a", "annotations": v}, "spec": v}),
    "nad_config": lambda v: nad_record({"spec": {"config": json.dumps(v)}}),
    "node": lambda v: node_record({"metadata": {"name": "n", "labels": v}, "status": v}),
    "node_status": lambda v: node_record({"status": {"conditions": v, "addresses": v}}),
    "pod": lambda v: pod_record({"metadata": {"annotations": v}, "spec": v, "status": v}),
    "pod_status": lambda v: pod_record(pod_with_status(json.dumps(v))),
    "pod_entries": lambda v: pod_record(
        pod_with_status(json.dumps([v, {"name": "a/b", "ips": v}]))
    ),
    "event": lambda v: event_record(
        {"reason": "AddedInterface", "involvedObject": v, "message": v}
    ),
}


@settings(max_examples=60, derandomize=True, deadline=None)
@given(value=_json, shape=st.sampled_from(sorted(_shapes)))
def test_no_json_value_anywhere_crashes_a_parser(value, shape):
    _shapes[shape](value)


# --- through a real sync ----------------------------------------------------------------------


def odd_cluster_objects() -> dict[str, list[dict]]:
    config = {
        "cniVersion": "0.3.1",
        "name": "net-a",
        "type": "macvlan",
        "master": "eth1",
        "ipam": {"type": "whereabouts", "range": "10.0.0.0/24"},
    }
    return {
        "network-attachment-definitions": [
            {
                "apiVersion": "k8s.cni.cncf.io/v1",
                "kind": "NetworkAttachmentDefinition",
                "metadata": {"namespace": "default", "name": "net-a"},
                "spec": {"config": json.dumps(config)},
            },
            {
                "apiVersion": "k8s.cni.cncf.io/v1",
                "kind": "NetworkAttachmentDefinition",
                "metadata": {"namespace": "default", "name": "no-spec"},
            },
        ],
        "ippools": [
            ippool(
                {
                    "1": None,
                    "2": "garbage",
                    "3": [1],
                    "4": 4,
                    "-5": good(),
                    "nine": good(),
                    "300": good(),
                    "7": good("web-1"),
                }
            )
        ],
        "overlappingrangeipreservations": [
            orip("not-an-ip", {"podref": "default/gone"}),
            orip("10.0.0.999", {"podref": "default/gone"}),
            orip("10.0.0.20", "garbage"),
            orip("10.0.0.21"),
            orip("10.0.0.22", {"podref": 22}),
        ],
        "pods": [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "namespace": "default",
                    "name": "odd-status",
                    "annotations": {
                        NETWORK_STATUS: json.dumps(
                            {"name": "default/net-a", "interface": "net1", "ips": ["10.0.0.30"]}
                        )
                    },
                },
                "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "x"}]},
                "status": {"phase": "Running"},
            }
        ],
        "nodeslicepools": [
            {
                "apiVersion": WB,
                "kind": "NodeSlicePool",
                "metadata": {"namespace": "kube-system", "name": "net-a"},
                "spec": {"range": "10.9.0.0/16", "sliceSize": 24},
                "status": {"allocations": ["node-1"]},
            }
        ],
    }


@pytest.fixture
def odd_cluster(simcluster, settings) -> Cluster:
    settings.IPPAM_LEAK_GRACE_SECONDS = 0
    simcluster.seed(odd_cluster_objects())
    cluster = Cluster.objects.create(name="odd", kubeconfig=simcluster.kubeconfig, simulated=True)
    cluster_sync_full(cluster=cluster)
    return cluster


@pytest.mark.django_db(transaction=True)
def test_a_sync_with_odd_objects_keeps_them_with_their_problems(odd_cluster):
    cluster = odd_cluster
    pool = IPPool.objects.get(cluster=cluster)
    # Only the podref oddity is held (whereabouts decodes it); nothing else counts.
    assert pool.allocated == 1
    assert list(Allocation.objects.filter(pool=pool).values_list("key", flat=True)) == ["7"]
    text = " | ".join(pool.problems)
    for key in ("'1' is null", "'2' is a string", "'3' is a list", "'4' is a number"):
        assert key in text
    assert "'-5' is negative" in text and "'nine'" in text and "'300' points outside" in text
    assert "'7': podref 'web-1' is not 'namespace/name'" in text

    reservations = {
        o.name: o for o in OverlappingRangeIPReservation.objects.filter(cluster=cluster)
    }
    for name in ("not-an-ip", "10.0.0.999"):
        assert reservations[name].ip is None
        assert (
            reservations[name]
            .problems[0]
            .startswith("name is not an address whereabouts could have written")
        )
    assert "spec is a string" in reservations["10.0.0.20"].problems[0]
    assert "spec is null" in reservations["10.0.0.21"].problems[0]
    assert "spec.podref is a number" in reservations["10.0.0.22"].problems[0]

    pod = Pod.objects.get(cluster=cluster, name="odd-status")
    assert not pod.interfaces.exists()
    assert any("not a list" in p for p in pod.annotation_problems)
    nad = NetworkAttachmentDefinition.objects.get(cluster=cluster, name="no-spec")
    assert nad.problems and nad.problems[0].startswith("spec is missing")
    nsp = NodeSlicePool.objects.get(cluster=cluster)
    assert any("sliceSize is a number" in p for p in nsp.problems)
    assert Node.objects.filter(cluster=cluster).count() == 0  # none seeded; nothing crashed


@pytest.mark.django_db(transaction=True)
def test_garbage_is_never_a_reclaimable_leak(odd_cluster):
    leaks_detect(cluster=odd_cluster)
    findings = list(Finding.objects.filter(cluster=odd_cluster))
    # No reservation is called orphaned on the basis of a garbage name or spec.
    assert not [f for f in findings if f.kind == Finding.Kind.ORPHANED_RESERVATION]
    # The podref-less-than-namespace/name allocation is suspect only, never leaked.
    [orphan] = [f for f in findings if f.kind == Finding.Kind.ORPHANED_ALLOCATION]
    assert orphan.allocation_key == "7" and orphan.state == Finding.State.SUSPECT
    assert "not namespace/name" in orphan.reason


@pytest.mark.django_db(transaction=True)
def test_the_json_commands_show_the_problems(odd_cluster, capsys):
    call_command("pools", "--json")
    [pool] = json.loads(capsys.readouterr().out)
    assert pool["allocated"] == 1 and any("'1' is null" in p for p in pool["problems"])
    call_command("nads", "--json")
    nads = {n["name"]: n for n in json.loads(capsys.readouterr().out)}
    assert nads["no-spec"]["problems"][0].startswith("spec is missing")
    call_command("interfaces", "--json")
    out = json.loads(capsys.readouterr().out)
    assert "not a list" in json.dumps(out)
    call_command("leaks", "--json")
    leaks = json.loads(capsys.readouterr().out)
    problems = [d for d in leaks if d["kind"] == "problem"]
    assert any(
        d["object"] == "OverlappingRangeIPReservation kube-system/not-an-ip" for d in problems
    )
    assert any(d["object"] == "NodeSlicePool kube-system/net-a" for d in problems)


# --- case 7: grace counts from when ippam first saw an undated allocation ---------------------


@pytest.mark.django_db(transaction=True)
def test_an_undated_allocation_gets_its_grace_from_when_ippam_first_saw_it(simcluster, settings):
    settings.IPPAM_LEAK_GRACE_SECONDS = 120
    # An allocation to a pod that does not exist, with no reservation and no event:
    # nothing in the cluster says when it was made.
    simcluster.seed({"ippools": [ippool({"5": good("default/gone")})]})
    cluster = Cluster.objects.create(
        name="undated", kubeconfig=simcluster.kubeconfig, simulated=True
    )
    cluster_sync_full(cluster=cluster)
    first = Allocation.objects.get(pool__cluster=cluster, key="5").first_seen
    assert first is not None

    result = leaks_detect(cluster=cluster)
    assert result.held_in_grace == 1
    assert not Finding.objects.filter(cluster=cluster).exists()

    # A change to the pool rewrites its allocations; first_seen survives it.
    simcluster.seed({"ippools": [ippool({"5": good("default/gone"), "6": good("default/b")})]})
    cluster_sync_full(cluster=cluster)
    assert Allocation.objects.get(pool__cluster=cluster, key="5").first_seen == first
    assert Allocation.objects.get(pool__cluster=cluster, key="6").first_seen > first

    # Time passes (moved in the database, not waited for).
    Allocation.objects.filter(pool__cluster=cluster, key="5").update(
        first_seen=timezone.now() - dt.timedelta(seconds=121)
    )
    leaks_detect(cluster=cluster)
    orphan = Finding.objects.get(cluster=cluster, allocation_key="5")
    assert orphan.kind == Finding.Kind.ORPHANED_ALLOCATION
    assert orphan.state == Finding.State.LEAKED
    assert not Finding.objects.filter(cluster=cluster, allocation_key="6").exists()


# --- pages ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_pages_show_the_problems(simcluster, settings, viewer_client):
    objects = odd_cluster_objects()
    objects["nodes"] = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "node-1"},
            "status": {"conditions": "Ready", "addresses": [{"type": "InternalIP"}]},
        }
    ]
    simcluster.seed(objects)
    cluster = Cluster.objects.create(name="odd", kubeconfig=simcluster.kubeconfig, simulated=True)
    cluster_sync_full(cluster=cluster)
    node = Node.objects.get(cluster=cluster, name="node-1")
    assert not node.ready and len(node.problems) == 2
    html = viewer_client.get(f"/nodes/{node.pk}/").content.decode()
    assert "status.conditions is a string" in text(select_one(html, "#node-problems"))
    pool = IPPool.objects.get(cluster=cluster)
    html = viewer_client.get(f"/pools/{pool.pk}/").content.decode()
    assert "'1' is null" in text(html)
    nad = NetworkAttachmentDefinition.objects.get(cluster=cluster, name="no-spec")
    html = viewer_client.get(f"/nads/{nad.pk}/").content.decode()
    assert "spec is missing" in text(html)
