"""Building a NetworkAttachmentDefinition from typed inputs, as data.

Pure module (no Django, no kubernetes client). The CNI config is assembled as Python
dicts and serialized with ``json.dumps``: never from string templates, so the mistakes
copied from guides (a ``#`` comment inside the JSON, an unquoted range value) cannot be
produced. The field names mirror the plugins' own config structs:

- ipvlan / macvlan / bridge / host-device: containernetworking/plugins ``plugins/main/*``
  (``master``, ``mode``, ``mtu``; ``bridge``, ``isGateway``, ``ipMasq``, ``vlan``;
  ``device``, ``pciBusID``);
- sriov: k8snetworkplumbingwg/sriov-cni (``vlan``); the device pool is chosen by the NAD
  annotation ``k8s.v1.cni.cncf.io/resourceName``, not by the config;
- IPAM: whereabouts (``range``, ``range_start``, ``range_end``, ``exclude``, ``gateway``,
  ``network_name``, ``routes``, ``enable_overlapping_ranges``), host-local (``ranges`` of
  range sets with ``subnet``/``rangeStart``/``rangeEnd``/``gateway``), static
  (``addresses``);
- chained meta plugins (tuning, sbr, portmap) turn the config into a conflist whose
  ``plugins[0]`` is the interface plugin: whereabouts' controllers read IPAM from
  ``plugins[0]`` only.

``check_*`` functions return plain-word errors and warnings keyed by input field, so a
form can show them next to the field they are about.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from netaddr import IPAddress, IPNetwork

from ippam.annotations import NODE_SELECTOR_ANNOTATION, RESOURCE_NAME_ANNOTATION
from ippam.ipparse import max_prefix, strict_cidr, strict_ip
from ippam.ranges import range_usable

__all__ = [
    "CNI_VERSIONS",
    "INTERFACE_TYPES",
    "IPAM_TYPES",
    "META_PLUGINS",
    "NODE_SELECTOR_ANNOTATION",
    "RESOURCE_NAME_ANNOTATION",
    "Bridge",
    "Checks",
    "HostDevice",
    "HostLocalIPAM",
    "IPVlan",
    "MacVlan",
    "NADSpec",
    "Route",
    "SRIOV",
    "StaticAddress",
    "StaticIPAM",
    "WhereaboutsIPAM",
    "build_cni_config",
    "build_manifest",
    "check_host_local",
    "check_static",
    "check_whereabouts",
    "is_dns1123_label",
    "kubectl_command",
    "manifest_yaml",
]

API_VERSION = "k8s.cni.cncf.io/v1"
KIND = "NetworkAttachmentDefinition"

CNI_VERSIONS = ("0.3.1", "0.4.0", "1.0.0")
INTERFACE_TYPES = ("ipvlan", "macvlan", "bridge", "host-device", "sriov")
IPAM_TYPES = ("whereabouts", "host-local", "static", "none")
META_PLUGINS = ("tuning", "sbr", "portmap")
IPVLAN_MODES = ("l2", "l3", "l3s")
MACVLAN_MODES = ("bridge", "private", "vepa", "passthru")

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


# --- inputs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    dst: str
    gw: str = ""

    def as_dict(self) -> dict[str, str]:
        route = {"dst": self.dst}
        if self.gw:
            route["gw"] = self.gw
        return route


@dataclass(frozen=True)
class IPVlan:
    master: str = ""
    mode: str = "l2"
    type: str = field(default="ipvlan", init=False)


@dataclass(frozen=True)
class MacVlan:
    master: str = ""
    mode: str = "bridge"
    type: str = field(default="macvlan", init=False)


@dataclass(frozen=True)
class Bridge:
    bridge: str = "cni0"
    is_gateway: bool = False
    ip_masq: bool = False
    vlan: int | None = None
    type: str = field(default="bridge", init=False)


@dataclass(frozen=True)
class HostDevice:
    device: str = ""
    pci_bus_id: str = ""
    type: str = field(default="host-device", init=False)


@dataclass(frozen=True)
class SRIOV:
    resource_name: str
    vlan: int | None = None
    type: str = field(default="sriov", init=False)


Interface = IPVlan | MacVlan | Bridge | HostDevice | SRIOV


@dataclass(frozen=True)
class WhereaboutsIPAM:
    range: str
    range_start: str = ""
    range_end: str = ""
    exclude: tuple[str, ...] = ()
    gateway: str = ""
    network_name: str = ""
    routes: tuple[Route, ...] = ()
    enable_overlapping_ranges: bool = True
    type: str = field(default="whereabouts", init=False)


@dataclass(frozen=True)
class HostLocalIPAM:
    subnet: str
    range_start: str = ""
    range_end: str = ""
    gateway: str = ""
    routes: tuple[Route, ...] = ()
    type: str = field(default="host-local", init=False)


@dataclass(frozen=True)
class StaticAddress:
    address: str
    gateway: str = ""


@dataclass(frozen=True)
class StaticIPAM:
    addresses: tuple[StaticAddress, ...]
    routes: tuple[Route, ...] = ()
    type: str = field(default="static", init=False)


IPAM = WhereaboutsIPAM | HostLocalIPAM | StaticIPAM | None


@dataclass(frozen=True)
class NADSpec:
    name: str
    namespace: str
    interface: Interface
    ipam: IPAM = None
    cni_version: str = "0.3.1"
    mtu: int | None = None
    meta_plugins: tuple[str, ...] = ()
    node_selector: str = ""


# --- building -----------------------------------------------------------------------------


def _interface_dict(spec: NADSpec) -> dict[str, Any]:
    iface = spec.interface
    out: dict[str, Any] = {"type": iface.type}
    if isinstance(iface, IPVlan | MacVlan):
        if iface.master:
            out["master"] = iface.master
        out["mode"] = iface.mode
    elif isinstance(iface, Bridge):
        out["bridge"] = iface.bridge
        out["isGateway"] = iface.is_gateway
        out["ipMasq"] = iface.ip_masq
        if iface.vlan is not None:
            out["vlan"] = iface.vlan
    elif isinstance(iface, HostDevice):
        if iface.device:
            out["device"] = iface.device
        if iface.pci_bus_id:
            out["pciBusID"] = iface.pci_bus_id
    elif isinstance(iface, SRIOV) and iface.vlan is not None:
        out["vlan"] = iface.vlan
    if spec.mtu is not None and _mtu_in_main(spec):
        out["mtu"] = spec.mtu
    ipam = _ipam_dict(spec.ipam)
    if ipam is not None:
        out["ipam"] = ipam
    return out


def _mtu_in_main(spec: NADSpec) -> bool:
    # ipvlan, macvlan and bridge take "mtu" themselves; host-device and sriov do not, so
    # their MTU is set by the tuning plugin chained after them.
    return isinstance(spec.interface, IPVlan | MacVlan | Bridge)


def _ipam_dict(ipam: IPAM) -> dict[str, Any] | None:
    if ipam is None:
        return None
    if isinstance(ipam, WhereaboutsIPAM):
        out: dict[str, Any] = {"type": "whereabouts", "range": ipam.range}
        if ipam.range_start:
            out["range_start"] = ipam.range_start
        if ipam.range_end:
            out["range_end"] = ipam.range_end
        if ipam.exclude:
            out["exclude"] = list(ipam.exclude)
        if ipam.gateway:
            out["gateway"] = ipam.gateway
        if ipam.network_name:
            out["network_name"] = ipam.network_name
        if ipam.routes:
            out["routes"] = [r.as_dict() for r in ipam.routes]
        out["enable_overlapping_ranges"] = ipam.enable_overlapping_ranges
        return out
    if isinstance(ipam, HostLocalIPAM):
        range_set: dict[str, str] = {"subnet": ipam.subnet}
        if ipam.range_start:
            range_set["rangeStart"] = ipam.range_start
        if ipam.range_end:
            range_set["rangeEnd"] = ipam.range_end
        if ipam.gateway:
            range_set["gateway"] = ipam.gateway
        out = {"type": "host-local", "ranges": [[range_set]]}
        if ipam.routes:
            out["routes"] = [r.as_dict() for r in ipam.routes]
        return out
    if isinstance(ipam, StaticIPAM):
        addresses = []
        for a in ipam.addresses:
            entry = {"address": a.address}
            if a.gateway:
                entry["gateway"] = a.gateway
            addresses.append(entry)
        out = {"type": "static", "addresses": addresses}
        if ipam.routes:
            out["routes"] = [r.as_dict() for r in ipam.routes]
        return out
    raise TypeError(f"unknown IPAM {ipam!r}")


def _meta_plugin_dict(kind: str, spec: NADSpec) -> dict[str, Any]:
    if kind == "tuning":
        out: dict[str, Any] = {"type": "tuning"}
        if spec.mtu is not None and not _mtu_in_main(spec):
            out["mtu"] = spec.mtu
        return out
    if kind == "sbr":
        return {"type": "sbr"}
    if kind == "portmap":
        return {"type": "portmap", "capabilities": {"portMappings": True}}
    raise ValueError(f"unknown meta plugin {kind!r}; choose from {', '.join(META_PLUGINS)}")


def _meta_plugins(spec: NADSpec) -> list[str]:
    kinds = [k for k in META_PLUGINS if k in spec.meta_plugins]
    unknown = set(spec.meta_plugins) - set(META_PLUGINS)
    if unknown:
        raise ValueError(
            f"unknown meta plugin {sorted(unknown)[0]!r}; choose from {', '.join(META_PLUGINS)}"
        )
    if spec.mtu is not None and not _mtu_in_main(spec) and "tuning" not in kinds:
        kinds.insert(0, "tuning")
    return kinds


def build_cni_config(spec: NADSpec) -> dict[str, Any]:
    """The CNI config (or conflist, when meta plugins are chained) as a dict."""
    main = _interface_dict(spec)
    metas = _meta_plugins(spec)
    head = {"cniVersion": spec.cni_version, "name": spec.name}
    if not metas:
        return {**head, **main}
    return {**head, "plugins": [main, *(_meta_plugin_dict(k, spec) for k in metas)]}


def build_manifest(spec: NADSpec) -> dict[str, Any]:
    """The NetworkAttachmentDefinition object to POST (``spec.config`` is a JSON string)."""
    metadata: dict[str, Any] = {"name": spec.name, "namespace": spec.namespace}
    annotations: dict[str, str] = {}
    if isinstance(spec.interface, SRIOV):
        annotations[RESOURCE_NAME_ANNOTATION] = spec.interface.resource_name
    if spec.node_selector:
        annotations[NODE_SELECTOR_ANNOTATION] = spec.node_selector
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata,
        "spec": {"config": json.dumps(build_cni_config(spec), indent=2)},
    }


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (the JSON config) as literal blocks, readable as JSON."""


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_BlockDumper.add_representer(str, _str_presenter)


