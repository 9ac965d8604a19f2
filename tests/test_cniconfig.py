"""NetworkAttachmentDefinition spec.config parsing (pure, no DB)."""

from __future__ import annotations

import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from ippam.cniconfig import parse_cni_config

# Seed 000/001 (GKE, ipvlan): a conflist whose range is an unreplaced, unquoted placeholder.
# YAML folds the single-quoted scalar onto one line, as the cluster stores it.
SEED_GKE_IPVLAN = (
    '{ "cniVersion": "0.3.1", "plugins": [ { "type": "ipvlan", "master": "eth1", '
    '"mode": "l2", "ipam": { "type": "whereabouts", "range": SECONDARY_RANGE_NAME } } ] }'
)

# Seed 002 (Tanzu): macvlan conflist with whereabouts.
SEED_TANZU_MACVLAN = """{
"cniVersion": "0.3.1",
"plugins": [
{
"type": "macvlan",
"capabilities": { "ips": true },
"master": "eth0",
"mode": "bridge",
"ipam": {
"type": "whereabouts",
"range": "192.168.20.0/24",
"range_start": "192.168.20.10",
"range_end": "192.168.20.100",
"gateway": "192.168.20.1"
}
} ]
}"""

# Seed 003: flannel NAD with a "#" comment after a value.
SEED_FLANNEL_COMMENT = """{
      "cniVersion": "0.3.0",
      "type": "flannel",
      "delegate": {
        "hairpinMode": true,
        "isDefaultGateway": false\t#set to false, or flannel adds a default route
      }
    }"""

# Seed 004 (GKE on VMware): single config with a "#" comment after "master".
SEED_VMWARE_IPVLAN_COMMENT = """{
  "cniVersion":"0.3.0",
  "type": "ipvlan",
  "master": "ens224", # defines the node interface that this Pod interface would map to
  "mode": "l2",
  "ipam": {
    "type": "whereabouts",
    "range": "172.16.0.0/24"
   }
}"""


def test_seed_tanzu_macvlan_conflist():
    config = parse_cni_config(SEED_TANZU_MACVLAN)
    assert config.problems == ()
    assert config.is_conflist and not config.on_node
    assert config.cni_version == "0.3.1"
    assert (config.cni_type, config.master, config.mode) == ("macvlan", "eth0", "bridge")
    assert config.ipam_type == "whereabouts"
    assert config.ipam is not None and config.ipam["range"] == "192.168.20.0/24"
    assert len(config.plugins) == 1


def test_seed_unquoted_placeholder_says_where_and_why():
    config = parse_cni_config(SEED_GKE_IPVLAN)
    assert config.config is None and not config.on_node
    (problem,) = config.problems
    assert "line 1, column" in problem
    assert "unquoted value 'SECONDARY_RANGE_NAME'" in problem
    assert config.raw == SEED_GKE_IPVLAN


def test_seed_flannel_hash_comment_is_named():
    (problem,) = parse_cni_config(SEED_FLANNEL_COMMENT).problems
    assert "line 6" in problem
    assert "comment" in problem


def test_seed_vmware_hash_comment_is_named():
    (problem,) = parse_cni_config(SEED_VMWARE_IPVLAN_COMMENT).problems
    assert "line 4" in problem
    assert "comment" in problem


def test_seed_vmware_without_comment_is_a_single_config():
    fixed = SEED_VMWARE_IPVLAN_COMMENT.replace(
        " # defines the node interface that this Pod interface would map to", ""
    )
    config = parse_cni_config(fixed)
    assert config.problems == ()
    assert not config.is_conflist
    assert (config.cni_type, config.master, config.mode) == ("ipvlan", "ens224", "l2")
    assert config.plugins == (config.config,)
    assert config.ipam_type == "whereabouts"


def test_empty_config_lives_on_the_node():
    for raw in ("", "   \n"):
        config = parse_cni_config(raw)
        assert config.on_node
        assert config.problems == ()
        assert config.config is None


def test_missing_type_is_a_problem():
    config = parse_cni_config('{"cniVersion": "0.3.1", "name": "x", "master": "eth0"}')
    assert config.problems == ("config has no type",)


def test_unknown_type_is_a_problem():
    config = parse_cni_config('{"cniVersion": "0.3.1", "type": "macvlanx"}')
    assert config.problems == ("config has unknown plugin type 'macvlanx'",)


def test_sriov_without_master_and_resource_name_hint():
    config = parse_cni_config(
        '{"cniVersion": "0.3.1", "type": "sriov", "vlan": 100,'
        ' "ipam": {"type": "whereabouts", "range": "10.56.217.0/24"}}'
    )
    assert config.problems == ()
    assert config.master == ""
    bad = parse_cni_config('{"type": "sriov", "resourceName": "intel.com/sriov"}')
    assert any("k8s.v1.cni.cncf.io/resourceName" in p for p in bad.problems)


