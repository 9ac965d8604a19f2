"""Reading an address as a pod's network-status lists it: Go's net.ParseIP, and the addresses
a lenient reading of a listing Go refuses could denote (ippam.ipparse, last section)."""

from __future__ import annotations

import pytest
from netaddr import IPAddress

from ippam.ipparse import go_address, go_listed_ip, lenient_listed_ips


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("10.88.0.14", "10.88.0.14"),
        ("::ffff:10.88.0.14", "10.88.0.14"),  # To4() is non-nil: the IPv4 address
        ("::ffff:a58:e", "10.88.0.14"),
        ("::FFFF:A58:17", "10.88.0.23"),
        ("0:0:0:0:0:ffff:0a58:000e", "10.88.0.14"),
        ("fd00:10:20::15", "fd00:10:20::15"),
        ("FD00:10:20:0::15", "fd00:10:20::15"),
        ("::a58:e", "::a58:e"),  # IPv4-compatible is not mapped: Go keeps it IPv6
    ],
)
def test_go_reads_these_as_the_address(text, address):
    ip = go_listed_ip(text)
    assert ip == IPAddress(address) and ip.version == IPAddress(address).version


@pytest.mark.parametrize(
    "text",
    [
        "010.088.000.011",  # leading zeros: refused since Go 1.17
        "::ffff:010.88.0.14",
        " 10.88.0.14",
        "10.88.0.14 ",
        "10.88.0.14/24",
        "fe80::1%eth0",  # a zone: net.ParseIP refuses it
        "10.88.14",
        "10.88.0.256",
        "1:2:3:4:5:6:7:8:9",
        "",
        "１０.88.0.14",  # fullwidth digits
    ],
)
def test_go_refuses_these(text):
    assert go_listed_ip(text) is None


@pytest.mark.parametrize(
    ("text", "addresses"),
    [
        ("010.088.000.011", {"10.88.0.11", "8.88.0.11", "10.88.0.9", "8.88.0.9"}),
        ("10.88.0.014", {"10.88.0.14", "10.88.0.12"}),
        ("010.089.0.1", {"10.89.0.1", "8.89.0.1"}),  # 089 is no octal: decimal only
        (" 10.88.0.14 ", {"10.88.0.14"}),
        ("10.88.0.14/24", {"10.88.0.14"}),
        (" ::ffff:a58:e/120", {"10.88.0.14"}),
        ("::ffff:010.088.0.14", {"10.88.0.14", "8.88.0.14"}),
        ("0x0a.0x58.0.14", {"10.88.0.14"}),
        ("fe80::1%eth0", {"fe80::1"}),
        ("10.88.0.14", {"10.88.0.14"}),  # Go's own reading, when it has one
        ("10.88.0.256", set()),
        ("pod-a", set()),
    ],
)
def test_a_lenient_reading_covers_what_the_writer_could_mean(text, addresses):
    assert lenient_listed_ips(text) == {IPAddress(a) for a in addresses}


def test_go_address_unmaps_ipv4_mapped_only():
    assert go_address(IPAddress("::ffff:10.0.0.1")) == IPAddress("10.0.0.1")
    assert go_address(IPAddress("::10.0.0.1")).version == 6
    assert go_address(IPAddress("10.0.0.1")) == IPAddress("10.0.0.1")


@pytest.mark.parametrize(
    "listed",
    [
        "10.88.0.14",
        "::ffff:10.88.0.14",
        "::ffff:a58:e",
        "::FfFf:A58:E",
        "0:0:0:0:0:ffff:0a58:000e",
        "010.088.000.014",
        "10.88.0.014",
        "10.088.0.14",
        "0x0a.0x58.0.14",
        " 10.88.0.14 ",
        "10.88.0.14/24",
    ],
)
def test_the_holder_prefilter_lets_every_spelling_through(listed):
    """The cheap pre-filter of the live holder index must never drop a pod whose listing
    could denote a wanted IPv4 address (it only saves parsing the others)."""
    import json

    from ippam.kube.holders import _could_list

    raw = json.dumps([{"name": "default/net-a", "interface": "net1", "ips": [listed]}])
    wanted = IPAddress("10.88.0.14")
    assert wanted in lenient_listed_ips(listed)
    assert _could_list(raw, (str(wanted),))


def test_the_holder_prefilter_skips_plain_unrelated_listings():
    import json

    from ippam.kube.holders import _could_list

    raw = json.dumps(
        [
            {
                "name": "default/net-a",
                "interface": "net1",
                "ips": ["10.100.200.7"],
                "mac": "02:42:ac:11:00:02",
            }
        ]
    )
    assert not _could_list(raw, ("10.88.0.14",))