def manifest_yaml(manifest: dict[str, Any]) -> str:
    """The manifest as YAML; ``yaml.safe_load`` of it gives ``manifest`` back exactly."""
    return yaml.dump(
        manifest, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False, width=1000
    )


def kubectl_command(manifest: dict[str, Any]) -> str:
    """A shell command creating the same object with kubectl.

    The here-document delimiter is quoted so the shell leaves ``$`` and backquotes in the
    manifest alone, and chosen so that no line of the manifest ends it early.
    """
    text = manifest_yaml(manifest)
    delimiter = "EOF"
    lines = set(text.splitlines())
    while delimiter in lines:
        delimiter += "_"
    return f"kubectl apply -f - <<'{delimiter}'\n{text}{delimiter}\n"


# --- checks -------------------------------------------------------------------------------


@dataclass
class Checks:
    """Plain-word errors (block submission) and warnings (shown, do not block), per field."""

    errors: dict[str, list[str]] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def warn(self, name: str, message: str) -> None:
        self.warnings.setdefault(name, []).append(message)


def is_dns1123_label(name: str) -> bool:
    return len(name) <= 63 and bool(_DNS1123_LABEL.match(name))


def _mapped_hint(text: str) -> str:
    """Whereabouts (Go) reads IPv4-mapped text as the IPv4 address: say so rather than let the
    preview show an IPv6 range whereabouts would never use."""
    if "::ffff:" not in text.lower():
        return ""
    return " Write an IPv4-mapped address as plain IPv4: whereabouts reads it as IPv4."


