"""The NAD form: every CNI and IPAM type, every validation message, the JSON it produces."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from dashboard.forms import NADForm, nad_namespaces
from ippam.cniconfig import parse_cni_config
from ippam.whereabouts import parse_whereabouts_ipam
from tests.factories import make_cluster, make_nad, make_pool

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def cluster():
    return make_cluster("prod")


def form_data(cluster, **over) -> dict:
    data = {
        "cluster": str(cluster.pk),
        "namespace": "default",
        "name": "data-net",
        "cni_version": "0.3.1",
        "cni_type": "macvlan",
        "macvlan_master": "eth1",
        "macvlan_mode": "bridge",
        "ipam_type": "whereabouts",
        "wb_range": "10.50.0.0/24",
        "wb_enable_overlapping_ranges": "on",
    }
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


def valid_form(data) -> NADForm:
    form = NADForm(data)
    assert form.is_valid(), form.errors
    return form


def config_of(form: NADForm) -> dict:
    raw = form.manifest["spec"]["config"]
    parsed = parse_cni_config(raw)
    assert parsed.problems == ()
    return json.loads(raw)


def errors_of(data, field) -> list[str]:
    form = NADForm(data)
    assert not form.is_valid()
    return form.errors.get(field, [])


# --- every CNI type ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"cni_type": "ipvlan", "ipvlan_master": "eth2", "ipvlan_mode": "l3"},
            {"type": "ipvlan", "master": "eth2", "mode": "l3"},
        ),
        (
            {"cni_type": "macvlan", "macvlan_master": "ens3", "macvlan_mode": "passthru"},
            {"type": "macvlan", "master": "ens3", "mode": "passthru"},
        ),
        (
            {
                "cni_type": "bridge",
                "bridge_name": "br-data",
                "bridge_is_gateway": "on",
                "bridge_ip_masq": "on",
                "bridge_vlan": "200",
            },
            {"type": "bridge", "bridge": "br-data", "isGateway": True, "ipMasq": True, "vlan": 200},
        ),
        (
            {"cni_type": "bridge", "bridge_name": "cni0"},
            {"type": "bridge", "bridge": "cni0", "isGateway": False, "ipMasq": False},
        ),
        (
            {"cni_type": "host-device", "hostdevice_device": "ens2f0"},
            {"type": "host-device", "device": "ens2f0"},
        ),
        (
            {"cni_type": "host-device", "hostdevice_pci": "0000:3b:00.1"},
            {"type": "host-device", "pciBusID": "0000:3b:00.1"},
        ),
        (
            {
                "cni_type": "sriov",
                "sriov_resource_name": "intel.com/sriov_netdevice",
                "sriov_vlan": "7",
            },
            {"type": "sriov", "vlan": 7},
        ),
    ],
)
def test_each_cni_type_produces_its_own_fields_only(cluster, fields, expected):
    data = form_data(cluster, macvlan_master=None, macvlan_mode=None)
    form = valid_form({**data, **fields})
    config = config_of(form)
    ipam = config.pop("ipam")
    assert config == {"cniVersion": "0.3.1", "name": "data-net", **expected}
    assert ipam == {
        "type": "whereabouts",
        "range": "10.50.0.0/24",
        "enable_overlapping_ranges": True,
    }


def test_fields_of_other_cni_types_are_ignored(cluster):
    form = valid_form(
        form_data(cluster, ipvlan_master="eth9", bridge_name="br9", sriov_resource_name="x.io/y")
    )
    config = config_of(form)
    assert config["type"] == "macvlan" and config["master"] == "eth1"
    assert "annotations" not in form.manifest["metadata"]


def test_sriov_resource_name_goes_to_the_annotation(cluster):
    form = valid_form(form_data(cluster, cni_type="sriov", sriov_resource_name="intel.com/vf"))
    assert form.manifest["metadata"]["annotations"] == {
        "k8s.v1.cni.cncf.io/resourceName": "intel.com/vf"
    }
    assert "resourceName" not in config_of(form)


# --- every IPAM type -----------------------------------------------------------------------


def test_whereabouts_with_every_field(cluster):
    form = valid_form(
        form_data(
            cluster,
            wb_range="10.50.0.0/24",
            wb_range_start="10.50.0.10",
            wb_range_end="10.50.0.250",
            wb_exclude="10.50.0.128/28\n10.50.0.200",
            wb_gateway="10.50.0.1",
            wb_network_name="blue",
            wb_routes="10.60.0.0/16 10.50.0.1\n0.0.0.0/0",
            wb_enable_overlapping_ranges=None,
        )
    )
    ipam = config_of(form)["ipam"]
    assert ipam == {
        "type": "whereabouts",
        "range": "10.50.0.0/24",
        "range_start": "10.50.0.10",
        "range_end": "10.50.0.250",
        "exclude": ["10.50.0.128/28", "10.50.0.200"],
        "gateway": "10.50.0.1",
        "network_name": "blue",
        "routes": [{"dst": "10.60.0.0/16", "gw": "10.50.0.1"}, {"dst": "0.0.0.0/0"}],
        "enable_overlapping_ranges": False,
    }
    assert parse_whereabouts_ipam(ipam).problems == ()
    assert form.warnings == {}


def test_host_local(cluster):
    form = valid_form(
        form_data(
            cluster,
            ipam_type="host-local",
            wb_range=None,
            hl_subnet="192.168.7.0/24",
            hl_range_start="192.168.7.100",
            hl_range_end="192.168.7.150",
            hl_gateway="192.168.7.1",
            hl_routes="0.0.0.0/0 via 192.168.7.1",
        )
    )
    assert config_of(form)["ipam"] == {
        "type": "host-local",
        "ranges": [
            [
                {
                    "subnet": "192.168.7.0/24",
                    "rangeStart": "192.168.7.100",
                    "rangeEnd": "192.168.7.150",
                    "gateway": "192.168.7.1",
                }
            ]
        ],
        "routes": [{"dst": "0.0.0.0/0", "gw": "192.168.7.1"}],
    }


def test_static(cluster):
    form = valid_form(
        form_data(
            cluster,
            ipam_type="static",
            wb_range=None,
            static_addresses="10.9.0.5/24 10.9.0.1\nfd00::5/64",
            static_routes="10.10.0.0/16",
        )
    )
    assert config_of(form)["ipam"] == {
        "type": "static",
        "addresses": [{"address": "10.9.0.5/24", "gateway": "10.9.0.1"}, {"address": "fd00::5/64"}],
        "routes": [{"dst": "10.10.0.0/16"}],
    }


def test_no_ipam(cluster):
    form = valid_form(form_data(cluster, ipam_type="none", wb_range=None))
    assert "ipam" not in config_of(form)


# --- options -------------------------------------------------------------------------------


def test_chained_plugins_make_a_conflist(cluster):
    data = form_data(cluster, cni_version="1.0.0", mtu="9000")
    data["meta_plugins"] = ["tuning", "portmap", "sbr"]
    config = config_of(valid_form(data))
    assert config["cniVersion"] == "1.0.0"
    assert [p["type"] for p in config["plugins"]] == ["macvlan", "tuning", "sbr", "portmap"]
    assert config["plugins"][0]["mtu"] == 9000
    assert config["plugins"][0]["ipam"]["type"] == "whereabouts"


@pytest.mark.parametrize("version", ["0.3.1", "0.4.0", "1.0.0"])
def test_cni_versions_offered(cluster, version):
    assert config_of(valid_form(form_data(cluster, cni_version=version)))["cniVersion"] == version


def test_cni_version_default_is_0_3_1():
    assert NADForm().fields["cni_version"].initial == "0.3.1"


def test_node_selector_annotation(cluster):
    form = valid_form(form_data(cluster, node_selector=" nic-type = fast "))
    assert form.manifest["metadata"]["annotations"] == {
        "k8s.v1.cni.cncf.io/nodeSelector": "nic-type=fast"
    }


def test_manifest_is_what_the_preview_yaml_says(cluster):
    from ippam.nadbuilder import manifest_yaml

    form = valid_form(form_data(cluster))
    assert yaml.safe_load(manifest_yaml(form.manifest)) == form.manifest
    assert form.manifest["apiVersion"] == "k8s.cni.cncf.io/v1"
    assert form.manifest["kind"] == "NetworkAttachmentDefinition"
    assert form.manifest["metadata"] == {"name": "data-net", "namespace": "default"}


# --- validation messages -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("over", "field", "words"),
    [
        ({"name": "Data_Net"}, "name", "is not a valid name"),
        ({"name": "-net"}, "name", "is not a valid name"),
        ({"name": ""}, "name", "required"),
        ({"namespace": "not-allowed-ns"}, "namespace", "not one of the available choices"),
        ({"wb_range": ""}, "wb_range", "needs a range"),
        ({"wb_range": "10.50.0.0"}, "wb_range", "is not a CIDR"),
        ({"wb_range": "SECONDARY_RANGE_NAME"}, "wb_range", "is not a CIDR"),
        ({"wb_range_start": "10.51.0.1"}, "wb_range_start", "outside the range 10.50.0.0/24"),
        ({"wb_range_end": "10.49.0.1"}, "wb_range_end", "outside the range 10.50.0.0/24"),
        (
            {"wb_range_start": "10.50.0.100", "wb_range_end": "10.50.0.10"},
            "wb_range_end",
            "before range start",
        ),
        ({"wb_exclude": "ten"}, "wb_exclude", "not a CIDR or an IP address"),
        ({"wb_gateway": "gw"}, "wb_gateway", "not an IP address"),
        ({"wb_network_name": "Blue!"}, "wb_network_name", "lower-case"),
        ({"wb_routes": "default via 10.50.0.1"}, "wb_routes", "not a CIDR"),
        ({"wb_routes": "10.0.0.0/8 a b"}, "wb_routes", "destination [gateway]"),
        (
            {"macvlan_master": 'ens224", # defines the node interface'},
            "macvlan_master",
            "not a network interface name",
        ),
        ({"macvlan_master": "eth 1"}, "macvlan_master", "not a network interface name"),
        (
            {"cni_type": "ipvlan", "ipvlan_master": "a/b"},
            "ipvlan_master",
            "not a network interface name",
        ),
        ({"cni_type": "bridge", "bridge_name": ""}, "bridge_name", "Name the bridge"),
        (
            {"cni_type": "bridge", "bridge_name": "br0", "bridge_vlan": "5000"},
            "bridge_vlan",
            "less than or equal to 4094",
        ),
        ({"cni_type": "host-device"}, "hostdevice_device", "exactly one"),
        (
            {
                "cni_type": "host-device",
                "hostdevice_device": "ens1",
                "hostdevice_pci": "0000:3b:00.1",
            },
            "hostdevice_device",
            "exactly one",
        ),
        (
            {"cni_type": "host-device", "hostdevice_pci": "3b:00"},
            "hostdevice_pci",
            "not a PCI address",
        ),
        ({"cni_type": "sriov"}, "sriov_resource_name", "needs the device plugin's resource name"),
        (
            {"cni_type": "sriov", "sriov_resource_name": "no slash"},
            "sriov_resource_name",
            "not a resource name",
        ),
        ({"mtu": "20"}, "mtu", "greater than or equal to 68"),
        ({"node_selector": "fast"}, "node_selector", "key=value"),
        ({"cni_version": "0.2.0"}, "cni_version", "not one of the available choices"),
        ({"ipam_type": "host-local", "hl_subnet": ""}, "hl_subnet", "needs a subnet"),
        (
            {"ipam_type": "host-local", "hl_subnet": "10.1.0.0/24", "hl_gateway": "10.2.0.1"},
            "hl_gateway",
            "outside the range",
        ),
        (
            {
                "ipam_type": "host-local",
                "hl_subnet": "10.1.0.0/24",
                "hl_range_start": "10.1.0.9",
                "hl_range_end": "10.1.0.1",
            },
            "hl_range_end",
            "before range start",
        ),
        (
            {"ipam_type": "static", "static_addresses": ""},
            "static_addresses",
            "at least one address",
        ),
        (
            {"ipam_type": "static", "static_addresses": "10.1.0.5"},
            "static_addresses",
            "with a prefix",
        ),
    ],
)
def test_each_validation_message_is_next_to_its_field(cluster, over, field, words):
    messages = errors_of(form_data(cluster, **over), field)
    assert any(words in m for m in messages), messages


def test_name_already_taken_in_the_database(cluster):
    make_nad(cluster, "data-net", namespace="default", range="10.99.0.0/24")
    messages = errors_of(form_data(cluster), "name")
    assert messages == [
        "A NAD named default/data-net already exists in cluster prod. Choose another name."
    ]


def test_same_name_in_another_cluster_is_fine(cluster):
    make_nad(make_cluster("other"), "data-net", namespace="default", range="10.99.0.0/24")
    valid_form(form_data(cluster))


# --- warnings (shown, not blocking) --------------------------------------------------------


def test_gateway_inside_the_allocatable_range_warns_but_allows_submit(cluster):
    form = valid_form(
        form_data(
            cluster,
            wb_range="192.168.20.0/24",
            wb_range_start="192.168.20.1",
            wb_range_end="192.168.20.100",
            wb_gateway="192.168.20.1",
        )
    )
    assert form.warnings == {
        "wb_gateway": [
            "Gateway 192.168.20.1 is inside the allocatable range and not excluded: whereabouts will "
            "eventually give it to a pod. Add it to the exclude list or move range start past it."
        ]
    }
    assert form["wb_gateway"].warnings == form.warnings["wb_gateway"]


def test_excluded_gateway_does_not_warn(cluster):
    form = valid_form(form_data(cluster, wb_gateway="10.50.0.1", wb_exclude="10.50.0.1/32"))
    assert form.warnings == {}


def test_overlap_in_the_same_network_name_scope_names_the_other_nad(cluster):
    make_nad(cluster, "blue-a", namespace="team-a", range="10.50.0.0/16", network_name="blue")
    form = valid_form(form_data(cluster, wb_network_name="blue"))
    (message,) = form.warnings["wb_range"]
    assert (
        "NAD team-a/blue-a" in message
        and "10.50.0.0/16" in message
        and "network_name 'blue'" in message
    )


def test_overlap_in_another_scope_warns_about_double_handout(cluster):
    make_nad(cluster, "red-a", namespace="default", range="10.50.0.128/25", network_name="red")
    (message,) = valid_form(form_data(cluster)).warnings["wb_range"]
    assert "NAD default/red-a" in message and "different network_name scope" in message


def test_same_range_and_scope_shares_the_pool(cluster):
    nad = make_nad(cluster, "twin", range="10.50.0.0/24")
    make_pool(cluster, "10.50.0.0/24", nads=[nad])
    (message,) = valid_form(form_data(cluster)).warnings["wb_range"]
    assert "NAD default/twin" in message and "same IPPool" in message


def test_overlap_with_a_pool_without_nad(cluster):
    make_pool(cluster, "10.50.0.0/23", network_name="")
    (message,) = valid_form(form_data(cluster)).warnings["wb_range"]
    assert "IPPool kube-system/10.50.0.0-23" in message


def test_no_overlap_no_warning_and_other_clusters_do_not_count(cluster):
    make_nad(cluster, "far", range="10.60.0.0/24")
    make_nad(make_cluster("other"), "near", range="10.50.0.0/24")
    assert valid_form(form_data(cluster)).warnings == {}


# --- what whereabouts would misread or ignore ----------------------------------------------


def test_exclude_entries_outside_the_range_warn_with_the_reason(cluster):
    form = valid_form(
        form_data(cluster, wb_range="10.71.0.0/24", wb_exclude="10.99.0.0/28\n192.168.1.1")
    )
    (message,) = form.warnings["wb_exclude"]
    assert message.startswith(
        "Exclude entries 10.99.0.0/28 and 192.168.1.1 are outside the range 10.71.0.0/24: "
        "whereabouts only skips excluded addresses of the range"
    )


def test_a_gateway_in_another_subnet_is_an_error(cluster):
    messages = errors_of(
        form_data(cluster, wb_range="10.71.0.0/24", wb_gateway="10.72.0.1"), "wb_gateway"
    )
    assert messages == [
        "Gateway 10.72.0.1 is outside the range 10.71.0.0/24: pods on this network could not "
        "reach it. Give an address of the range."
    ]


@pytest.mark.parametrize("entry", ["10.50.0.010", "10.50.0.1 /32"])
def test_an_exclude_entry_whereabouts_cannot_parse_is_refused(cluster, entry):
    (message,) = errors_of(form_data(cluster, wb_exclude=entry), "wb_exclude")
    assert f"'{entry}'" in message and "fail every allocation from this range" in message


def test_spaces_around_values_are_not_sent(cluster):
    """The form trims what is typed around a value, so the config carries none (whereabouts
    would refuse a padded range and silently drop a padded range_start)."""
    form = valid_form(
        form_data(
            cluster,
            wb_range=" 10.50.0.0/24 ",
            wb_range_start=" 10.50.0.10",
            wb_exclude=" 10.50.0.5 ",
        )
    )
    ipam = config_of(form)["ipam"]
    assert (ipam["range"], ipam["range_start"], ipam["exclude"]) == (
        "10.50.0.0/24",
        "10.50.0.10",
        ["10.50.0.5"],
    )


def test_every_bad_field_is_reported_at_once(cluster):
    """A taken name, a bad interface, a missing range, a bad exclude, gateway and route:
    all six at the first submit, not one more after each fix."""
    make_nad(cluster, "data-net", namespace="default", range="10.99.0.0/24")
    form = NADForm(
        form_data(
            cluster,
            macvlan_master="eth 1",
            wb_range="",
            wb_exclude="10.50.0.01",
            wb_gateway="gw",
            wb_routes="default",
        )
    )
    assert not form.is_valid()
    assert set(form.errors) == {
        "name",
        "macvlan_master",
        "wb_range",
        "wb_exclude",
        "wb_gateway",
        "wb_routes",
    }


def test_a_wide_range_overlapping_many_nads_the_same_way_is_one_warning(cluster):
    names = [f"net-{i}" for i in range(6)]
    for i, name in enumerate(names):
        make_nad(cluster, name, range=f"10.{i}.0.0/24")
    form = valid_form(form_data(cluster, wb_range="10.0.0.0/8"))
    (message,) = form.warnings["wb_range"]
    assert all(f"NAD default/{name} (10.{i}.0.0/24)" in message for i, name in enumerate(names))
    assert message.count("overlap in the same scope") == 1


def test_overlaps_with_different_causes_are_one_warning_each(cluster):
    make_nad(cluster, "same-a", range="10.1.0.0/24")
    make_nad(cluster, "same-b", range="10.2.0.0/24")
    make_nad(cluster, "red", range="10.3.0.0/24", network_name="red")
    warnings = valid_form(form_data(cluster, wb_range="10.0.0.0/8")).warnings["wb_range"]
    assert len(warnings) == 2
    assert "NAD default/red" in warnings[0] and "different network_name" in warnings[0]
    assert "NAD default/same-a" in warnings[1] and "NAD default/same-b" in warnings[1]


# --- the seeds' broken examples cannot be produced -----------------------------------------


def test_seed_comment_inside_json_cannot_be_typed_into_a_field(cluster):
    # 004 seed: "master": "ens224", # defines the node interface ...
    data = form_data(
        cluster,
        cni_type="ipvlan",
        ipvlan_master="ens224 # defines the node interface",
        cni_version="0.3.1",
        wb_range="172.16.0.0/24",
    )
    assert not NADForm(data).is_valid()
    form = valid_form({**data, "ipvlan_master": "ens224"})
    assert "#" not in form.manifest["spec"]["config"]


def test_seed_unquoted_range_value_is_refused(cluster):
    # 000 seed: "range": SECONDARY_RANGE_NAME
    assert errors_of(form_data(cluster, wb_range="SECONDARY_RANGE_NAME"), "wb_range")
    config = config_of(valid_form(form_data(cluster, wb_range="172.16.1.0/24")))
    assert config["ipam"]["range"] == "172.16.1.0/24"


def test_seed_gateway_inside_the_range_is_flagged(cluster):
    # 002 seed: range 192.168.20.0/24, range_start .10, range_end .100, gateway .1 (outside
    # start..end: fine) — and the same config without range_start (gateway allocatable).
    ok = valid_form(
        form_data(
            cluster,
            wb_range="192.168.20.0/24",
            wb_range_start="192.168.20.10",
            wb_range_end="192.168.20.100",
            wb_gateway="192.168.20.1",
        )
    )
    assert ok.warnings == {}
    flagged = valid_form(form_data(cluster, wb_range="192.168.20.0/24", wb_gateway="192.168.20.1"))
    assert "wb_gateway" in flagged.warnings


# --- namespaces ----------------------------------------------------------------------------


def test_namespaces_from_the_allow_list(settings, cluster):
    settings.IPPAM_NAD_NAMESPACES = ["net-a", "net-b"]
    form = NADForm()
    assert [c[0] for c in form.fields["namespace"].choices] == ["net-a", "net-b"]
    assert errors_of(form_data(cluster, namespace="default"), "namespace")


def test_namespaces_from_synced_objects_when_no_allow_list(settings, cluster):
    settings.IPPAM_NAD_NAMESPACES = []
    make_nad(cluster, "x", namespace="team-z", range=None)
    assert nad_namespaces() == ["default", "kube-system", "team-z"]


# --- the draft preview ---------------------------------------------------------------------


def test_draft_manifest_shows_what_is_typed_even_before_it_validates(cluster):
    form = NADForm(form_data(cluster, name="Bad Name", wb_range="10.50.0.0/24"))
    assert not form.is_valid()
    draft = form.draft_manifest()
    assert draft["metadata"]["name"] == "Bad Name"
    assert json.loads(draft["spec"]["config"])["ipam"]["range"] == "10.50.0.0/24"


# --- whatever is typed, a valid form yields a config cniconfig accepts ----------------------

TEXT_FIELDS = (
    "name",
    "ipvlan_master",
    "macvlan_master",
    "bridge_name",
    "hostdevice_device",
    "hostdevice_pci",
    "sriov_resource_name",
    "wb_range",
    "wb_range_start",
    "wb_range_end",
    "wb_exclude",
    "wb_gateway",
    "wb_network_name",
    "wb_routes",
    "hl_subnet",
    "hl_range_start",
    "hl_range_end",
    "hl_gateway",
    "hl_routes",
    "static_addresses",
    "static_routes",
    "node_selector",
)
# Values that look like the seeds' mistakes, mixed with valid ones so that some forms pass.
TYPED = st.one_of(
    st.sampled_from(
        [
            "",
            "eth1",
            "10.50.0.0/24",
            "10.50.0.1",
            "10.50.0.300",
            "SECONDARY_RANGE_NAME",
            '"10.50.0.0/24"',
            "ens224 # defines the node interface",
            'eth1", "mode": "l3',
            "net-a",
            "intel.com/vf",
            "0000:3b:00.1",
            "k=v",
            "fd00::/64",
            "0.0.0.0/0 10.50.0.1",
        ]
    ),
    st.text(max_size=24),
)


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.dictionaries(st.sampled_from(TEXT_FIELDS), TYPED, max_size=3),
    cni=st.sampled_from(["ipvlan", "macvlan", "bridge", "host-device", "sriov"]),
    ipam=st.sampled_from(["whereabouts", "host-local", "static", "none"]),
    metas=st.lists(st.sampled_from(["tuning", "sbr", "portmap"]), unique=True),
)
def test_a_valid_form_always_yields_a_config_without_problems(cluster, values, cni, ipam, metas):
    data = {
        **form_data(cluster),
        **values,
        "cni_type": cni,
        "ipam_type": ipam,
        "meta_plugins": metas,
    }
    form = NADForm(data)
    valid = form.is_valid()
    event(f"valid={valid}")
    if not valid:
        return
    raw = form.manifest["spec"]["config"]
    parsed = parse_cni_config(raw)
    assert parsed.problems == (), (raw, parsed.problems)
    if parsed.ipam_type == "whereabouts":
        assert parse_whereabouts_ipam(parsed.ipam).problems == ()


def test_ipv6_whereabouts_range(cluster):
    form = valid_form(
        form_data(
            cluster, wb_range="fd00:10::/64", wb_range_start="fd00:10::10", wb_gateway="fd00:10::1"
        )
    )
    ipam = config_of(form)["ipam"]
    assert ipam["range"] == "fd00:10::/64" and form.warnings == {}
    flagged = valid_form(form_data(cluster, wb_range="fd00:10::/64", wb_gateway="fd00:10::1"))
    assert "wb_gateway" in flagged.warnings
    assert errors_of(
        form_data(cluster, wb_range="fd00:10::/64", wb_range_start="10.50.0.1"), "wb_range_start"
    )