def test_ipam_read_from_plugins_zero_only():
    raw = json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": "chain",
            "plugins": [
                {"type": "bridge", "ipam": {"type": "host-local"}},
                {"type": "tuning", "ipam": {"type": "whereabouts", "range": "10.0.0.0/24"}},
            ],
        }
    )
    config = parse_cni_config(raw)
    assert config.name == "chain"
    assert config.ipam_type == "host-local"
    assert any("only read IPAM from plugins[0]" in p for p in config.problems)


def test_conflist_chained_plugins_kept():
    raw = json.dumps(
        {
            "cniVersion": "0.4.0",
            "plugins": [{"type": "macvlan"}, {"type": "tuning"}, {"type": "sbr"}],
        }
    )
    config = parse_cni_config(raw)
    assert [p["type"] for p in config.plugins] == ["macvlan", "tuning", "sbr"]
    assert config.ipam is None and config.ipam_type == ""


def test_valid_json_but_not_an_object():
    assert parse_cni_config("[1, 2]").problems == ("config is valid JSON but not an object",)


def test_invalid_json_without_obvious_cause_still_says_where():
    (problem,) = parse_cni_config('{"type": "macvlan",,}').problems
    assert "line 1, column" in problem
    assert "comment" not in problem


def test_bad_plugins_and_ipam_shapes():
    assert "plugins is empty" in parse_cni_config('{"plugins": []}').problems[0]
    assert "plugins is not a list" in parse_cni_config('{"plugins": {}}').problems[0]
    assert (
        "ipam is not a JSON object" in parse_cni_config('{"type": "macvlan", "ipam": 1}').problems
    )


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["type", "plugins", "ipam", "master", "mode", "cniVersion", "name"])
            | st.text(max_size=8),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_never_raises_on_text(raw):
    config = parse_cni_config(raw)
    assert config.raw == raw


@settings(max_examples=100, deadline=None)
@given(_json)
def test_never_raises_on_json_values(value):
    parse_cni_config(json.dumps(value))


def test_never_raises_on_deep_nesting():
    assert parse_cni_config("[" * 100_000 + "]" * 100_000).problems


def test_unquoted_cidr_value_is_named():
    (problem,) = parse_cni_config('{"ipam": {"range": 10.0.0.0/24}}').problems
    assert "unquoted value '10.0.0.0/24'" in problem


def test_python_literals_and_single_quotes_are_named():
    assert "JSON spells it true" in parse_cni_config('{"a": True}').problems[0]
    assert "single quotes" in parse_cni_config("{'type': 'macvlan'}").problems[0]
    assert "unquoted key 'type'" in parse_cni_config("{type: 1}").problems[0]


def test_ipam_keys_match_case_insensitively_as_in_go():
    # encoding/json fills types.Net.IPAM from "IPAM" and IPAMConfig.Type from "Type".
    config = parse_cni_config(
        '{"type": "macvlan", "IPAM": {"Type": "whereabouts", "range": "10.0.0.0/24"}}'
    )
    assert config.ipam_type == "whereabouts"
    assert config.ipam is not None and config.ipam["range"] == "10.0.0.0/24"


def test_nan_and_infinity_are_not_json():
    # Python's json module takes them; Go's decoder (Multus, whereabouts) does not.
    for raw in ('{"type": "macvlan", "mtu": NaN}', '{"type": "macvlan", "mtu": -Infinity}'):
        config = parse_cni_config(raw)
        assert config.config is None
        assert config.problems[0].startswith("config is not valid JSON")


def test_a_lone_surrogate_escape_is_read_as_go_reads_it():
    # Go's decoder turns "\ud800" without its pair into U+FFFD; Python's keeps a surrogate
    # that no UTF-8 writer (orjson, PostgreSQL) takes.
    config = parse_cni_config(
        r'{"type": "macvlan", "ipam": {"type": "whereabouts", "range": "\ud800"}}'
    )
    assert config.ipam is not None and config.ipam["range"] == "\ufffd"
    orjson.dumps(config.config)
    pair = parse_cni_config(r'{"type": "macvlan", "name": "\ud83d\ude00"}')
    assert pair.name == "\U0001f600"


def test_a_repeated_key_keeps_every_value_for_the_go_reading():
    # Go's decoder reads each occurrence in turn (a wrong type in an earlier one still fails
    # it); Python's json keeps only the last, so the object keeps its pairs.
    config = parse_cni_config(
        '{"type": "macvlan", "ipam": {"type": "whereabouts", "range_start": 5, "range_start": "10.0.0.3"}}'
    )
    assert config.ipam is not None and config.ipam["range_start"] == "10.0.0.3"
    assert config.ipam.pairs[1:] == [("range_start", 5), ("range_start", "10.0.0.3")]
    assert orjson.loads(orjson.dumps(config.config))["ipam"]["range_start"] == "10.0.0.3"