def _check_address_in(
    checks: Checks, name: str, label: str, text: str, net: IPNetwork
) -> IPAddress | None:
    if not text:
        return None
    ip = strict_ip(text)
    if ip is None:
        checks.error(name, f"{label} '{text}' is not an IP address.{_mapped_hint(text)}")
        return None
    if ip.version != net.version or ip not in net.cidr:
        checks.error(name, f"{label} {ip} is outside the range {net.cidr}.")
        return None
    return ip


def _check_routes(checks: Checks, name: str, routes: tuple[Route, ...]) -> None:
    for r in routes:
        if strict_cidr(r.dst) is None:
            checks.error(
                name, f"Route destination '{r.dst}' is not a CIDR such as 0.0.0.0/0 or 10.1.0.0/16."
            )
        if r.gw and strict_ip(r.gw) is None:
            checks.error(name, f"Route gateway '{r.gw}' is not an IP address.")


# The widest range the form accepts, per IP family. whereabouts itself has no cap (a /0
# passes its config load), but it cannot sensibly serve more:
# - IPv6: it stores each allocation under its decimal offset from the network address and
#   reads offsets back as int64 (strconv.ParseInt(.., 64)); from 2**63 on they are dropped
#   on read, the address looks free and is handed out twice. A /64 loses its upper half, but
#   whereabouts hands out the lowest free address first, so it never gets there; anything
#   wider only adds addresses it cannot keep track of. (ippam.ranges counts the lower half.)
# - IPv4: one IPPool object holds every allocation of a range (etcd caps an object at about
#   1.5 MiB, some 10-20 thousand allocations), and every ADD takes the cluster-wide lease
#   and walks the pool from the first address. A /8 (16.7 million addresses) is far beyond
#   what one pool can hold; nothing wider makes sense.
WIDEST_PREFIX = {4: 8, 6: 64}


