"""Whereabouts IPAM config parsing and usable-address arithmetic (pure, no DB)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from netaddr import IPAddress, IPNetwork

from ippam.whereabouts import WhereaboutsRange, gateway_in_usable, parse_whereabouts_ipam

# --- brute force: a port of whereabouts' allocate.IterateForAssignment loop --------------


def _brute_usable(net: IPNetwork, start: int | None, end: int | None, excludes: list) -> set:
    """Every address whereabouts would hand out from an empty pool, by walking the range.

    Written from iphelpers.GetIPRange and allocate.IterateForAssignment, independently of
    the IPSet implementation: skip into an excluded subnet jumps to its last address.
    """
    bits = 32 if net.version == 4 else 128
    if bits - net.prefixlen < 2:
        return set()
    first, last = net.first + 1, net.last - 1
    if start is not None and first <= start <= last:
        first = start
    if end is not None and first <= end <= last:
        last = end
    picked = set()
    ip = first
    while net.first <= ip <= net.last and ip <= last:
        hit = next((ex for ex in excludes if ex.first <= ip <= ex.last), None)
        if hit is not None:
            ip = hit.last + 1
            continue
        picked.add(ip)
        ip += 1
    return picked


@st.composite
def _range_case(draw, version: int):
    bits = 32 if version == 4 else 128
    prefix = draw(st.integers(bits - 10, bits))
    base = draw(st.integers(0, 2**bits - 1))
    net = IPNetwork(f"{IPAddress(base, version)}/{prefix}").cidr
    near = st.integers(max(0, net.first - 3), min(2**bits - 1, net.last + 3))
    start = draw(st.none() | near)
    end = draw(st.none() | near)
    excludes = []
    for _ in range(draw(st.integers(0, 3))):
        ex_prefix = draw(st.integers(max(0, prefix - 2), bits))
        ex_ip = IPAddress(draw(near), version)
        if ex_prefix == bits and draw(st.booleans()):
            excludes.append(str(ex_ip))  # bare IP form
        else:
            excludes.append(f"{ex_ip}/{ex_prefix}")  # host bits allowed, like Go ParseCIDR
    return net, start, end, excludes


def _check_against_brute(case) -> None:
    net, start, end, excludes = case
    ipam: dict = {"type": "whereabouts", "range": str(net)}
    if start is not None:
        ipam["range_start"] = str(IPAddress(start, net.version))
    if end is not None:
        ipam["range_end"] = str(IPAddress(end, net.version))
    if excludes:
        ipam["exclude"] = excludes
    config = parse_whereabouts_ipam(ipam)
    (r,) = config.ranges
    host = 32 if net.version == 4 else 128
    ex_nets = [IPNetwork(e if "/" in e else f"{e}/{host}").cidr for e in excludes]
    expected = _brute_usable(net, start, end, ex_nets)
    assert r.usable_count() == len(expected)
    blocks = list(r.usable().free_blocks())
    assert {ip for lo, hi in blocks for ip in range(lo, hi + 1)} == expected
    assert all(r.usable().is_usable(ip) for ip in expected)
    near = range(max(net.first - 2, 0), net.last + 3)
    assert sum(r.usable().is_usable(ip) for ip in near) == len(expected)


@settings(max_examples=150, deadline=None)
@given(_range_case(4))
def test_usable_count_matches_brute_force_ipv4(case):
    _check_against_brute(case)


@settings(max_examples=150, deadline=None)
@given(_range_case(6))
def test_usable_count_matches_brute_force_ipv6(case):
    _check_against_brute(case)


# --- examples ---------------------------------------------------------------------------


def test_plain_ipv4_range_skips_network_and_broadcast():
    (r,) = parse_whereabouts_ipam({"type": "whereabouts", "range": "10.0.0.0/24"}).ranges
    assert r.usable_count() == 254
    assert not r.usable().is_usable(IPAddress("10.0.0.0"))
    assert not r.usable().is_usable(IPAddress("10.0.0.255"))
    assert r.usable().is_usable(IPAddress("10.0.0.254"))


def test_ipv6_range_skips_the_last_address_like_whereabouts():
    (r,) = parse_whereabouts_ipam({"range": "fd00::/120"}).ranges
    assert r.usable_count() == 254
    assert not r.usable().is_usable(IPAddress("fd00::ff"))


def test_ipv6_offsets_whereabouts_cannot_read_back_are_not_usable():
    # whereabouts reads allocation offsets with strconv.ParseInt(.., 64): only offsets
    # 1 .. 2**63-1 of a /64 (or wider) survive a round trip.
    (r,) = parse_whereabouts_ipam({"range": "fd00::/64"}).ranges
    assert r.usable_count() == 2**63 - 1
    assert not r.usable().is_usable(IPAddress("fd00::8000:0:0:0"))
    (r,) = parse_whereabouts_ipam({"range": "fd00::/48", "exclude": ["fd00::/66"]}).ranges
    assert r.usable_count() == 2**63 - 2**62
    (r,) = parse_whereabouts_ipam({"range": "fd00::/64", "exclude": ["fd00::/65"]}).ranges
    assert r.usable_count() == 0
    (r,) = parse_whereabouts_ipam({"range": "fd00::/64", "range_start": "fd00::8000:0:0:1"}).ranges
    assert r.usable_count() == 0


def test_tiny_subnets_have_no_usable_address():
    for cidr in ("10.0.0.0/31", "10.0.0.1/32", "fd00::/127", "fd00::1/128"):
        config = parse_whereabouts_ipam({"range": cidr})
        assert config.ranges[0].usable_count() == 0
        assert any("no usable address" in p for p in config.problems)


def test_seed_macvlan_conf_range_start_end_and_gateway():
    # Seed 002 (Tanzu): macvlan-conf with range_start/range_end and gateway.
    ipam = {
        "type": "whereabouts",
        "range": "192.168.20.0/24",
        "range_start": "192.168.20.10",
        "range_end": "192.168.20.100",
        "gateway": "192.168.20.1",
    }
    config = parse_whereabouts_ipam(ipam)
    assert config.problems == ()
    (r,) = config.ranges
    assert r.usable_count() == 91
    assert config.gateway == IPAddress("192.168.20.1")
    assert not gateway_in_usable(config, r)
    assert config.enable_overlapping_ranges is True


def test_gateway_inside_usable_is_reported_by_helper():
    config = parse_whereabouts_ipam({"range": "10.1.0.0/24", "gateway": "10.1.0.1"})
    assert gateway_in_usable(config, config.ranges[0])


def test_first_last_prefix_form_sets_start_and_end():
    config = parse_whereabouts_ipam({"range": "192.168.2.225-192.168.2.230/24"})
    (r,) = config.ranges
    assert r.cidr == "192.168.2.0/24"
    assert r.range_start == IPAddress("192.168.2.225")
    assert r.range_end == IPAddress("192.168.2.230")
    assert r.usable_count() == 6


def test_first_last_prefix_form_overrides_range_start_keys():
    config = parse_whereabouts_ipam(
        {"range": "10.0.0.10-10.0.0.20/24", "range_start": "10.0.0.2", "range_end": "10.0.0.3"}
    )
    assert config.ranges[0].usable_count() == 11


def test_first_last_prefix_form_with_first_outside_subnet_is_a_problem():
    config = parse_whereabouts_ipam({"range": "10.0.1.5-10.0.0.20/24"})
    assert config.ranges == ()
    assert config.problems == (
        "range '10.0.1.5-10.0.0.20/24': 10.0.1.5 is outside 10.0.0.0/24: "
        "whereabouts rejects the config",
    )
    assert config.refusal


def test_invalid_cidr_is_a_problem_in_plain_words():
    config = parse_whereabouts_ipam({"range": "10.0.0.0/33"})
    assert config.ranges == ()
    assert config.problems == ("range '10.0.0.0/33' is not a CIDR: whereabouts rejects the config",)


def test_range_start_outside_subnet_is_ignored_with_a_problem():
    config = parse_whereabouts_ipam({"range": "10.0.0.0/24", "range_start": "10.1.0.5"})
    assert config.problems == ("range_start 10.1.0.5 is outside 10.0.0.0/24 and is ignored",)
    assert config.ranges[0].usable_count() == 254


def test_range_end_before_range_start_is_ignored_like_whereabouts():
    # iphelpers.GetIPRange only honours a range_end within [first, last usable].
    config = parse_whereabouts_ipam(
        {"range": "10.0.0.0/24", "range_start": "10.0.0.50", "range_end": "10.0.0.10"}
    )
    assert config.ranges[0].usable_count() == 205
    assert any("before range_start" in p for p in config.problems)


def test_range_start_on_network_address_is_silently_equivalent():
    config = parse_whereabouts_ipam(
        {"range": "10.0.0.0/24", "range_start": "10.0.0.0", "range_end": "10.0.0.255"}
    )
    assert config.problems == ()
    assert config.ranges[0].usable_count() == 254


def test_host_bits_in_range_are_masked():
    (r,) = parse_whereabouts_ipam({"range": "10.0.0.77/24"}).ranges
    assert r.cidr == "10.0.0.0/24"
    assert r.range_start is None


def test_exclude_accepts_cidrs_and_bare_ips():
    config = parse_whereabouts_ipam(
        {"range": "10.0.0.0/24", "exclude": ["10.0.0.0/28", "10.0.0.200", "10.0.0.64/30"]}
    )
    assert config.problems == ()
    assert config.ranges[0].usable_count() == 254 - 15 - 1 - 4


def test_unparsable_exclude_makes_the_range_unusable():
    config = parse_whereabouts_ipam({"range": "10.0.0.0/24", "exclude": ["10.0.0.300/32"]})
    assert config.ranges[0].usable_count() == 0
    assert config.problems == (
        "every allocation from 10.0.0.0/24 fails: exclude entry `10.0.0.300/32` cannot be parsed",
    )
    assert config.ranges[0].verdict == (
        "every allocation from this range fails: exclude entry `10.0.0.300/32` cannot be parsed"
    )


def test_ip_ranges_get_the_top_level_range_prepended():
    config = parse_whereabouts_ipam(
        {
            "range": "10.0.0.0/24",
            "exclude": ["10.0.0.1"],
            "ipRanges": [{"range": "fd00::/120", "exclude": ["fd00::2"]}, {"range": "10.9.0.0/30"}],
        }
    )
    assert [r.cidr for r in config.ranges] == ["10.0.0.0/24", "fd00::/120", "10.9.0.0/30"]
    assert [r.usable_count() for r in config.ranges] == [253, 253, 2]


def test_fields_and_defaults():
    config = parse_whereabouts_ipam(
        {
            "range": "10.0.0.0/16",
            "network_name": "blue",
            "enable_overlapping_ranges": False,
            "node_slice_size": "/26",
            "routes": [{"dst": "0.0.0.0/0"}],
        }
    )
    assert config.network_name == "blue"
    assert config.enable_overlapping_ranges is False
    assert config.node_slice_size == "/26"
    assert config.routes == ({"dst": "0.0.0.0/0"},)


def test_missing_range_and_wrong_types_are_problems():
    config = parse_whereabouts_ipam({"enable_overlapping_ranges": "yes", "gateway": "nope"})
    assert config.enable_overlapping_ranges is True
    assert any("no range" in p for p in config.problems)
    assert any("enable_overlapping_ranges" in p for p in config.problems)
    assert any("gateway" in p for p in config.problems)


def test_ipv6_cidr_is_spelled_like_go():
    (r,) = parse_whereabouts_ipam({"range": "fd00:0:0:1::/64"}).ranges
    assert r.cidr == "fd00:0:0:1::/64"


def test_range_dataclass_usable_count():
    r = WhereaboutsRange(IPNetwork("10.0.0.0/29"), None, None, ())
    assert r.usable_count() == 6
    assert list(r.usable().free_blocks()) == [(0x0A000001, 0x0A000006)]


def test_a_config_whereabouts_rejects_has_nothing_usable():
    for ipam in (
        {"range": "10.0.0.0/24", "enable_overlapping_ranges": "yes"},
        {"range": "10.0.0.0/24", "network_name": 5},
        {"range": "10.0.0.0/24", "gateway": "nope"},
        {"range": "10.0.0.0/24", "exclude": [5]},
    ):
        config = parse_whereabouts_ipam(ipam)
        assert config.refusal
        assert config.ranges[0].usable_count() == 0
        assert config.ranges[0].verdict == (
            f"every allocation from this range fails: whereabouts rejects the config "
            f"({config.refusal})"
        )


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=8,
)
_ipam_keys = st.sampled_from(
    [
        "range",
        "range_start",
        "range_end",
        "exclude",
        "ipRanges",
        "gateway",
        "network_name",
        "enable_overlapping_ranges",
        "node_slice_size",
        "routes",
        "type",
    ]
)
_ipam_values = _json | st.sampled_from(
    [
        "10.0.0.0/24",
        "10.0.0.5",
        "fd00::/64",
        "1.2.3.4-1.2.3.9/29",
        "::/0",
        "0.0.0.0/0",
        "-/",
        "a-b/24",
    ]
)


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(_ipam_keys, _ipam_values | st.lists(_ipam_values, max_size=3)))
def test_parse_never_raises_on_arbitrary_values(ipam):
    config = parse_whereabouts_ipam(ipam)
    for r in config.ranges:
        assert r.usable_count() >= 0
    json.dumps(config.problems)


@settings(max_examples=100, deadline=None)
@given(_json)
def test_parse_never_raises_on_arbitrary_json(value):
    parse_whereabouts_ipam(value)


# --- one test per rule of whereabouts' reading (the differential table checks them together)


def test_an_exclude_entry_with_leading_zeros_fails_every_allocation():
    # allocate.parseExcludedRange: Go's strict net.ParseCIDR, then net.ParseIP.
    for entry in ("10.5.0.010", " 10.5.0.10", "10.5.0.0/24 "):
        config = parse_whereabouts_ipam({"range": "10.5.0.0/24", "exclude": [entry]})
        (r,) = config.ranges
        assert r.usable_count() == 0
        assert r.verdict == (
            f"every allocation from this range fails: exclude entry `{entry}` cannot be parsed"
        )
        assert not config.refusal  # the config loads; each allocation then fails


def test_a_null_exclude_entry_is_an_empty_one():
    # encoding/json leaves a null []string element at "", which parseExcludedRange refuses.
    (r,) = parse_whereabouts_ipam({"range": "10.5.0.0/24", "exclude": [None]}).ranges
    assert r.usable_count() == 0 and "``" in r.verdict


def test_a_padded_range_is_refused():
    # LoadIPAMConfig: ParseCIDRSloppy on the range, an error for the whole config.
    config = parse_whereabouts_ipam({"range": " 10.0.0.0/24"})
    assert config.refusal == "range ' 10.0.0.0/24' is not a CIDR"
    # The range it means stays, handing nothing out, so its pool says so.
    (r,) = config.ranges
    assert r.cidr == "10.0.0.0/24" and r.usable_count() == 0
    assert r.verdict == (
        "every allocation from this range fails: whereabouts rejects the config "
        "(range ' 10.0.0.0/24' is not a CIDR)"
    )


def test_a_padded_top_level_range_start_is_dropped_silently():
    # types.backwardsCompatibleIPAddress: ParseIPSloppy, a failure gives nil.
    config = parse_whereabouts_ipam(
        {"range": "10.0.0.0/24", "range_start": " 10.0.0.100", "range_end": "10.0.0.200 "}
    )
    assert not config.refusal
    assert config.ranges[0].usable_count() == 254
    assert any("silently ignores it" in p for p in config.problems)


def test_a_slash_0024_prefix_is_accepted():
    # dtoi in ParseCIDRSloppy takes leading zeros.
    (r,) = parse_whereabouts_ipam({"range": "10.0.0.0/0024"}).ranges
    assert r.cidr == "10.0.0.0/24" and r.usable_count() == 254


def test_a_number_where_a_string_belongs_rejects_the_whole_config():
    # encoding/json: UnmarshalTypeError into IPAMConfig's alias struct.
    for ipam in (
        {"range": "10.0.0.0/24", "range_start": 5},
        {"range": "10.0.0.0/24", "Range_Start": 5},  # keys match case-insensitively
        {"range": "10.0.0.0/24", "leader_lease_duration": 1.5},
        {"range": "10.0.0.0/24", "exclude": "10.0.0.1"},
        {"range": "10.0.0.0/24", "dns": {"nameservers": "10.0.0.53"}},
    ):
        config = parse_whereabouts_ipam(ipam)
        assert config.refusal, ipam
        assert config.ranges[0].usable_count() == 0
    assert (
        "range_start is the number 5, not a string"
        in parse_whereabouts_ipam({"range": "10.0.0.0/24", "range_start": 5}).problems[0]
    )


def test_a_bad_ip_ranges_entry_rejects_the_whole_config():
    # encoding/json decodes an ipRanges entry's range_start/range_end as net.IP (strict
    # net.ParseIP in UnmarshalText); LoadIPAMConfig refuses an entry without a CIDR.
    good = {"range": "10.1.0.0/24"}
    for bad in (
        {"range": "10.2.0.0/24", "range_start": "10.2.0.05"},
        {"range": "10.2.0.0/24", "range_end": " 10.2.0.9"},
        {"range": ""},
        None,
        "10.2.0.0/24",
    ):
        config = parse_whereabouts_ipam({"ipRanges": [good, bad]})
        assert config.refusal, bad
        assert [r.usable_count() for r in config.ranges] == [0] * len(config.ranges)


def test_ipv4_mapped_text_is_ipv4_everywhere():
    # Go's To4(): the mapped range is renamed 10.0.0.0/24 (IPNet.String()), its start, end
    # and exclude compare as IPv4.
    config = parse_whereabouts_ipam(
        {
            "range": "::ffff:10.0.0.0/120",
            "range_start": "::ffff:10.0.0.10",
            "range_end": "::ffff:a00:13",
            "exclude": ["::ffff:10.0.0.12/127"],
        }
    )
    (r,) = config.ranges
    assert r.cidr == "10.0.0.0/24" and r.network.version == 4
    assert r.usable_count() == 10 - 2  # .10-.19 without .12-.13
    assert config.problems == ()


def test_a_mapped_range_is_read_back_from_the_database_as_ipv4():
    # The stored range is what whereabouts names the pool after: 10.0.0.0/24, not an IPv6
    # range spelled "10.0.0.0/120" that no stored-range reading could parse.
    from ippam.ranges import stored_range_usable
    from ippam.sync.records.nads import nad_record

    config = {"type": "macvlan", "ipam": {"type": "whereabouts", "range": "::ffff:10.0.0.0/120"}}
    nad = {
        "metadata": {"name": "m", "namespace": "n", "uid": "u"},
        "spec": {"config": json.dumps(config)},
    }
    (row,) = nad_record(nad).ranges
    assert row.range == "10.0.0.0/24" and row.pool_name == "10.0.0.0-24"
    stored = stored_range_usable(row.range, None, None, json.loads(row.exclude), row.verdict)
    assert stored is not None and stored.count == 254 == row.usable


def test_a_reversed_or_outside_end_is_ignored_not_clamped():
    # iphelpers.GetIPRange: an end outside start..last usable is silently ignored.
    (r,) = parse_whereabouts_ipam(
        {"range": "10.0.0.0/24", "range_start": "10.0.0.100", "range_end": "10.0.0.50"}
    ).ranges
    assert r.usable_count() == 254 - 99


def test_an_ipv4_range_start_inside_an_ipv6_range_finds_nothing():
    # iphelpers.CompareIPs compares 16 bytes (IPv4 as ::ffff:a.b.c.d), so GetIPRange takes
    # the start; IterateForAssignment then stops at once: ipnet.Contains is false for IPv4.
    (r,) = parse_whereabouts_ipam({"range": "::/64", "range_start": "10.0.0.5"}).ranges
    assert r.usable_count() == 0 and "range_start 10.0.0.5 is IPv4" in r.verdict
    (r,) = parse_whereabouts_ipam({"range": "::/120", "range_start": "10.0.0.5"}).ranges
    assert r.usable_count() == 254  # outside ::1-::fe: ignored
    (r,) = parse_whereabouts_ipam({"range": "::/64", "range_end": "::ffff:10.0.0.5"}).ranges
    assert r.usable_count() == 0xFFFF_0A00_0005  # ::1 .. ::ffff:a00:5


def test_a_route_whose_dst_go_cannot_parse_rejects_the_whole_config():
    # CNI v1.3 types.Route decodes dst with IPNet.UnmarshalJSON (net.ParseCIDR; null is ""
    # and fails too) and gw as net.IP (net.ParseIP): either error fails the decoding.
    for route in ({"dst": "010.0.0.0/8"}, {"dst": None}, {"dst": "0.0.0.0/0", "gw": "10.0.0.01"}):
        config = parse_whereabouts_ipam({"range": "10.0.0.0/29", "routes": [route]})
        assert config.refusal.startswith("routes[0]."), route
    for route in ({"dst": "0.0.0.0/00"}, {"gw": "10.0.0.1"}, {"dst": "::/0", "gw": None}):
        assert not parse_whereabouts_ipam({"range": "10.0.0.0/29", "routes": [route]}).refusal
