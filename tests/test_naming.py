"""Whereabouts object names and allocation keys (pure, no DB)."""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from netaddr import IPAddress, IPNetwork

from ippam.naming import (
    allocation_ip,
    allocation_key,
    go_ip_string,
    node_pool_name,
    node_slice_pool_name,
    normalize_range,
    pool_name,
    reservation_ip,
    reservation_name,
    split_podref,
)


def test_normalize_range_examples_from_design():
    assert normalize_range("10.0.0.0/8") == "10.0.0.0-8"
    assert normalize_range("fd00::/64") == "fd00---64"


def test_pool_name_with_and_without_network_name():
    assert pool_name("192.168.20.0/24") == "192.168.20.0-24"
    assert pool_name("192.168.20.0/24", "blue") == "blue-192.168.20.0-24"
    assert pool_name("fd00:0:0:1::/64", "blue") == "blue-fd00-0-0-1---64"


def test_node_slice_names_follow_whereabouts():
    # NodeSlicePool: network_name, else the CNI config name (getSliceName).
    assert node_slice_pool_name("blue") == "blue"
    assert node_slice_pool_name("", "macvlan-conf") == "macvlan-conf"
    assert node_slice_pool_name("blue", "macvlan-conf") == "blue"
    # Per-node IPPool: [network_name-]node-slice range (IPPoolName with NodeName).
    assert node_pool_name("10.0.0.0/28", "node-1") == "node-1-10.0.0.0-28"
    assert node_pool_name("10.0.0.0/28", "node-1", "blue") == "blue-node-1-10.0.0.0-28"


def test_allocation_ip_and_key_examples():
    net = IPNetwork("10.0.0.0/24")
    assert allocation_ip(net, "5") == IPAddress("10.0.0.5")
    assert allocation_key(net, IPAddress("10.0.0.5")) == "5"
    assert allocation_ip(IPNetwork("fd00::/64"), "65536") == IPAddress("fd00::1:0")


def test_allocation_ip_accepts_what_go_parseint_accepts():
    net = IPNetwork("10.0.0.0/24")
    assert allocation_ip(net, "+7") == IPAddress("10.0.0.7")
    assert allocation_ip(net, "007") == IPAddress("10.0.0.7")


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("abc", "not a non-negative decimal offset"),
        ("", "not a non-negative decimal offset"),
        (" 5", "not a non-negative decimal offset"),
        ("1.5", "not a non-negative decimal offset"),
        ("-1", "is negative"),
        ("256", "outside range 10.0.0.0/24"),
    ],
)
def test_allocation_ip_rejects_bad_keys_with_clear_messages(key, words):
    with pytest.raises(ValueError, match=words):
        allocation_ip(IPNetwork("10.0.0.0/24"), key)


def test_allocation_key_rejects_ip_outside_range():
    with pytest.raises(ValueError, match="not inside range"):
        allocation_key(IPNetwork("10.0.0.0/24"), IPAddress("10.0.1.1"))


@st.composite
def _net_and_offset(draw):
    version = draw(st.sampled_from([4, 6]))
    bits = 32 if version == 4 else 128
    prefix = draw(st.integers(0, bits))
    net = IPNetwork(f"{IPAddress(draw(st.integers(0, 2**bits - 1)), version)}/{prefix}").cidr
    return net, draw(st.integers(0, net.size - 1))


@settings(max_examples=200, deadline=None)
@given(_net_and_offset())
def test_allocation_key_ip_round_trip(case):
    net, offset = case
    ip = allocation_ip(net, str(offset))
    assert ip in net
    assert allocation_key(net, ip) == str(offset)


def test_reservation_names_match_whereabouts_normalize_ip():
    assert reservation_name(IPAddress("10.0.0.5")) == "10.0.0.5"
    assert reservation_name(IPAddress("10.0.0.5"), "blue") == "blue-10.0.0.5"
    assert reservation_name(IPAddress("fd00::1")) == "fd00--1"
    # A trailing ":" gets a "0" first: Kubernetes names cannot end in "-".
    assert reservation_name(IPAddress("fd00::")) == "fd00--0"
    assert reservation_name(IPAddress("::"), "blue") == "blue---0"
    assert reservation_name(IPAddress("fd00::"), "blue-2") == "blue-2-fd00--0"


def test_reservation_ip_inverse_and_non_addresses():
    assert reservation_ip("fd00--0") == IPAddress("fd00::")
    assert reservation_ip("blue-10.0.0.5", "blue") == IPAddress("10.0.0.5")
    assert reservation_ip("blue-10.0.0.5") is None
    assert reservation_ip("red-10.0.0.5", "blue") is None
    assert reservation_ip("not-an-ip") is None
    assert reservation_ip("") is None
    assert reservation_ip("10.0.0.05") is None  # not a spelling whereabouts produces
    assert reservation_ip("0--1") is None  # whereabouts writes ::1 as "--1"


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", max_size=12)


@settings(max_examples=200, deadline=None)
@given(st.ip_addresses(), _names)
def test_reservation_name_ip_round_trip(ip, network_name):
    address = IPAddress(str(ip))
    mapped = address.version == 6 and int(address) >> 32 == 0xFFFF
    assume(not mapped)  # Go prints ::ffff:a.b.c.d as a.b.c.d; see the test below
    name = reservation_name(address, network_name)
    assert ":" not in name
    assert not name.endswith("-")
    assert reservation_ip(name, network_name) == address


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**16 - 1), st.integers(0, 7), _names)
def test_reservation_round_trip_for_addresses_ending_in_double_colon(high, groups, network_name):
    address = IPAddress(high << (16 * (7 - groups)) if groups else high << 112, 6)
    assume(int(address) >> 32 != 0xFFFF)
    name = reservation_name(address, network_name)
    assert reservation_ip(name, network_name) == address


def test_ipv4_mapped_address_is_named_like_go_prints_it():
    assert go_ip_string(IPAddress("::ffff:10.0.0.1")) == "10.0.0.1"
    assert go_ip_string(IPAddress("::10.0.0.1")) == "::a00:1"


@settings(max_examples=200, deadline=None)
@given(st.ip_addresses(v=6))
def test_go_ip_string_follows_rfc5952(ip):
    assume(int(ip) >> 32 != 0xFFFF)
    # Python's ipaddress (3.11) compresses like RFC 5952 and, like Go, prints hex groups.
    assert go_ip_string(IPAddress(str(ip))) == ipaddress.IPv6Address(int(ip)).compressed


def test_split_podref():
    assert split_podref("default/web-1") == ("default", "web-1")
    assert split_podref("web-1") == ("", "web-1")
    assert split_podref("a/b/c") == ("a", "b/c")
    assert split_podref("") == ("", "")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_naming_never_raises_on_text(text):
    reservation_ip(text)
    reservation_ip(text, "blue")
    split_podref(text)
    normalize_range(text)
    with contextlib.suppress(ValueError):
        allocation_ip(IPNetwork("10.0.0.0/24"), text)
