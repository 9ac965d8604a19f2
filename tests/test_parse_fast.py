"""The sync's quick readers give what the careful ones give, for any input (pure, no DB).

Each fast path (canonical_ip, naming.reservation_key, the pod network-status reader, the
IPPool key and podref checks) answers the common well-formed shape itself and hands
everything else to the careful path; these properties say the two never disagree.
"""

from __future__ import annotations

import ipaddress
import json
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st
from netaddr import IPAddress

from ippam import naming
from ippam.fields import ip_to_key
from ippam.ipparse import _canonical_ip_careful, canonical_ip, ip_key
from ippam.sync.records.common import _podref_problem
from ippam.sync.records.events import event_record
from ippam.sync.records.pods import pod_record
from ippam.sync.records.pools import MAX_KEY_DIGITS, _odd_key_offset, pool_record
from ippam.sync.records.reservations import reservation_record

NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status"

# Addresses biased towards the spellings that differ between printers: runs of zero
# groups (where "::" goes), IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d).
_groups = st.lists(st.sampled_from([0, 0, 0, 1, 0xFFFF, 0xABC, 0x1000]), min_size=8, max_size=8)
_v6 = st.one_of(
    st.ip_addresses(v=6).map(int),
    _groups.map(lambda gs: sum(g << (112 - 16 * i) for i, g in enumerate(gs))),
    st.integers(0, 2**32 - 1).map(lambda v: 0xFFFF << 32 | v),
    st.integers(0, 2**32 - 1),
).map(ipaddress.IPv6Address)
_v4 = st.ip_addresses(v=4)
_address = st.one_of(_v4, _v6)


