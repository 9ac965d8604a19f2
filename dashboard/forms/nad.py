"""The NAD creation form: validates input and translates it into ippam.nadbuilder's NADSpec.

It does not write: the view hands ``form.spec`` to ippam.nads.nad_create. It reports two
kinds of findings next to each field: errors, which block submission, and warnings
(``form.warnings``), which are shown and do not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from django import forms
from django.conf import settings

from ippam import nadbuilder as nb
from ippam.models import Cluster, NetworkAttachmentDefinition

# The namespaces offered when settings.IPPAM_NAD_NAMESPACES is empty and nothing is synced.
BASE_NAMESPACES = ("default", "kube-system")

CNI_TYPE_LABELS = {
    "ipvlan": "ipvlan (shares the master's MAC)",
    "macvlan": "macvlan (a MAC per pod)",
    "bridge": "bridge (a Linux bridge on the node)",
    "host-device": "host-device (moves a node device into the pod)",
    "sriov": "SR-IOV (a virtual function)",
}
IPAM_TYPE_LABELS = {
    "whereabouts": "whereabouts (cluster-wide)",
    "host-local": "host-local (per node)",
    "static": "static addresses",
    "none": "none (no address)",
}

# Which form fields belong to which CNI and IPAM type: the template renders one fieldset
# per type, and clean() ignores the fields of the types not chosen.
CNI_FIELDS: dict[str, tuple[str, ...]] = {
    "ipvlan": ("ipvlan_master", "ipvlan_mode"),
    "macvlan": ("macvlan_master", "macvlan_mode"),
    "bridge": ("bridge_name", "bridge_is_gateway", "bridge_ip_masq", "bridge_vlan"),
    "host-device": ("hostdevice_device", "hostdevice_pci"),
    "sriov": ("sriov_resource_name", "sriov_vlan"),
}
IPAM_FIELDS: dict[str, tuple[str, ...]] = {
    "whereabouts": (
        "wb_range",
        "wb_range_start",
        "wb_range_end",
        "wb_exclude",
        "wb_gateway",
        "wb_network_name",
        "wb_routes",
        "wb_enable_overlapping_ranges",
    ),
    "host-local": ("hl_subnet", "hl_range_start", "hl_range_end", "hl_gateway", "hl_routes"),
    "static": ("static_addresses", "static_routes"),
    "none": (),
}
# nadbuilder.check_* name fields by the plugin's key; these map them onto form fields.
WB_CHECK_FIELDS = {
    "range": "wb_range",
    "range_start": "wb_range_start",
    "range_end": "wb_range_end",
    "exclude": "wb_exclude",
    "gateway": "wb_gateway",
    "network_name": "wb_network_name",
    "routes": "wb_routes",
}
HL_CHECK_FIELDS = {
    "subnet": "hl_subnet",
    "range_start": "hl_range_start",
    "range_end": "hl_range_end",
    "gateway": "hl_gateway",
    "routes": "hl_routes",
}
STATIC_CHECK_FIELDS = {"addresses": "static_addresses", "routes": "static_routes"}

DNS1123_HELP = "Lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters."
ROUTES_HELP = "One route a line: destination CIDR, optionally followed by a gateway, e.g. 10.20.0.0/16 10.10.0.1"


IFNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,14}$")
PCI_RE = re.compile(r"^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$")
RESOURCE_NAME_RE = re.compile(r"^[A-Za-z0-9.-]+/[A-Za-z0-9_.-]+$")


def nad_namespaces() -> list[str]:
    """The namespaces a NAD may be created in: the allow-list, else the ones seen in syncs."""
    if settings.IPPAM_NAD_NAMESPACES:
        return list(settings.IPPAM_NAD_NAMESPACES)
    from ippam.models import Pod

    seen = set(BASE_NAMESPACES)
    seen.update(NetworkAttachmentDefinition.objects.values_list("namespace", flat=True).distinct())
    seen.update(Pod.objects.values_list("namespace", flat=True).distinct()[:500])
    return sorted(seen)


def _lines(text: str) -> list[str]:
    """Entries of a textarea: one a line, commas allowed as separators too."""
    out = []
    for line in (text or "").replace(",", "\n").splitlines():
        line = line.strip()
        if line:
            out.append(line)
    return out


def _parse_routes(text: str) -> tuple[tuple[nb.Route, ...], list[str]]:
    routes, errors = [], []
    for line in (text or "").splitlines():
        parts = line.replace(" via ", " ").split()
        if not parts:
            continue
        if len(parts) > 2:
            errors.append(f"'{line.strip()}' is not 'destination [gateway]'.")
            continue
        routes.append(nb.Route(dst=parts[0], gw=parts[1] if len(parts) == 2 else ""))
    return tuple(routes), errors


def _parse_static_addresses(text: str) -> tuple[tuple[nb.StaticAddress, ...], list[str]]:
    addresses, errors = [], []
    for line in (text or "").splitlines():
        parts = line.replace(" via ", " ").split()
        if not parts:
            continue
        if len(parts) > 2:
            errors.append(f"'{line.strip()}' is not 'address/prefix [gateway]'.")
            continue
        addresses.append(
            nb.StaticAddress(address=parts[0], gateway=parts[1] if len(parts) == 2 else "")
        )
    return tuple(addresses), errors


class _Inputs:
    """The form's values, read the same way whether they validated (``cleaned_data``) or
    are still being typed (the raw POST, for the live preview)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = values

    def text(self, name: str) -> str:
        value = self.values.get(name)
        return "" if value is None else str(value).strip()

    def number(self, name: str) -> int | None:
        value = self.values.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = self.text(name)
        return int(text) if text.isdigit() else None

    def flag(self, name: str) -> bool:
        return bool(self.values.get(name))

    def many(self, name: str) -> list[str]:
        getlist = getattr(self.values, "getlist", None)
        value = getlist(name) if getlist is not None else self.values.get(name)
        return [str(v) for v in value or ()]


