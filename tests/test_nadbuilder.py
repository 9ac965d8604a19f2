"""ippam.nadbuilder: the CNI config is built as data and always parses back cleanly."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ippam import nadbuilder as nb
from ippam.cniconfig import parse_cni_config
from ippam.whereabouts import parse_whereabouts_ipam

WB = nb.WhereaboutsIPAM(
    range="10.10.0.0/24",
    range_start="10.10.0.10",
    range_end="10.10.0.200",
    exclude=("10.10.0.64/28", "10.10.0.100"),
    gateway="10.10.0.1",
    network_name="blue",
    routes=(nb.Route("10.20.0.0/16", "10.10.0.1"), nb.Route("0.0.0.0/0")),
    enable_overlapping_ranges=False,
)
HL = nb.HostLocalIPAM(
    subnet="192.168.5.0/24",
    range_start="192.168.5.10",
    range_end="192.168.5.20",
    gateway="192.168.5.1",
    routes=(nb.Route("0.0.0.0/0", "192.168.5.1"),),
)
STATIC = nb.StaticIPAM(
    addresses=(nb.StaticAddress("10.30.0.5/24", "10.30.0.1"), nb.StaticAddress("fd00::5/64")),
    routes=(nb.Route("10.40.0.0/16"),),
)
INTERFACES = {
    "ipvlan": (
        nb.IPVlan(master="eth1", mode="l3s"),
        {"type": "ipvlan", "master": "eth1", "mode": "l3s"},
    ),
    "macvlan": (
        nb.MacVlan(master="ens3", mode="vepa"),
        {"type": "macvlan", "master": "ens3", "mode": "vepa"},
    ),
    "bridge": (
        nb.Bridge(bridge="br-data", is_gateway=True, ip_masq=True, vlan=100),
        {"type": "bridge", "bridge": "br-data", "isGateway": True, "ipMasq": True, "vlan": 100},
    ),
    "host-device-name": (
        nb.HostDevice(device="ens2f0"),
        {"type": "host-device", "device": "ens2f0"},
    ),
    "host-device-pci": (
        nb.HostDevice(pci_bus_id="0000:3b:00.1"),
        {"type": "host-device", "pciBusID": "0000:3b:00.1"},
    ),
    "sriov": (
        nb.SRIOV(resource_name="intel.com/sriov_netdevice", vlan=42),
        {"type": "sriov", "vlan": 42},
    ),
}
IPAMS = {
    "whereabouts": (
        WB,
        {
            "type": "whereabouts",
            "range": "10.10.0.0/24",
            "range_start": "10.10.0.10",
            "range_end": "10.10.0.200",
            "exclude": ["10.10.0.64/28", "10.10.0.100"],
            "gateway": "10.10.0.1",
            "network_name": "blue",
            "routes": [{"dst": "10.20.0.0/16", "gw": "10.10.0.1"}, {"dst": "0.0.0.0/0"}],
            "enable_overlapping_ranges": False,
        },
    ),
    "host-local": (
        HL,
        {
            "type": "host-local",
            "ranges": [
                [
                    {
                        "subnet": "192.168.5.0/24",
                        "rangeStart": "192.168.5.10",
                        "rangeEnd": "192.168.5.20",
                        "gateway": "192.168.5.1",
                    }
                ]
            ],
            "routes": [{"dst": "0.0.0.0/0", "gw": "192.168.5.1"}],
        },
    ),
    "static": (
        STATIC,
        {
            "type": "static",
            "addresses": [
                {"address": "10.30.0.5/24", "gateway": "10.30.0.1"},
                {"address": "fd00::5/64"},
            ],
            "routes": [{"dst": "10.40.0.0/16"}],
        },
    ),
    "none": (None, None),
}


def spec_for(interface, ipam, **kw) -> nb.NADSpec:
    return nb.NADSpec(name="net-a", namespace="team-a", interface=interface, ipam=ipam, **kw)


def config_of(manifest: dict) -> dict:
    return json.loads(manifest["spec"]["config"])


@pytest.mark.parametrize("iface_key", INTERFACES)
@pytest.mark.parametrize("ipam_key", IPAMS)
def test_every_cni_and_ipam_type_builds_the_expected_config(iface_key, ipam_key):
    interface, expected_main = INTERFACES[iface_key]
    ipam, expected_ipam = IPAMS[ipam_key]
    manifest = nb.build_manifest(spec_for(interface, ipam))
    expected = {"cniVersion": "0.3.1", "name": "net-a", **expected_main}
    if expected_ipam is not None:
        expected["ipam"] = expected_ipam
    assert config_of(manifest) == expected
    parsed = parse_cni_config(manifest["spec"]["config"])
    assert parsed.problems == ()
    assert parsed.cni_type == interface.type
    assert parsed.ipam_type == ("" if ipam is None else ipam.type)


def test_whereabouts_section_parses_back_without_problems():
    config = config_of(nb.build_manifest(spec_for(nb.MacVlan(master="eth1"), WB)))
    wb = parse_whereabouts_ipam(config["ipam"])
    assert wb.problems == ()
    assert [r.cidr for r in wb.ranges] == ["10.10.0.0/24"]
    assert str(wb.gateway) == "10.10.0.1"
    assert wb.network_name == "blue"
    assert wb.enable_overlapping_ranges is False


def test_meta_plugins_make_a_conflist_with_the_interface_first():
    spec = spec_for(
        nb.IPVlan(master="eth1"), WB, meta_plugins=("portmap", "tuning", "sbr"), cni_version="1.0.0"
    )
    config = config_of(nb.build_manifest(spec))
    assert set(config) == {"cniVersion", "name", "plugins"}
    assert config["cniVersion"] == "1.0.0"
    assert [p["type"] for p in config["plugins"]] == ["ipvlan", "tuning", "sbr", "portmap"]
    assert config["plugins"][0]["ipam"]["type"] == "whereabouts"
    assert config["plugins"][3] == {"type": "portmap", "capabilities": {"portMappings": True}}
    parsed = parse_cni_config(json.dumps(config))
    assert parsed.is_conflist and parsed.problems == () and parsed.ipam_type == "whereabouts"


def test_mtu_goes_in_the_interface_plugin_when_it_takes_one():
    config = config_of(nb.build_manifest(spec_for(nb.MacVlan(master="eth1"), None, mtu=9000)))
    assert config["mtu"] == 9000 and "plugins" not in config


def test_mtu_for_sriov_and_host_device_is_set_by_a_chained_tuning_plugin():
    for interface in (nb.SRIOV(resource_name="intel.com/vf"), nb.HostDevice(device="ens2f0")):
        config = config_of(nb.build_manifest(spec_for(interface, None, mtu=1400)))
        assert config["plugins"][0].get("mtu") is None
        assert config["plugins"][1] == {"type": "tuning", "mtu": 1400}


def test_annotations_resource_name_and_node_selector():
    manifest = nb.build_manifest(
        spec_for(nb.SRIOV(resource_name="intel.com/vf"), None, node_selector="nic=fast")
    )
    assert manifest["metadata"] == {
        "name": "net-a",
        "namespace": "team-a",
        "annotations": {
            "k8s.v1.cni.cncf.io/resourceName": "intel.com/vf",
            "k8s.v1.cni.cncf.io/nodeSelector": "nic=fast",
        },
    }
    assert "resourceName" not in manifest["spec"]["config"]
    assert (
        "annotations"
        not in nb.build_manifest(spec_for(nb.MacVlan(master="eth1"), None))["metadata"]
    )


def test_manifest_yaml_and_kubectl_command_round_trip():
    manifest = nb.build_manifest(spec_for(nb.Bridge(bridge="br0"), WB))
    text = nb.manifest_yaml(manifest)
    assert yaml.safe_load(text) == manifest
    command = nb.kubectl_command(manifest)
    first, _, rest = command.partition("\n")
    assert first == "kubectl apply -f - <<'EOF'"
    body, _, tail = rest.rpartition("EOF\n")
    assert tail == ""
    assert yaml.safe_load(body) == manifest


def test_kubectl_heredoc_delimiter_never_appears_in_the_body():
    manifest = nb.build_manifest(spec_for(nb.MacVlan(master="eth1"), None))
    manifest["metadata"]["annotations"] = {"x": "a\nEOF\nb"}
    command = nb.kubectl_command(manifest)
    lines = command.splitlines()
    delimiter = lines[0].split("<<")[1].strip("'")
    assert lines.index(delimiter) == len(lines) - 1
    assert yaml.safe_load("\n".join(lines[1:-1])) == manifest


@settings(max_examples=200, deadline=None)
@given(
    master=st.text(max_size=30),
    range_text=st.text(max_size=40),
    gateway=st.text(max_size=20),
    network_name=st.text(max_size=20),
    exclude=st.lists(st.text(max_size=20), max_size=3),
)
def test_any_text_in_any_field_still_yields_valid_json(
    master, range_text, gateway, network_name, exclude
):
    """Comments, quotes or unquoted words typed into a field stay inside JSON strings."""
    ipam = nb.WhereaboutsIPAM(
        range=range_text, gateway=gateway, network_name=network_name, exclude=tuple(exclude)
    )
    manifest = nb.build_manifest(spec_for(nb.IPVlan(master=master), ipam))
    config = config_of(manifest)
    assert config.get("master", "") == master
    assert config["ipam"]["range"] == range_text
    assert not any(
        "not valid JSON" in p for p in parse_cni_config(manifest["spec"]["config"]).problems
    )


# --- checks -------------------------------------------------------------------------------


def test_valid_whereabouts_has_no_errors_and_no_warnings():
    checks = nb.check_whereabouts(
        nb.WhereaboutsIPAM(range="10.10.0.0/24", range_start="10.10.0.10", gateway="10.10.0.1")
    )
    assert checks.errors == {} and checks.warnings == {}


@pytest.mark.parametrize(
    ("ipam", "field", "words"),
    [
        (nb.WhereaboutsIPAM(range="SECONDARY_RANGE_NAME"), "range", "is not a CIDR"),
        (nb.WhereaboutsIPAM(range="10.10.0.0"), "range", "is not a CIDR"),
        (nb.WhereaboutsIPAM(range="10.10.0.0/33"), "range", "is not a CIDR"),
        (nb.WhereaboutsIPAM(range="10.10.0.0/31"), "range", "too small"),
        (
            nb.WhereaboutsIPAM(range="10.10.0.0/24", range_start="10.20.0.1"),
            "range_start",
            "outside the range",
        ),
        (
            nb.WhereaboutsIPAM(range="10.10.0.0/24", range_end="10.9.255.255"),
            "range_end",
            "outside the range",
        ),
        (
            nb.WhereaboutsIPAM(range="10.10.0.0/24", range_start="nope"),
            "range_start",
            "not an IP address",
        ),
        (
            nb.WhereaboutsIPAM(
                range="10.10.0.0/24", range_start="10.10.0.50", range_end="10.10.0.10"
            ),
            "range_end",
            "before range start",
        ),
        (
            nb.WhereaboutsIPAM(range="10.10.0.0/24", exclude=("banana",)),
            "exclude",
            "not a CIDR or an IP address",
        ),
        (
            nb.WhereaboutsIPAM(range="10.10.0.0/24", exclude=("fd00::/64",)),
            "exclude",
            "not the same IP family",
        ),
        (
            nb.WhereaboutsIPAM(range="10.10.0.0/24", gateway="10.10.0.x"),
            "gateway",
            "not an IP address",
        ),
        (
            nb.WhereaboutsIPAM(range="10.10.0.0/24", network_name="Blue Net"),
            "network_name",
            "lower-case",
        ),
        (
            nb.WhereaboutsIPAM(range="10.10.0.0/24", routes=(nb.Route("default"),)),
            "routes",
            "not a CIDR",
        ),
        (
            nb.WhereaboutsIPAM(range="10.10.0.0/24", exclude=("10.10.0.0/24",)),
            "range",
            "No address",
        ),
    ],
)
def test_whereabouts_errors_name_the_field(ipam, field, words):
    checks = nb.check_whereabouts(ipam)
    assert any(words in m for m in checks.errors.get(field, [])), checks.errors


def test_gateway_inside_the_allocatable_range_is_a_warning_not_an_error():
    checks = nb.check_whereabouts(
        nb.WhereaboutsIPAM(
            range="192.168.20.0/24", range_start="192.168.20.1", gateway="192.168.20.1"
        )
    )
    assert checks.errors == {}
    assert "inside the allocatable range" in checks.warnings["gateway"][0]


@pytest.mark.parametrize(
    "ipam",
    [
        nb.WhereaboutsIPAM(
            range="192.168.20.0/24", range_start="192.168.20.10", gateway="192.168.20.1"
        ),
        nb.WhereaboutsIPAM(
            range="192.168.20.0/24", exclude=("192.168.20.1/32",), gateway="192.168.20.1"
        ),
        nb.WhereaboutsIPAM(
            range="192.168.20.0/24", exclude=("192.168.20.1",), gateway="192.168.20.1"
        ),
    ],
)
def test_gateway_outside_start_or_excluded_is_fine(ipam):
    assert nb.check_whereabouts(ipam).warnings == {}


@pytest.mark.parametrize(
    ("ipam", "field", "words"),
    [
        (nb.HostLocalIPAM(subnet="10.1.0.0"), "subnet", "is not a CIDR"),
        (
            nb.HostLocalIPAM(subnet="10.1.0.0/24", range_start="10.2.0.1"),
            "range_start",
            "outside the range",
        ),
        (
            nb.HostLocalIPAM(subnet="10.1.0.0/24", range_end="10.2.0.1"),
            "range_end",
            "outside the range",
        ),
        (
            nb.HostLocalIPAM(subnet="10.1.0.0/24", range_start="10.1.0.9", range_end="10.1.0.2"),
            "range_end",
            "before range start",
        ),
        (
            nb.HostLocalIPAM(subnet="10.1.0.0/24", gateway="10.2.0.1"),
            "gateway",
            "outside the range",
        ),
        (
            nb.HostLocalIPAM(subnet="10.1.0.0/24", routes=(nb.Route("10.0.0.0/8", "gw"),)),
            "routes",
            "not an IP address",
        ),
    ],
)
def test_host_local_errors(ipam, field, words):
    checks = nb.check_host_local(ipam)
    assert any(words in m for m in checks.errors.get(field, [])), checks.errors


@pytest.mark.parametrize(
    ("ipam", "words"),
    [
        (nb.StaticIPAM(addresses=()), "at least one address"),
        (nb.StaticIPAM(addresses=(nb.StaticAddress("10.1.0.5"),)), "not an address with a prefix"),
        (
            nb.StaticIPAM(addresses=(nb.StaticAddress("10.1.0.5/24", "10.9.0.1"),)),
            "outside the range",
        ),
    ],
)
def test_static_errors(ipam, words):
    checks = nb.check_static(ipam)
    assert any(words in m for m in checks.errors.get("addresses", [])), checks.errors


def test_dns1123_label():
    assert nb.is_dns1123_label("macvlan-conf")
    assert not nb.is_dns1123_label("Macvlan")
    assert not nb.is_dns1123_label("-a")
    assert not nb.is_dns1123_label("a" * 64)
    assert not nb.is_dns1123_label("a.b")


# --- ranges whereabouts cannot sensibly serve (issue 13) -----------------------------------


@pytest.mark.parametrize(
    ("cidr", "words"),
    [
        ("0.0.0.0/0", "one IPPool object must hold every allocation"),
        ("10.0.0.0/7", "Use a /8 or narrower range"),
        ("::/0", "64-bit signed offsets"),
        ("fd00::/63", "Use a /64 or narrower range"),
    ],
)
def test_too_wide_ranges_are_refused_with_the_reason(cidr, words):
    from ippam.nadbuilder import WhereaboutsIPAM, check_whereabouts

    (message,) = check_whereabouts(WhereaboutsIPAM(range=cidr)).errors["range"]
    assert "is too large" in message and words in message


def test_the_widest_accepted_ranges():
    from ippam.nadbuilder import WhereaboutsIPAM, check_whereabouts

    assert check_whereabouts(WhereaboutsIPAM(range="10.0.0.0/8")).errors == {}
    assert check_whereabouts(WhereaboutsIPAM(range="fd00::/64")).errors == {}


# --- what whereabouts would misread or ignore ----------------------------------------------


def test_exclude_entries_outside_the_range_are_one_warning_with_the_reason():
    checks = nb.check_whereabouts(
        nb.WhereaboutsIPAM(range="10.71.0.0/24", exclude=("10.99.0.0/28", "192.168.1.1"))
    )
    assert checks.errors == {}
    assert checks.warnings == {
        "exclude": [
            "Exclude entries 10.99.0.0/28 and 192.168.1.1 are outside the range 10.71.0.0/24: "
            "whereabouts only skips excluded addresses of the range, so they change nothing. "
            "Check for a typo, or remove them."
        ]
    }


def test_exclude_entries_outside_start_and_end_are_one_warning_of_their_own():
    checks = nb.check_whereabouts(
        nb.WhereaboutsIPAM(
            range="10.71.0.0/24",
            range_start="10.71.0.10",
            range_end="10.71.0.100",
            exclude=("10.71.0.1", "10.71.0.200/30", "10.71.0.50", "10.99.0.1"),
        )
    )
    assert checks.errors == {}
    outside, beyond = checks.warnings["exclude"]
    assert outside.startswith("Exclude entry 10.99.0.1 is outside the range 10.71.0.0/24")
    assert beyond.startswith(
        "Exclude entries 10.71.0.1 and 10.71.0.200/30 are outside range start and end "
        "(10.71.0.10–10.71.0.100): whereabouts never hands out addresses there anyway"
    )


def test_an_exclude_entry_overlapping_the_range_is_not_outside_it():
    checks = nb.check_whereabouts(
        nb.WhereaboutsIPAM(range="10.71.0.0/24", exclude=("10.71.0.0/28", "10.70.0.0/15"))
    )
    assert "exclude" not in checks.warnings


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("10.5.0.010", "leading zero"),
        ("010.5.0.0/28", "leading zero"),
        ("10.5.0.1 /32", "space"),
        ("10.5.0.1 10.5.0.2", "space"),
        ("10.5.0.0/ 28", "space"),
        ("banana", "not a CIDR or an IP address"),
    ],
)
def test_an_exclude_entry_whereabouts_cannot_parse_is_an_error_saying_why(entry, why):
    """whereabouts' allocator parses every exclude entry strictly at each ADD: one it
    cannot parse fails every allocation from the range."""
    checks = nb.check_whereabouts(nb.WhereaboutsIPAM(range="10.5.0.0/24", exclude=(entry,)))
    (message,) = checks.errors["exclude"]
    assert f"'{entry}'" in message and why in message
    assert "fail every allocation from this range" in message


@pytest.mark.parametrize(
    ("field", "words"),
    [
        ("range", "refuses a range"),
        ("range_start", "silently ignores a range_start"),
        ("range_end", "silently ignores a range_end"),
        ("gateway", "no usable gateway"),
    ],
)
def test_a_padded_value_is_refused_with_what_whereabouts_would_do(field, words):
    values = {"range": "10.5.0.0/24", "range_start": "10.5.0.10", "range_end": "10.5.0.20"}
    values["gateway"] = "10.5.0.1"
    values[field] = f" {values[field]}"
    checks = nb.check_whereabouts(nb.WhereaboutsIPAM(**values))
    (message,) = checks.errors[field]
    assert "has a space in it" in message and words in message


@pytest.mark.parametrize("gateway", ["10.72.0.1", "fd00::1"])
def test_a_gateway_outside_the_range_is_an_error(gateway):
    checks = nb.check_whereabouts(nb.WhereaboutsIPAM(range="10.71.0.0/24", gateway=gateway))
    (message,) = checks.errors["gateway"]
    assert f"Gateway {gateway} is outside the range 10.71.0.0/24" in message
    assert "gateway" not in checks.warnings


@pytest.mark.parametrize(
    "field, value",
    [("range", "::ffff:10.71.0.0/120"), ("gateway", "::ffff:10.71.0.1")],
)
def test_ipv4_mapped_text_is_refused_with_the_ipv4_reading(field, value):
    """Go (so whereabouts) reads ::ffff:a.b.c.d as IPv4; netaddr would preview an IPv6 range."""
    ipam = nb.WhereaboutsIPAM(**{"range": "10.71.0.0/24", field: value})
    (message,) = nb.check_whereabouts(ipam).errors[field]
    assert "whereabouts reads it as IPv4" in message


def test_every_field_is_checked_whatever_the_others_hold():
    """A bad range does not hide a bad start, exclude, gateway, network name or route."""
    checks = nb.check_whereabouts(
        nb.WhereaboutsIPAM(
            range="10.71.0.0/33",
            range_start="x",
            range_end="10.71.0.010",
            exclude=("10.71.0.010",),
            gateway="gw",
            network_name="Blue Net",
            routes=(nb.Route("default"),),
        )
    )
    assert set(checks.errors) == {
        "range",
        "range_start",
        "range_end",
        "exclude",
        "gateway",
        "network_name",
        "routes",
    }


def test_an_empty_range_is_said_once():
    checks = nb.check_whereabouts(nb.WhereaboutsIPAM(range="", gateway="10.0.0.1"))
    assert checks.errors == {"range": ["Whereabouts needs a range, e.g. 10.10.0.0/24."]}


def test_a_bad_exclude_does_not_hide_the_gateway_warning():
    checks = nb.check_whereabouts(
        nb.WhereaboutsIPAM(range="10.71.0.0/24", exclude=("10.71.0.01",), gateway="10.71.0.1")
    )
    assert list(checks.errors) == ["exclude"]
    assert "inside the allocatable range" in checks.warnings["gateway"][0]