def _too_wide(net: IPNetwork, widest: int) -> str:
    if net.version == 6:
        why = (
            "whereabouts keeps allocations as 64-bit signed offsets, so it cannot track "
            f"addresses beyond the first 2^63 of a range wider than /{widest}"
        )
    else:
        why = (
            "one IPPool object must hold every allocation of the range (etcd caps an object "
            "at about 1.5 MiB), so a pool can track only a small part of a range wider than "
            f"/{widest}"
        )
    return f"{net.cidr} is too large: {why}. Use a /{widest} or narrower range."


def _spaced(text: str) -> bool:
    """Whitespace anywhere in a value: Go's parsers take none, and whereabouts trims none."""
    return any(c.isspace() for c in text)


def _leading_zero(text: str) -> bool:
    """An IPv4 octet written with a leading zero ("010"): Go's net.ParseIP refuses it."""
    parts = text.partition("/")[0].split(".")
    return (
        len(parts) == 4
        and all(part.isascii() and part.isdigit() for part in parts)
        and any(len(part) > 1 and part.startswith("0") for part in parts)
    )


def _as_cidr(item: str) -> IPNetwork | None:
    """An exclude entry as whereabouts reads it: a CIDR, else one address."""
    net = strict_cidr(item)
    if net is None:
        ip = strict_ip(item)
        net = IPNetwork(f"{ip}/{max_prefix(ip.version)}") if ip is not None else None
    return net