class NADForm(forms.Form):
    cluster = forms.ModelChoiceField(
        queryset=Cluster.objects.filter(enabled=True), empty_label=None
    )
    namespace = forms.ChoiceField(
        help_text="Pods refer to the NAD as namespace/name. With Multus namespaceIsolation on, only pods of this namespace (or of its global namespaces) may use it."
    )
    name = forms.CharField(max_length=63, help_text=DNS1123_HELP)
    cni_version = forms.ChoiceField(
        label="cniVersion", choices=[(v, v) for v in nb.CNI_VERSIONS], initial="0.3.1"
    )
    cni_type = forms.ChoiceField(
        label="CNI type", choices=list(CNI_TYPE_LABELS.items()), initial="macvlan"
    )
    mtu = forms.IntegerField(
        label="MTU",
        required=False,
        min_value=68,
        max_value=65535,
        help_text="Leave empty for the master's MTU.",
    )

    ipvlan_master = forms.CharField(
        label="Master interface",
        required=False,
        max_length=64,
        help_text="The node interface, e.g. eth1.",
    )
    ipvlan_mode = forms.ChoiceField(
        label="Mode", choices=[(m, m) for m in nb.IPVLAN_MODES], initial="l2", required=False
    )
    macvlan_master = forms.CharField(
        label="Master interface",
        required=False,
        max_length=64,
        help_text="The node interface, e.g. eth1.",
    )
    macvlan_mode = forms.ChoiceField(
        label="Mode", choices=[(m, m) for m in nb.MACVLAN_MODES], initial="bridge", required=False
    )
    bridge_name = forms.CharField(
        label="Bridge name", required=False, max_length=64, initial="cni0"
    )
    bridge_is_gateway = forms.BooleanField(
        label="isGateway (give the bridge the gateway address)", required=False
    )
    bridge_ip_masq = forms.BooleanField(
        label="ipMasq (masquerade traffic leaving the bridge)", required=False
    )
    bridge_vlan = forms.IntegerField(label="VLAN", required=False, min_value=0, max_value=4094)
    hostdevice_device = forms.CharField(
        label="Device",
        required=False,
        max_length=64,
        help_text="A node interface name, e.g. ens2f0.",
    )
    hostdevice_pci = forms.CharField(
        label="PCI address",
        required=False,
        max_length=32,
        help_text="Or a PCI bus id, e.g. 0000:3b:00.1.",
    )
    sriov_resource_name = forms.CharField(
        label="Resource name",
        required=False,
        max_length=253,
        help_text="The SR-IOV device plugin's pool, e.g. intel.com/sriov_netdevice. Goes in the k8s.v1.cni.cncf.io/resourceName annotation.",
    )
    sriov_vlan = forms.IntegerField(label="VLAN", required=False, min_value=0, max_value=4094)

    ipam_type = forms.ChoiceField(
        label="IPAM", choices=list(IPAM_TYPE_LABELS.items()), initial="whereabouts"
    )
    wb_range = forms.CharField(
        label="Range", required=False, max_length=64, help_text="CIDR, e.g. 10.10.0.0/24."
    )
    wb_range_start = forms.CharField(label="Range start", required=False, max_length=45)
    wb_range_end = forms.CharField(label="Range end", required=False, max_length=45)
    wb_exclude = forms.CharField(
        label="Exclude",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="CIDRs or addresses, one a line.",
    )
    wb_gateway = forms.CharField(label="Gateway", required=False, max_length=45)
    wb_network_name = forms.CharField(
        label="Network name",
        required=False,
        max_length=63,
        help_text="Ranges with the same network name share IPPools and reservations.",
    )
    wb_routes = forms.CharField(
        label="Routes",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=ROUTES_HELP,
    )
    wb_enable_overlapping_ranges = forms.BooleanField(
        label="enable_overlapping_ranges (reserve each address cluster-wide)",
        required=False,
        initial=True,
    )
    hl_subnet = forms.CharField(label="Subnet", required=False, max_length=64)
    hl_range_start = forms.CharField(label="rangeStart", required=False, max_length=45)
    hl_range_end = forms.CharField(label="rangeEnd", required=False, max_length=45)
    hl_gateway = forms.CharField(label="Gateway", required=False, max_length=45)
    hl_routes = forms.CharField(
        label="Routes",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=ROUTES_HELP,
    )
    static_addresses = forms.CharField(
        label="Addresses",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One a line: address/prefix, optionally followed by a gateway.",
    )
    static_routes = forms.CharField(
        label="Routes",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=ROUTES_HELP,
    )

    meta_plugins = forms.MultipleChoiceField(
        label="Chained plugins",
        required=False,
        choices=[
            ("tuning", "tuning (sysctls, MTU)"),
            ("sbr", "sbr (source-based routing)"),
            ("portmap", "portmap (hostPort)"),
        ],
        widget=forms.CheckboxSelectMultiple,
        help_text="Chaining any makes the config a conflist.",
    )
    node_selector = forms.CharField(
        label="Node selector",
        required=False,
        max_length=253,
        help_text="key=value: pods using this NAD are only scheduled on nodes with that label (network-resources-injector).",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        namespaces = nad_namespaces()
        cast(forms.ChoiceField, self.fields["namespace"]).choices = [(n, n) for n in namespaces]
        if "default" in namespaces:
            self.fields["namespace"].initial = "default"
        self.warnings: dict[str, list[str]] = {}
        self.spec: nb.NADSpec | None = None
        self.manifest: dict[str, Any] | None = None

    # --- what the template needs ---

    def __getitem__(self, name: str) -> forms.BoundField:
        bound = super().__getitem__(name)
        bound.warnings = self.warnings.get(name, [])  # type: ignore[attr-defined]
        return bound

    def selected(self, name: str) -> str:
        value = self.data.get(name) if self.is_bound else None
        return value or self.fields[name].initial

    @property
    def selected_cni(self) -> str:
        value = self.selected("cni_type")
        return value if value in CNI_FIELDS else "macvlan"

    @property
    def selected_ipam(self) -> str:
        value = self.selected("ipam_type")
        return value if value in IPAM_FIELDS else "whereabouts"

    def cni_fieldsets(self) -> list[tuple[str, str, list[forms.BoundField]]]:
        return [
            (t, CNI_TYPE_LABELS[t], [self[f] for f in fields]) for t, fields in CNI_FIELDS.items()
        ]

    def ipam_fieldsets(self) -> list[tuple[str, str, list[forms.BoundField]]]:
        return [
            (t, IPAM_TYPE_LABELS[t], [self[f] for f in fields]) for t, fields in IPAM_FIELDS.items()
        ]

    def warn(self, name: str, message: str) -> None:
        self.warnings.setdefault(name, []).append(message)

    # --- validation ---

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not nb.is_dns1123_label(name):
            raise forms.ValidationError(f"'{name}' is not a valid name. {DNS1123_HELP}")
        return name

    def _clean_ifname(self, name: str, what: str) -> str:
        value = self.cleaned_data.get(name, "").strip()
        if value and not IFNAME_RE.match(value):
            raise forms.ValidationError(
                f"'{value}' is not a network interface name: up to 15 letters, digits, '.', '_', '-' or '@', "
                f"no spaces or quotes ({what})."
            )
        return value

    def clean_ipvlan_master(self) -> str:
        return self._clean_ifname("ipvlan_master", "the node interface, e.g. eth1")

    def clean_macvlan_master(self) -> str:
        return self._clean_ifname("macvlan_master", "the node interface, e.g. eth1")

    def clean_bridge_name(self) -> str:
        return self._clean_ifname("bridge_name", "the bridge, e.g. cni0")

    def clean_hostdevice_device(self) -> str:
        return self._clean_ifname("hostdevice_device", "the node device, e.g. ens2f0")

    def clean_hostdevice_pci(self) -> str:
        value = self.cleaned_data.get("hostdevice_pci", "").strip()
        if value and not PCI_RE.match(value):
            raise forms.ValidationError(f"'{value}' is not a PCI address such as 0000:3b:00.1.")
        return value

    def clean_sriov_resource_name(self) -> str:
        value = self.cleaned_data.get("sriov_resource_name", "").strip()
        if value and not RESOURCE_NAME_RE.match(value):
            raise forms.ValidationError(
                f"'{value}' is not a resource name such as intel.com/sriov_netdevice."
            )
        return value

    @property
    def warning_count(self) -> int:
        return sum(len(v) for v in self.warnings.values())

    def clean_node_selector(self) -> str:
        value = self.cleaned_data["node_selector"].strip()
        if not value:
            return ""
        key, sep, label = value.partition("=")
        if not sep or not key.strip() or "=" in label:
            raise forms.ValidationError(
                "Write the node selector as one key=value, e.g. nic-type=fast."
            )
        return f"{key.strip()}={label.strip()}"

    def clean(self) -> dict[str, Any]:
        super().clean()  # returns self.cleaned_data, which django-stubs types as optional
        data = self.cleaned_data
        # Every check runs whatever the others found: the form lists all its errors at once.
        spec = self._build_spec(_Inputs(data), check=True)
        self._check_name_taken(data)
        if self.errors or spec is None:
            return data
        self.spec = spec
        self.manifest = nb.build_manifest(spec)
        return data

    # --- the one spec builder: create sends what it builds, the preview shows it ---

    def nad_spec(self) -> nb.NADSpec | None:
        """The NAD this form describes: the validated spec once the form is valid (the one
        ``nad_create`` sends), else, for the live preview, the same builder over what is
        typed so far, without its checks. None for an unbound form."""
        if self.spec is not None:
            return self.spec
        if not self.is_bound:
            return None
        return self._build_spec(_Inputs(self.data), check=False)

    def draft_manifest(self) -> dict[str, Any] | None:
        """The manifest of ``nad_spec()``: what the preview shows, even before it validates."""
        if self.manifest is not None:
            return self.manifest
        spec = self.nad_spec()
        return nb.build_manifest(spec) if spec is not None else None

    def _build_spec(self, inputs: _Inputs, *, check: bool) -> nb.NADSpec | None:
        """Build the spec from `inputs`. With `check`, report each problem on its field (and
        give up where a part cannot be built); without, build whatever is typed."""
        interface = self._interface(inputs, check=check)
        ipam = self._ipam(inputs, check=check)
        if interface is None:
            return None
        version = inputs.text("cni_version")
        return nb.NADSpec(
            name=inputs.text("name"),
            namespace=inputs.text("namespace"),
            interface=interface,
            ipam=ipam,
            cni_version=version if version in nb.CNI_VERSIONS else "0.3.1",
            mtu=inputs.number("mtu"),
            meta_plugins=tuple(m for m in inputs.many("meta_plugins") if m in nb.META_PLUGINS),
            node_selector=inputs.text("node_selector"),
        )

    def _interface(self, inputs: _Inputs, *, check: bool) -> nb.Interface | None:
        cni = inputs.text("cni_type")
        if cni not in CNI_FIELDS:
            if check:
                return None  # the choice field has said why
            cni = "macvlan"
        if cni == "ipvlan":
            return nb.IPVlan(
                master=inputs.text("ipvlan_master"), mode=inputs.text("ipvlan_mode") or "l2"
            )
        if cni == "macvlan":
            return nb.MacVlan(
                master=inputs.text("macvlan_master"),
                mode=inputs.text("macvlan_mode") or "bridge",
            )
        if cni == "bridge":
            name = inputs.text("bridge_name")
            if check and not name:
                self.add_error("bridge_name", "Name the bridge, e.g. cni0 or br-data.")
                return None
            return nb.Bridge(
                bridge=name,
                is_gateway=inputs.flag("bridge_is_gateway"),
                ip_masq=inputs.flag("bridge_ip_masq"),
                vlan=inputs.number("bridge_vlan"),
            )
        if cni == "host-device":
            device = inputs.text("hostdevice_device")
            pci = inputs.text("hostdevice_pci")
            if check and bool(device) == bool(pci):
                self.add_error(
                    "hostdevice_device", "Give either a device name or a PCI address (exactly one)."
                )
                return None
            return nb.HostDevice(device=device, pci_bus_id=pci)
        resource = inputs.text("sriov_resource_name")
        if check and not resource:
            self.add_error(
                "sriov_resource_name",
                "SR-IOV needs the device plugin's resource name, e.g. intel.com/sriov_netdevice.",
            )
            return None
        return nb.SRIOV(resource_name=resource, vlan=inputs.number("sriov_vlan"))

    def _add_checks(self, checks: nb.Checks, mapping: dict[str, str]) -> None:
        for key, messages in checks.errors.items():
            for message in messages:
                self.add_error(mapping[key], message)
        for key, messages in checks.warnings.items():
            for message in messages:
                self.warn(mapping[key], message)

    def _routes(self, inputs: _Inputs, name: str, *, check: bool) -> tuple[nb.Route, ...]:
        routes, errors = _parse_routes(inputs.text(name))
        for message in errors if check else ():
            self.add_error(name, message)
        return routes

    def _ipam(self, inputs: _Inputs, *, check: bool) -> nb.IPAM:
        ipam_type = inputs.text("ipam_type")
        if ipam_type not in IPAM_FIELDS:
            if check:
                return None  # the choice field has said why
            ipam_type = "whereabouts"
        ipam: nb.IPAM
        if ipam_type == "whereabouts":
            ipam = nb.WhereaboutsIPAM(
                range=inputs.text("wb_range"),
                range_start=inputs.text("wb_range_start"),
                range_end=inputs.text("wb_range_end"),
                exclude=tuple(_lines(inputs.text("wb_exclude"))),
                gateway=inputs.text("wb_gateway"),
                network_name=inputs.text("wb_network_name"),
                routes=self._routes(inputs, "wb_routes", check=check),
                enable_overlapping_ranges=inputs.flag("wb_enable_overlapping_ranges"),
            )
            if check:
                checks = nb.check_whereabouts(ipam)
                self._add_checks(checks, WB_CHECK_FIELDS)
                cluster = inputs.values.get("cluster")
                if "range" not in checks.errors and isinstance(cluster, Cluster):
                    self._warn_overlaps(cluster, ipam)
            return ipam
        if ipam_type == "host-local":
            ipam = nb.HostLocalIPAM(
                subnet=inputs.text("hl_subnet"),
                range_start=inputs.text("hl_range_start"),
                range_end=inputs.text("hl_range_end"),
                gateway=inputs.text("hl_gateway"),
                routes=self._routes(inputs, "hl_routes", check=check),
            )
            if check:
                self._add_checks(nb.check_host_local(ipam), HL_CHECK_FIELDS)
            return ipam
        if ipam_type == "static":
            addresses, errors = _parse_static_addresses(inputs.text("static_addresses"))
            for message in errors if check else ():
                self.add_error("static_addresses", message)
            ipam = nb.StaticIPAM(
                addresses=addresses, routes=self._routes(inputs, "static_routes", check=check)
            )
            if check:
                self._add_checks(nb.check_static(ipam), STATIC_CHECK_FIELDS)
            return ipam
        return None

    def _warn_overlaps(self, cluster: Cluster, ipam: nb.WhereaboutsIPAM) -> None:
        from ippam.nads import nad_range_overlaps, overlap_messages

        overlaps = nad_range_overlaps(
            cluster=cluster,
            range_cidr=ipam.range,
            network_name=ipam.network_name,
            enable_overlapping_ranges=ipam.enable_overlapping_ranges,
        )
        for message in overlap_messages(overlaps):
            self.warn("wb_range", message)

    def _check_name_taken(self, data: dict[str, Any]) -> None:
        cluster, namespace, name = data.get("cluster"), data.get("namespace"), data.get("name")
        if cluster is None or not namespace or not name:
            return
        if NetworkAttachmentDefinition.objects.filter(
            cluster=cluster, namespace=namespace, name=name
        ).exists():
            self.add_error(
                "name",
                f"A NAD named {namespace}/{name} already exists in cluster {cluster.name}. Choose another name.",
            )