def _spellings(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> st.SearchStrategy[str]:
    """Ways one address gets written: canonical, exploded, upper case, with a prefix or
    spaces, an IPv4 with leading zeros, the embedded-IPv4 form of an IPv6."""
    text = str(ip)
    forms = [text, ip.exploded, text.upper(), f"{text}/24", f" {text} ", f"{text}\n"]
    if ip.version == 4:
        forms.append(".".join(f"{int(p):03d}" for p in text.split(".")))
    else:
        forms.append(str(IPAddress(int(ip), 6)))  # netaddr's spelling (dotted for ::ffff:)
    return st.sampled_from(forms)


_ip_text = st.one_of(
    _address.flatmap(_spellings),
    st.text(alphabet="0123456789abcdef.:/- \x00", max_size=24),
    st.text(max_size=12),
)


@settings(max_examples=800, deadline=None)
@given(_ip_text)
def test_canonical_ip_agrees_with_the_careful_reading(value):
    assert canonical_ip(value) == _canonical_ip_careful(value)


def _careful_reservation_key(name: str, network_name: str = "") -> str | None:
    ip = naming.reservation_ip(name, network_name)
    return ip_to_key(ip) if ip is not None else None


_network_name = st.sampled_from(["", "blue", "blue-2", "net-a.b", "10.0.0"])


def _orip_names(ip, network_name: str) -> st.SearchStrategy[str]:
    """The name whereabouts writes for `ip`, and near misses of it."""
    name = naming.reservation_name(IPAddress(int(ip), ip.version), network_name)
    prefix = f"{network_name}-" if network_name else ""
    return st.sampled_from(
        [
            name,
            name.upper(),
            name.replace("-", ":"),
            name + "-0",
            name[:-1],
            prefix + str(ip).replace(":", "-"),  # Python's spelling: dotted mapped addresses
            prefix + ip.exploded.replace(":", "-"),
            prefix + "0" + name[len(prefix) :],
        ]
    )


_orip_name = st.one_of(
    st.tuples(_address, _network_name).flatmap(lambda a: _orip_names(*a)),
    st.text(alphabet="0123456789abcdef.-:\x00", max_size=20),
    st.text(max_size=12),
)


@settings(max_examples=800, deadline=None)
@given(_orip_name, _network_name)
def test_reservation_key_agrees_with_reservation_ip(name, network_name):
    assert naming.reservation_key(name, network_name) == _careful_reservation_key(
        name, network_name
    )
    assert naming.reservation_key(name) == _careful_reservation_key(name)


def test_reservation_key_reads_what_whereabouts_writes():
    v4 = "00000000000000000000ffff0a000005"
    assert naming.reservation_key("10.0.0.5") == v4
    assert naming.reservation_key("blue-10.0.0.5", "blue") == v4
    assert naming.reservation_key("fd00--0") == "fd00" + "0" * 28
    assert naming.reservation_key("--1") == "0" * 31 + "1"
    # IPv4-mapped addresses are named as IPv4 (Go prints them so): no dashed spelling reads.
    assert naming.reservation_key("--ffff-a00-5") is None
    assert naming.reservation_key("10.0.0.05") is None
    assert naming.reservation_key("blue-10.0.0.5") is None


@settings(max_examples=300, deadline=None)
@given(_orip_name, _network_name, st.sampled_from(["lab/p", "p", None, 7, "/p"]))
def test_reservation_records_through_either_reader_are_equal(name, network_name, podref):
    obj = {
        "metadata": {"namespace": "kube-system", "name": name, "uid": "u"},
        "spec": {"podref": podref, "ifname": "net1"},
    }
    names = [network_name] if network_name else []
    fast = reservation_record(obj, names)
    with mock.patch("ippam.naming.reservation_key", _careful_reservation_key):
        careful = reservation_record(obj, names)
    assert fast == careful


_ips = st.lists(_ip_text, max_size=3)
_entry = st.fixed_dictionaries(
    {"name": st.sampled_from(["", "k8s-pod-network", "lab/a", "lab/a/b", "/a", "x" * 320])},
    optional={
        "interface": st.sampled_from(["", "eth0", "net1", "n" * 40, 5]),
        "ips": st.one_of(_ips, st.none(), _ip_text),
        "mac": st.sampled_from(["0a:58:00:00:00:01", "m" * 40, None]),
        "default": st.sampled_from([True, False, "true", None]),
        "mtu": st.sampled_from([1500, -1, 2**31, True, "9000", None]),
        "device-info": st.sampled_from([{"type": "pci"}, "pci", None]),
        "dns": st.just({}),
    },
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_entry, max_size=4))
def test_network_status_fast_path_and_parser_give_the_same_rows(entries):
    raw = json.dumps(entries)
    obj = {
        "metadata": {
            "namespace": "lab",
            "name": "p",
            "annotations": {NETWORK_STATUS: raw},
        },
        "spec": {"nodeName": "n1"},
        "status": {"phase": "Running"},
    }
    fast = pod_record(obj)
    with mock.patch("ippam.sync.records.pods._network_status_fast", lambda raw: None):
        careful = pod_record(obj)
    assert fast == careful


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789+-x٣", max_size=45), st.integers(1, 2**64))
def test_a_plain_digit_key_reads_as_the_careful_reader_reads_it(key, size):
    problems: list[str] = []
    offset = _odd_key_offset(key, size, problems)
    if key.isdigit() and key.isascii() and len(key) <= MAX_KEY_DIGITS:
        assert (offset, problems) == (int(key), [])


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="ab/", max_size=6))
def test_an_allocation_podref_is_a_problem_exactly_when_the_careful_check_says_so(podref):
    record = pool_record(
        {
            "metadata": {"namespace": "kube-system", "name": "10.0.0.0-30"},
            "spec": {"range": "10.0.0.0/30", "allocations": {"1": {"id": "c", "podref": podref}}},
        }
    )
    assert (json.loads(record.row.problems) == []) == (_podref_problem(podref) is None)
    namespace, name = naming.split_podref(podref)
    allocation = record.allocations[0]
    assert (allocation.podref, allocation.pod_namespace, allocation.pod_name) == (
        podref,
        namespace,
        name,
    )


def test_an_address_with_a_nul_in_it_is_a_problem_not_a_dropped_pod():
    # JSON's "\u0000" decodes to a NUL, which inet_pton refuses with ValueError, not OSError.
    assert canonical_ip("10.0.0.1\x00") is None
    assert ip_key("10.0.0.1\x00") is None
    raw = json.dumps([{"name": "lab/a", "interface": "net1", "ips": ["10.0.0.1\x00", "10.0.0.2"]}])
    record = pod_record(
        {"metadata": {"namespace": "lab", "name": "p", "annotations": {NETWORK_STATUS: raw}}}
    )
    assert [keys for _, keys in record.interfaces] == [[ip_key("10.0.0.2")]]
    assert "is not an IP address" in json.loads(record.row.annotation_problems)[0]


def test_an_added_interface_event_with_a_nul_in_an_address_is_still_read():
    event = event_record(
        {
            "metadata": {"namespace": "lab", "name": "p.1", "uid": "e1"},
            "involvedObject": {"kind": "Pod", "namespace": "lab", "name": "p", "uid": "u1"},
            "reason": "AddedInterface",
            "message": "Add net1 [10.0.0.5\x00/24 10.0.0.6/24] from lab/blue-net",
        }
    )
    assert event is not None and event.row.ip == ip_key("10.0.0.6")
