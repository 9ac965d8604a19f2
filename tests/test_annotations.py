"""Multus network-status and networks annotations (pure, no DB)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from netaddr import IPAddress

from ippam.annotations import (
    LEGACY_NETWORK_STATUS_ANNOTATION,
    NETWORK_STATUS_ANNOTATION,
    NetworkSelection,
    parse_network_status,
    parse_networks,
    pod_network_status,
)

# Seed 000 (GKE, ipvlan + whereabouts): default network named, "<nil>" gateway.
SEED_GKE_STATUS = """[{
    "name": "gke-pod-network",
    "interface": "eth0",
    "ips": [
      "10.104.3.4"
    ],
    "mac": "ea:e2:f6:ce:18:b5",
    "default": true,
    "dns": {},
    "gateway": [
      "\\u003cnil\\u003e"
    ]
  },{
    "name": "default/my-nad",
    "interface": "net1",
    "ips": [
      "10.200.1.1"
    ],
    "mac": "42:01:64:c8:c8:07",
    "dns": {}
  }]"""

# Seed 002 (Tanzu, macvlan-conf): default network with an empty name.
SEED_TANZU_STATUS = """[{
"name": "",
"interface": "eth0",
"ips": [
"100.96.1.80"
],
"mac": "66:39:dc:63:50:a3",
"default": true,
"dns": {}
},{
"name": "default/macvlan-conf",
"interface": "net1",
"ips": [
"192.168.20.11"
],
"mac": "02:77:cb:a0:60:e3",
"dns": {}
}]"""


def test_seed_gke_network_status():
    entries, problems = parse_network_status(SEED_GKE_STATUS)
    assert problems == []
    default, attachment = entries
    assert default.default and default.nad_ref is None
    assert default.gateway == ()  # Multus' "<nil>" means no gateway
    assert attachment.nad_ref == ("default", "my-nad")
    assert attachment.interface == "net1"
    assert attachment.ips == (IPAddress("10.200.1.1"),)
    assert attachment.mac == "42:01:64:c8:c8:07"
    assert attachment.default is False
    assert attachment.mtu is None and attachment.device_info is None


def test_seed_tanzu_network_status_with_empty_default_name():
    entries, problems = parse_network_status(SEED_TANZU_STATUS)
    assert problems == []
    assert [e.name for e in entries] == ["", "default/macvlan-conf"]
    assert entries[1].nad_ref == ("default", "macvlan-conf")
    assert entries[1].ips == (IPAddress("192.168.20.11"),)


def test_ips_with_prefix_dual_stack_mtu_and_device_info():
    raw = json.dumps(
        [
            {
                "name": "sriov/net-a",
                "interface": "net1",
                "ips": ["10.56.217.5/24", "fd00::5/64"],
                "mtu": 9000,
                "gateway": ["10.56.217.1"],
                "device-info": {
                    "type": "pci",
                    "version": "1.1.0",
                    "pci": {"pci-address": "0000:18:02.5"},
                },
            }
        ]
    )
    (entry,), problems = parse_network_status(raw)
    assert problems == []
    assert entry.ips == (IPAddress("10.56.217.5"), IPAddress("fd00::5"))
    assert entry.mtu == 9000
    assert entry.gateway == ("10.56.217.1",)
    assert entry.device_info is not None and entry.device_info["type"] == "pci"


def test_same_nad_twice_is_kept():
    raw = json.dumps(
        [
            {"name": "ns/a", "interface": "net1", "ips": ["10.0.0.2"]},
            {"name": "ns/a", "interface": "net2", "ips": ["10.0.0.3"]},
        ]
    )
    entries, _ = parse_network_status(raw)
    assert [(e.name, e.interface) for e in entries] == [("ns/a", "net1"), ("ns/a", "net2")]


def test_bad_entries_are_skipped_with_problems():
    raw = json.dumps([42, {"name": 7}, {"name": "ns/a", "ips": ["nope", "10.0.0.9"]}])
    entries, problems = parse_network_status(raw)
    assert [e.name for e in entries] == ["ns/a"]
    assert entries[0].ips == (IPAddress("10.0.0.9"),)
    assert len(problems) == 3
    assert "'nope' is not an IP address" in problems[2]


def test_invalid_json_and_empty():
    assert parse_network_status("") == ([], [])
    entries, problems = parse_network_status("[{")
    assert entries == [] and "not valid JSON" in problems[0] and "line 1" in problems[0]
    assert parse_network_status('"x"')[1] == ["network-status is not a JSON array"]


def test_nad_ref_only_for_namespaced_names():
    raw = json.dumps([{"name": "a/b"}, {"name": "b"}, {"name": "/b"}, {"name": "a/b/c"}])
    entries, _ = parse_network_status(raw)
    assert [e.nad_ref for e in entries] == [("a", "b"), None, None, None]


def test_pod_network_status_falls_back_to_legacy_annotation():
    new = json.dumps([{"name": "ns/new", "ips": ["10.0.0.1"]}])
    old = json.dumps([{"name": "ns/old", "ips": ["10.0.0.2"]}])
    both = {NETWORK_STATUS_ANNOTATION: new, LEGACY_NETWORK_STATUS_ANNOTATION: old}
    assert [e.name for e in pod_network_status(both)[0]] == ["ns/new"]
    legacy = {LEGACY_NETWORK_STATUS_ANNOTATION: old}
    assert [e.name for e in pod_network_status(legacy)[0]] == ["ns/old"]
    assert pod_network_status({}) == ([], [])


def test_networks_comma_list_from_seeds():
    # Seed 004: two NADs in the default namespace; seed 002: bare name.
    selections, problems = parse_networks("default/gke-network-1,default/gke-network-2", "x")
    assert problems == []
    assert [(s.namespace, s.name) for s in selections] == [
        ("default", "gke-network-1"),
        ("default", "gke-network-2"),
    ]
    (selection,), _ = parse_networks("macvlan-conf", "default")
    assert selection == NetworkSelection("default", "macvlan-conf", "", (), "", ())


def test_networks_comma_list_with_interfaces_and_spaces():
    selections, problems = parse_networks(" a@net5 , other/b ", "pod-ns")
    assert problems == []
    assert selections == [
        NetworkSelection("pod-ns", "a", "net5"),
        NetworkSelection("other", "b", ""),
    ]


def test_networks_invalid_items_are_problems():
    selections, problems = parse_networks("default/NAD_NAME,ok,a/b/c", "ns")
    assert [s.name for s in selections] == ["ok"]
    assert len(problems) == 2
    assert "DNS-1123" in problems[0]


def test_networks_json_list():
    raw = json.dumps(
        [
            {
                "name": "macvlan-conf",
                "interface": "net1",
                "ips": ["192.168.20.50/24"],
                "mac": "c2:b0:57:49:47:f1",
                "default-route": ["192.168.20.1"],
            },
            {"name": "sriov", "namespace": "infra"},
        ]
    )
    selections, problems = parse_networks(raw, "default")
    assert problems == []
    assert selections == [
        NetworkSelection(
            "default",
            "macvlan-conf",
            "net1",
            ("192.168.20.50/24",),
            "c2:b0:57:49:47:f1",
            ("192.168.20.1",),
        ),
        NetworkSelection("infra", "sriov"),
    ]


def test_networks_json_bad_entries_and_invalid_json():
    selections, problems = parse_networks('[{"name": "a"}, {"namespace": "x"}, 3]', "ns")
    assert [s.name for s in selections] == ["a"]
    assert len(problems) == 2
    assert "not valid JSON" in parse_networks('[{"name": a}]', "ns")[1][0]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=15),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "interface",
                    "ips",
                    "mac",
                    "default",
                    "dns",
                    "gateway",
                    "mtu",
                    "device-info",
                    "namespace",
                    "default-route",
                ]
            )
            | st.text(max_size=8),
            children,
            max_size=6,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_parsers_never_raise_on_text(raw):
    parse_network_status(raw)
    parse_networks(raw, "ns")
    pod_network_status({NETWORK_STATUS_ANNOTATION: raw})


@settings(max_examples=100, deadline=None)
@given(_json)
def test_parsers_never_raise_on_json_values(value):
    raw = json.dumps(value)
    parse_network_status(raw)
    parse_networks(raw, "ns")
