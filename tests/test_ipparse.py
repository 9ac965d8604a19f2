"""The three dialects of IP/CIDR text: the same string read where it comes from."""

from __future__ import annotations

import pytest
from netaddr import IPAddress, IPNetwork

from ippam.fields import ip_to_key
from ippam.ipparse import (
    canonical_ip,
    go_cidr,
    go_exclude,
    go_ip,
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
