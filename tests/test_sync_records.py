"""Rows built from single objects: the network-status fast path agrees with the parser."""

from __future__ import annotations

import json

import pytest

from ippam.ipparse import ip_key
from ippam.sync.records.events import event_record
from ippam.sync.records.packing import pack_pod, pack_reservation, unpack_pod, unpack_reservation
from ippam.sync.records.pods import pod_record
from ippam.sync.records.pools import pool_record
from ippam.sync.records.reservations import reservation_record

NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status"


def pod(status) -> dict:
    raw = status if isinstance(status, str) else json.dumps(status)
    return {
        "metadata": {"namespace": "lab", "name": "p", "uid": "u1", "resourceVersion": "7",
                     "creationTimestamp": "2026-01-02T03:04:05Z",
                     "annotations": {NETWORK_STATUS: raw, "k8s.v1.cni.cncf.io/networks": "lab/a@net1"}},
        "spec": {"nodeName": "n1"},
        "status": {"phase": "Running"},
    }  # fmt: skip


CASES = [
    [{"name": "k8s-pod-network", "interface": "eth0", "ips": ["10.0.0.2"], "default": True}],
    [
        {
            "name": "lab/a",
            "interface": "net1",
            "ips": ["10.1.0.5/24", "fd00::5"],
            "mac": "0a:58:00:00:00:01",
            "mtu": 1400,
        }
    ],
    [{"name": "lab/a", "interface": "net1", "ips": ["FD00:0::5"]}],  # not canonical: parser path
    [
        {"name": "lab/a", "interface": "net1", "ips": ["10.0.0.1"]},
        {"name": "lab/a", "interface": "net1", "ips": ["10.0.0.2"]},
    ],
    [{"name": "lab/a", "interface": "net2", "ips": ["not-an-ip", "10.0.0.9"]}],
    [
        {
            "name": "lab/a",
            "ips": [],
            "device-info": {"type": "pci", "pci": {"pci-address": "0000:00:01.0"}},
        }
    ],
    {"name": "lab/a", "interface": "net1", "ips": ["10.0.0.3"]},  # one object, not a list
    "[{not json",
]


@pytest.mark.parametrize("status", CASES)
def test_fast_path_and_parser_give_the_same_rows(status, monkeypatch):
    fast = pod_record(pod(status))
    monkeypatch.setattr("ippam.sync.records.pods._network_status_fast", lambda raw: None)
    slow = pod_record(pod(status))
    assert fast == slow


def test_packed_pods_and_reservations_round_trip():
    record = pod_record(pod(CASES[1]))
    assert unpack_pod(pack_pod(record)) == record
    orip = reservation_record(
        {"metadata": {"namespace": "kube-system", "name": "blue-10.0.0.5", "uid": "x",
                      "creationTimestamp": "2026-01-02T03:04:05Z"},
         "spec": {"podref": "lab/p", "ifname": "net1"}},
        ["blue"],
    )  # fmt: skip
    assert orip.network_name == "blue" and orip.pod_name == "p"
    assert unpack_reservation(pack_reservation(orip)) == orip


def test_pool_allocations_skip_bad_keys_and_compute_addresses():
    record = pool_record(
        {"metadata": {"namespace": "kube-system", "name": "net-10.0.0.0-30"},
         "spec": {"range": "10.0.0.0/30", "allocations": {
             "1": {"id": "c1", "podref": "lab/a", "ifname": "net1"},
             "x": {"id": "c2", "podref": "lab/b"},
             "4": {"id": "c3", "podref": "lab/c"}}}}
    )  # fmt: skip
    assert [(a.key, a.pod_namespace, a.pod_name, a.ifname) for a in record.allocations] == [
        ("1", "lab", "a", "net1")
    ]
    assert record.row.network_name == "net" and record.row.allocated == 1
    assert len(json.loads(record.row.problems)) == 2


def test_a_pool_range_is_read_as_go_net_parse_cidr_reads_it():
    # IPPool.ParseCIDR is Go's strict net.ParseCIDR: leading zeros or spaces and whereabouts
    # cannot read the pool; "/0024" and IPv4-mapped text it reads (mapped: as IPv4).
    def pool(spec_range: str, allocations: dict | None = None):
        return pool_record(
            {"metadata": {"namespace": "kube-system", "name": "p"},
             "spec": {"range": spec_range, "allocations": allocations or {}}}
        )  # fmt: skip

    for unreadable in ("010.0.0.0/24", " 10.0.0.0/24", "10.0.0.0/255.255.255.0"):
        record = pool(unreadable)
        assert record.row.first_ip is None
        assert "whereabouts cannot read this pool" in json.loads(record.row.problems)[0]
    held = {"5": {"id": "c", "podref": "lab/a"}}
    assert [a.ip for a in pool("10.0.0.0/0024", held).allocations] == [ip_key("10.0.0.5")]
    assert [a.ip for a in pool("::ffff:10.0.0.0/120", held).allocations] == [ip_key("10.0.0.5")]


def test_a_pool_offset_beyond_int64_is_not_allocated():
    # toIPReservationList reads offsets with strconv.ParseInt(.., 10, 64) and skips the
    # rest: whereabouts may hand such an address out again.
    record = pool_record(
        {"metadata": {"namespace": "kube-system", "name": "fd00-0-0-1---64"},
         "spec": {"range": "fd00:0:0:1::/64", "allocations": {
             str(2**63 - 1): {"id": "a", "podref": "lab/a"},
             str(2**63): {"id": "b", "podref": "lab/b"}}}}
    )  # fmt: skip
    assert [a.pod_name for a in record.allocations] == ["a"]
    assert "strconv.ParseInt" in json.loads(record.row.problems)[0]


def test_added_interface_event_names_interface_ip_and_nad():
    event = event_record(
        {"metadata": {"namespace": "lab", "name": "p.1", "uid": "e1"},
         "involvedObject": {"kind": "Pod", "namespace": "lab", "name": "p", "uid": "u1"},
         "reason": "AddedInterface", "message": "Add net1 [10.0.0.5/24 fd00::5/64] from lab/blue-net",
         "lastTimestamp": "2026-01-02T03:04:05Z"}
    )  # fmt: skip
    assert event is not None
    assert (event.row.interface, event.nad) == ("net1", ("lab", "blue-net"))
    assert event.row.ip == ip_key("10.0.0.5")
    assert event_record({"reason": "Scheduled", "involvedObject": {"kind": "Pod"}}) is None


@pytest.mark.parametrize(
    "obj",
    [
        {"metadata": {"namespace": "ns", "name": "a", "uid": "u", "resourceVersion": "7"}},
        {"metadata": {"name": "a", "uid": "u", "resourceVersion": "7"}},  # no namespace
        {"metadata": {"namespace": "ns", "name": 5, "uid": None, "resourceVersion": 7}},
        {"metadata": {"namespace": "", "name": "", "uid": "", "resourceVersion": ""}},
        {"metadata": ["not", "a", "dict"]},
        {"metadata": None},
        {},
    ],
)
@pytest.mark.parametrize("namespaced", [True, False])
def test_the_full_syncs_identity_read_equals_the_careful_readers(obj, namespaced):
    from ippam.sync import store
    from ippam.sync.full import _identity
    from ippam.sync.records.common import object_key, resource_version

    careful = (object_key(obj, namespaced), store.object_uid(obj), resource_version(obj))
    assert _identity(obj, namespaced) == careful