def _listed(items: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


# What whereabouts does with a value that has whitespace in it, per key: its config loader
# (pkg/config) hands `range` to net.ParseCIDR and refuses the config when it fails, drops a
# `range_start`/`range_end` it cannot parse without a word, and its allocator parses each
# `exclude` entry strictly at every ADD and fails the allocation when one does not parse.
_SPACED = {
    "range": "whereabouts refuses a range it cannot parse, so no pod gets an address",
    "range_start": "whereabouts silently ignores a range_start it cannot parse and starts "
    "at the beginning of the range",
    "range_end": "whereabouts silently ignores a range_end it cannot parse and allocates "
    "up to the end of the range",
    "gateway": "whereabouts would hand pods no usable gateway",
}


def _check_exclude(
    checks: Checks,
    ipam: WhereaboutsIPAM,
    net: IPNetwork | None,
    start: IPAddress | None = None,
    end: IPAddress | None = None,
) -> list[IPNetwork]:
    """The exclude entries as networks. One that whereabouts cannot parse is an error (its
    allocator parses every entry at each ADD: one bad entry fails every allocation from the
    range); entries that exclude nothing whereabouts would hand out are one warning per
    cause (outside the range; outside range_start..range_end)."""
    excludes: list[IPNetwork] = []
    unparsable: list[str] = []
    outside: list[str] = []
    beyond: list[str] = []
    for item in ipam.exclude:
        ex = None if _spaced(item) else _as_cidr(item)
        if ex is None:
            unparsable.append(item)
            why = (
                "has a space in it"
                if _spaced(item)
                else "has a leading zero in an IPv4 part"
                if _leading_zero(item)
                else "is not a CIDR or an IP address"
            )
            checks.error(
                "exclude",
                f"Exclude entry '{item}' {why}: whereabouts cannot parse it and would then "
                "fail every allocation from this range. Write it as a CIDR such as "
                "10.10.0.16/28 or an address such as 10.10.0.5.",
            )
        elif net is not None and ex.version != net.version:
            checks.error(
                "exclude", f"Exclude entry '{item}' is not the same IP family as {net.cidr}."
            )
        else:
            excludes.append(ex.cidr)
            if net is not None and (ex.last < net.cidr.first or ex.first > net.cidr.last):
                outside.append(item)
            elif (start is not None and ex.last < int(start)) or (
                end is not None and ex.first > int(end)
            ):
                beyond.append(item)
    if outside and net is not None:
        many = len(outside) > 1
        checks.warn(
            "exclude",
            f"Exclude {'entries' if many else 'entry'} {_listed(outside)} "
            f"{'are' if many else 'is'} outside the range {net.cidr}: whereabouts only skips "
            f"excluded addresses of the range, so {'they change' if many else 'it changes'} "
            "nothing. Check for a typo, or remove "
            f"{'them' if many else 'it'}.",
        )
    if beyond and net is not None:
        many = len(beyond) > 1
        bounds = f"{start or IPAddress(net.cidr.first, net.version)}–"
        bounds += f"{end or IPAddress(net.cidr.last, net.version)}"
        checks.warn(
            "exclude",
            f"Exclude {'entries' if many else 'entry'} {_listed(beyond)} "
            f"{'are' if many else 'is'} outside range start and end ({bounds}): whereabouts "
            f"never hands out addresses there anyway, so {'they change' if many else 'it changes'} "
            "nothing.",
        )
    return excludes


def check_whereabouts(ipam: WhereaboutsIPAM) -> Checks:
    """Errors and warnings for a whereabouts IPAM section, keyed by its field names.

    Every field is checked whatever the others hold, so a form shows all its errors at
    once; each cause is said once, naming every value it concerns.
    """
    checks = Checks()
    for name in ("range", "range_start", "range_end", "gateway"):
        value = getattr(ipam, name)
        if _spaced(value):
            checks.error(name, f"'{value}' has a space in it: {_SPACED[name]}. Remove the spaces.")
    net = None if "range" in checks.errors else strict_cidr(ipam.range)
    if not ipam.range:
        checks.error("range", "Whereabouts needs a range, e.g. 10.10.0.0/24.")
    elif net is None and "range" not in checks.errors:
        checks.error(
            "range",
            f"'{ipam.range}' is not a CIDR. Write it as address/prefix, e.g. 10.10.0.0/24."
            + _mapped_hint(ipam.range),
        )
    start = end = None
    if net is not None:
        host_bits = (32 if net.version == 4 else 128) - net.prefixlen
        widest = WIDEST_PREFIX[net.version]
        if net.prefixlen < widest:
            checks.error("range", _too_wide(net, widest))
        if host_bits < 2:
            largest = 30 if net.version == 4 else 126
            checks.error(
                "range",
                f"{net.cidr} is too small: whereabouts needs at least 2 host bits (a /{largest} or larger).",
            )
        if "range_start" not in checks.errors:
            start = _check_address_in(checks, "range_start", "Range start", ipam.range_start, net)
        if "range_end" not in checks.errors:
            end = _check_address_in(checks, "range_end", "Range end", ipam.range_end, net)
        if start is not None and end is not None and start > end:
            checks.error("range_end", f"Range end {end} is before range start {start}; swap them.")
    else:
        for name, label in (("range_start", "Range start"), ("range_end", "Range end")):
            value = getattr(ipam, name)
            if value and name not in checks.errors and strict_ip(value) is None:
                checks.error(name, f"{label} '{value}' is not an IP address.{_mapped_hint(value)}")
    excludes = _check_exclude(checks, ipam, net, start, end)
    gateway = None
    if ipam.gateway and "gateway" not in checks.errors:
        gateway = strict_ip(ipam.gateway)
        if gateway is None:
            checks.error(
                "gateway",
                f"Gateway '{ipam.gateway}' is not an IP address.{_mapped_hint(ipam.gateway)}",
            )
        elif net is not None and (gateway.version != net.version or gateway not in net.cidr):
            # Pods get the gateway as their route's next hop: outside their own subnet it
            # is unreachable on this interface, and CNI plugins refuse or ignore it.
            checks.error(
                "gateway",
                f"Gateway {gateway} is outside the range {net.cidr}: pods on this network "
                "could not reach it. Give an address of the range.",
            )
            gateway = None
    range_ok = net is not None and not any(
        checks.errors.get(name) for name in ("range", "range_start", "range_end")
    )
    if range_ok and net is not None:
        usable = range_usable(net, start, end, excludes)
        if usable.count == 0:
            # More exclude entries (those in error) could only leave fewer addresses.
            checks.error(
                "range",
                f"No address of {net.cidr} is left to hand out after start, end and exclusions.",
            )
        elif gateway is not None and usable.is_usable(gateway):
            # whereabouts does not skip the gateway on its own: it hands out every address
            # of the range that is not excluded, the gateway's included.
            checks.warn(
                "gateway",
                f"Gateway {gateway} is inside the allocatable range and not excluded: "
                f"whereabouts will eventually give it to a pod. Add it to the exclude list "
                f"or move range start past it.",
            )
    if ipam.network_name and not is_dns1123_label(ipam.network_name):
        checks.error(
            "network_name",
            "Network name becomes part of IPPool names: use lower-case letters, digits and '-', "
            "starting and ending with a letter or digit.",
        )
    _check_routes(checks, "routes", ipam.routes)
    return checks


def check_host_local(ipam: HostLocalIPAM) -> Checks:
    checks = Checks()
    net = strict_cidr(ipam.subnet)
    if not ipam.subnet:
        checks.error("subnet", "host-local needs a subnet, e.g. 10.10.0.0/24.")
    elif net is None:
        checks.error(
            "subnet",
            f"'{ipam.subnet}' is not a CIDR. Write it as address/prefix, e.g. 10.10.0.0/24.",
        )
    else:
        start = _check_address_in(checks, "range_start", "Range start", ipam.range_start, net)
        end = _check_address_in(checks, "range_end", "Range end", ipam.range_end, net)
        if start is not None and end is not None and start > end:
            checks.error("range_end", f"Range end {end} is before range start {start}; swap them.")
        if ipam.gateway:
            _check_address_in(checks, "gateway", "Gateway", ipam.gateway, net)
    _check_routes(checks, "routes", ipam.routes)
    return checks


def check_static(ipam: StaticIPAM) -> Checks:
    checks = Checks()
    if not ipam.addresses:
        checks.error("addresses", "Give at least one address, e.g. 10.10.0.5/24.")
    for a in ipam.addresses:
        net = strict_cidr(a.address)
        if net is None:
            checks.error(
                "addresses", f"'{a.address}' is not an address with a prefix, e.g. 10.10.0.5/24."
            )
        elif a.gateway:
            _check_address_in(checks, "addresses", "Gateway", a.gateway, net)
    _check_routes(checks, "routes", ipam.routes)
    return checks
