"""The three dialects of IP/CIDR text: the same string read where it comes from."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netaddr import IPAddress, IPNetwork

from ippam.fields import ip_to_key
from ippam.ipparse import (
    canonical_ip,
    go_cidr,
    go_cidr_ip,
    go_exclude,
    go_ip,
    go_strict_cidr,
    go_strict_ip,
    input_cidr,
    input_ip,
    ip_key,
    listed_ip,
    strict_cidr,
    strict_ip,
)


def test_go_dialect_reads_leading_zeros_like_parse_ip_sloppy():
    assert go_ip("010.000.000.001") == IPAddress("10.0.0.1")
    assert go_cidr("010.0.0.7/24") == IPNetwork("10.0.0.0/24")
    assert go_ip("10.1") is None
    assert go_ip("256.0.0.1") is None


def test_go_exclude_takes_a_cidr_or_a_bare_ip():
    assert go_exclude("10.0.0.5") == IPNetwork("10.0.0.5/32")
    assert go_exclude("fd00::5") == IPNetwork("fd00::5/128")
    assert go_exclude("10.0.0.7/30") == IPNetwork("10.0.0.4/30")
    for bad in ("10.0.0.0/33", "garbage", "10.0.0.5/", "", None, 5):
        assert go_exclude(bad) is None


# Each rule below mirrors one Go function; the differential table
# (test_whereabouts_differential.py) checks them together against whereabouts' code.


def test_sloppy_takes_any_number_of_leading_zeros():
    # k8s.io/utils ParseIPSloppy: Go 1.16's parseIPv4, whose dtoi stops only at 0xFFFFFF.
    assert go_ip("0000000010.0.0.01") == IPAddress("10.0.0.1")
    assert go_ip("10.0.0.0256") is None


def test_go_trims_nothing():
    # ParseIPSloppy / ParseCIDRSloppy / net.ParseIP: a space is no digit.
    for padded in (" 10.0.0.1", "10.0.0.1 ", "\t10.0.0.1"):
        assert go_ip(padded) is None and go_strict_ip(padded) is None
    assert go_cidr(" 10.0.0.0/24") is None
    assert go_cidr("10.0.0.0/24 ") is None
    assert go_exclude("10.0.0.1 ") is None


def test_strict_refuses_ipv4_leading_zeros():
    # net.ParseIP since Go 1.17: "non-zero components with leading zeroes" refused.
    assert go_strict_ip("10.0.0.010") is None
    assert go_strict_ip("10.0.0.0") == IPAddress("10.0.0.0")
    assert go_strict_cidr("010.0.0.0/24") is None
    assert go_cidr("010.0.0.0/24") == IPNetwork("10.0.0.0/24")


def test_strict_refuses_ipv6_groups_of_more_than_four_digits():
    # net.ParseIP is netip.ParseAddr since Go 1.22 (whereabouts builds with 1.25).
    assert go_strict_ip("fd00::00001") is None
    assert go_ip("fd00::00001") == IPAddress("fd00::1")  # Go 1.16's xtoi took it


def test_prefix_length_takes_leading_zeros():
    # dtoi in ParseCIDR (both Go's and the sloppy fork).
    assert go_cidr("10.0.0.0/0024") == IPNetwork("10.0.0.0/24")
    assert go_strict_cidr("10.0.0.0/0024") == IPNetwork("10.0.0.0/24")
    assert go_exclude("10.0.0.0/0030") == IPNetwork("10.0.0.0/30")
    for bad in ("10.0.0.0/", "10.0.0.0/+24", "10.0.0.0/0033", "10.0.0.0/24/1"):
        assert go_cidr(bad) is None


def test_ipv4_mapped_text_is_ipv4():
    # net.IP.To4() is non-nil for ::ffff:a.b.c.d, however spelled.
    assert go_ip("::ffff:10.0.0.1") == IPAddress("10.0.0.1")
    assert go_ip("::ffff:a00:1") == IPAddress("10.0.0.1")
    assert go_strict_ip("::FFFF:10.0.0.1") == IPAddress("10.0.0.1")
    assert go_ip("::10.0.0.1") == IPAddress("::a00:1")  # not mapped: IPv6


def test_a_mapped_network_of_prefix_96_or_more_is_ipv4():
    # IPNet.String() (networkNumberAndMask): whereabouts renames the range with it.
    assert go_cidr("::ffff:10.0.0.7/120") == IPNetwork("10.0.0.0/24")
    assert go_cidr_ip("::ffff:10.0.0.7/120") == (IPAddress("10.0.0.7"), IPNetwork("10.0.0.0/24"))
    assert go_cidr("::ffff:10.0.0.0/64") == IPNetwork("::/64")


def test_a_bare_mapped_exclude_becomes_an_ipv6_slash_32():
    # parseExcludedRange appends "/32" (To4 non-nil) to the text, and ParseCIDR reads
    # "::ffff:10.0.0.5/32" as IPv6 ::/32, which contains no IPv4 address.
    assert go_exclude("::ffff:10.0.0.5") == IPNetwork("::/32")
    assert go_exclude("::ffff:10.0.0.4/126") == IPNetwork("10.0.0.4/30")


def test_zones_are_refused():
    # net.ParseIP and the sloppy fork have no zone syntax.
    assert go_ip("fe80::1%eth0") is None
    assert go_exclude("fe80::1%eth0") is None


def test_strict_dialect_keeps_host_bits_and_rejects_shorthand():
    assert str(strict_cidr(" 10.0.0.7/24 ")) == "10.0.0.7/24"
    assert strict_ip("10.1") is None
    assert strict_ip("10.0.0.1/32") is None
    assert strict_cidr("10.0.0.0/33") is None
    assert strict_cidr("fd00::/129") is None


def test_user_input_dialect_tolerates_whitespace_and_gives_cidrs_their_network():
    assert input_ip("  fd00::1 ") == IPAddress("fd00::1")
    assert input_ip("10.0.0.0/24") is None
    assert input_cidr("10.0.0.7/24") == IPNetwork("10.0.0.0/24")
    assert input_cidr("web-1") is None


def test_listed_ip_tolerates_a_prefix():
    assert listed_ip("10.0.0.5/24") == IPAddress("10.0.0.5")
    assert listed_ip(["10.0.0.5"]) is None


@pytest.mark.parametrize("text", ["10.0.0.5", "fd00::5", "::ffff:10.0.0.5", "10.0.0.5/24"])
def test_fast_keys_match_the_field_keys(text):
    assert ip_key(text) == ip_to_key(IPAddress(text.split("/")[0]))


def test_canonical_ip_refuses_non_canonical_spellings():
    assert canonical_ip("fd00::5") == ("fd00::5", ip_to_key(IPAddress("fd00::5")))
    assert canonical_ip("FD00::5") is None
    assert canonical_ip("fd00:0::5") is None
    assert canonical_ip(5) is None


_octet_text = st.integers(0, 300).flatmap(
    lambda n: st.sampled_from([str(n), "0" + str(n), "00" + str(n), f" {n}", f"{n} "])
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_octet_text, min_size=4, max_size=4))
def test_dotted_quads_read_as_go_does(parts):
    # An independent reading of each rule: sloppy takes leading zeros, strict refuses them,
    # neither trims, no octet above 255; the mapped spelling is the same IPv4 address.
    text = ".".join(parts)
    values = [int(p) if p.strip() == p else None for p in parts]
    valid = all(v is not None and v <= 255 for v in values)
    zeros = any(len(p) > 1 and p[0] == "0" for p in parts)
    expected = IPAddress(".".join(map(str, values))) if valid else None
    assert go_ip(text) == expected
    assert go_strict_ip(text) == (None if zeros else expected)
    assert go_ip("::ffff:" + text) == expected
    assert go_exclude(text) == (None if zeros or not valid else IPNetwork(f"{expected}/32"))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**128 - 1), st.integers(0, 128), st.integers(0, 3))
def test_ipv6_cidrs_read_as_go_does(value, plen, zeros):
    # Any IPv6 text netaddr prints, with the prefix padded by zeros (Go's dtoi): its
    # network, or the IPv4 network when Go's To4() would see a mapped address.
    ip = IPAddress(value, 6)
    net = IPNetwork((value >> (128 - plen) << (128 - plen), plen), version=6)
    text = f"{ip}/{'0' * zeros}{plen}"
    if plen >= 96 and int(net.network) >> 32 == 0xFFFF:
        net = IPNetwork((int(net.network) & 0xFFFFFFFF, plen - 96), version=4)
    assert go_cidr(text) == net
    assert go_strict_cidr(text) == net
