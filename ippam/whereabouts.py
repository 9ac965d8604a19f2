"""Whereabouts IPAM config: parsing and "usable address" arithmetic.

Pure module (no Django, no kubernetes client). The rules mirror whereabouts'
``pkg/config`` (how ``range``/``ipRanges``/``range_start``/``range_end``/``exclude`` are
read); which addresses a range hands out is ippam.ranges' business.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from netaddr import IPAddress, IPNetwork

from ippam.ipparse import go_cidr, go_cidr_ip, go_exclude, go_ip, go_strict_cidr, go_strict_ip
from ippam.naming import go_ip_string
from ippam.ranges import (
    UsableRange,
    as_compared,
    exclude_unparsed,
    range_usable,
    refused,
)

__all__ = [
    "WhereaboutsConfig",
    "WhereaboutsRange",
    "gateway_in_usable",
    "parse_whereabouts_ipam",
]


@dataclass(frozen=True)
class WhereaboutsRange:
    """One whereabouts range: the subnet, optional start/end and exclusions."""

    network: IPNetwork
    range_start: IPAddress | None = None
    range_end: IPAddress | None = None
    exclude: tuple[IPNetwork, ...] = ()
    # Exclude entries that are neither a CIDR nor an IP. whereabouts' IterateForAssignment
    # fails every allocation from such a range ("could not parse exclude range"), so a
    # range with any of these has no usable address.
    bad_exclude: tuple[str, ...] = ()
    # Set by parse_whereabouts_ipam when whereabouts rejects the whole config (ranges.refused
    # of the reason): then no range of it hands anything out.
    refusal: str = ""

    @property
    def cidr(self) -> str:
        """The range as whereabouts spells it in ``spec.range`` and the IPPool name."""
        net = self.network.cidr
        return f"{go_ip_string(net.network)}/{net.prefixlen}"

    def usable(self) -> UsableRange:
        """What whereabouts may hand out from this range (ippam.ranges)."""
        return range_usable(
            self.network,
            self.range_start,
            self.range_end,
            (*self.exclude, *self.bad_exclude),
            error=self.refusal,
        )

    def usable_count(self) -> int:
        return self.usable().count

    @property
    def verdict(self) -> str:
        """Why whereabouts fails every allocation from this range ("" when it hands out
        addresses): what the NAD and pool pages say whereabouts will do."""
        return self.usable().error


@dataclass(frozen=True)
class WhereaboutsConfig:
    ranges: tuple[WhereaboutsRange, ...] = ()
    gateway: IPAddress | None = None
    network_name: str = ""
    enable_overlapping_ranges: bool = True
    node_slice_size: str = ""
    routes: tuple[dict, ...] = ()
    problems: tuple[str, ...] = field(default=())
    # The first reason whereabouts' config loading (LoadIPAMConfig, JSON decoding of the
    # IPAM section) rejects this config; every ADD then fails.
    refusal: str = ""


def _first_last(r: WhereaboutsRange) -> tuple[int, int]:
    """First and last candidate as integers, per ``iphelpers.GetIPRange`` (needs >= 2 host
    bits), before ippam.ranges' offset cap: for the sentences about ignored start/end."""
    net = r.network.cidr
    first = int(net.network) + 1
    last = int(net.network) + net.size - 2
    start, end = as_compared(r.range_start, net), as_compared(r.range_end, net)
    if start is not None and first <= start <= last:
        first = start
    if end is not None and first <= end <= last:
        last = end
    return first, last


def gateway_in_usable(config: WhereaboutsConfig, r: WhereaboutsRange) -> bool:
    """True when the configured gateway is an address whereabouts could hand out.

    whereabouts does not exclude the gateway by itself; a config that leaves it in
    the usable set will eventually give the gateway's address to a pod.
    """
    if config.gateway is None:
        return False
    return r.usable().is_usable(config.gateway)


def _inside(ip: IPAddress, net: IPNetwork) -> bool:
    return ip.version == net.version and ip in net


def _inside_as_compared(ip: IPAddress, net: IPNetwork) -> bool:
    """``ip`` is within ``net``'s usable span as GetIPRange compares (16 bytes)."""
    value = as_compared(ip, net)
    return value is not None and int(net.network) < value < int(net.network) + net.size - 1


# --- how Go's encoding/json decodes the ipam section --------------------------------------
#
# whereabouts decodes the section into IPAMConfig (pkg/types, through IPAMConfig's
# UnmarshalJSON alias struct). Go matches JSON keys to fields case-insensitively (an exact
# match first) and fails the whole decoding on a value of the wrong JSON type (a number
# where a string belongs, a fraction where an int does); LoadIPAMConfig then fails every
# ADD. null leaves a field at its zero value.

_STR, _INT, _BOOL = "a string", "an integer", "true or false"
_STRS, _ANY_OBJ = "a list of strings", "an object"
# net.IP decodes through UnmarshalText (Go's strict net.ParseIP; "" and null are nil); a
# CNI route's dst through types.IPNet.UnmarshalJSON (net.ParseCIDR, null included).
_IP, _CIDR = "an IP address (Go's net.ParseIP)", "a CIDR (Go's net.ParseCIDR)"
_IPAM_FIELDS: dict[str, Any] = {
    **dict.fromkeys(
        (
            "name",
            "type",
            "datastore",
            "node_slice_size",
            "range",
            "range_start",
            "range_end",
            "gateway",
            "etcd_host",
            "etcd_username",
            "etcd_password",
            "etcd_key_file",
            "etcd_cert_file",
            "etcd_ca_cert_file",
            "log_file",
            "log_level",
            "reconciler_cron_expression",
            "configuration_path",
            "podname",
            "podnamespace",
            "network_name",
        ),
        _STR,
    ),
    **dict.fromkeys(
        ("leader_lease_duration", "leader_renew_deadline", "leader_retry_period", "sleep_for_race"),
        _INT,
    ),
    "enable_overlapping_ranges": _BOOL,
    "exclude": _STRS,
    "ipranges": "a list of range objects",
    "routes": "a list of route objects",
    "addresses": "a list of address objects",
    "dns": {"nameservers": _STRS, "domain": _STR, "search": _STRS, "options": _STRS},
    "kubernetes": {"kubeconfig": _STR, "k8s_api_root": _STR},
}
_RANGE_FIELDS: dict[str, Any] = {
    "exclude": _STRS,
    "range": _STR,
    "range_start": _IP,
    "range_end": _IP,
}
_ADDRESS_FIELDS: dict[str, Any] = {"address": _STR, "gateway": _IP}
_ROUTE_FIELDS: dict[str, Any] = {
    "dst": _CIDR,
    "gw": _IP,
    **dict.fromkeys(("mtu", "advmss", "priority", "table", "scope"), _INT),
}
# Field names as the config spells them (the map above is keyed case-folded).
_SHOWN = {
    "ipranges": "ipRanges",
    "name": "Name",
    "podname": "PodName",
    "podnamespace": "PodNamespace",
}
_ITEMS = {"ipranges": _RANGE_FIELDS, "addresses": _ADDRESS_FIELDS, "routes": _ROUTE_FIELDS}
_INT64 = range(-(2**63), 2**63)


def _field_values(obj: Mapping[str, Any], fields: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(field, value) for each key of ``obj`` in document order, a key matched to a field
    as Go's encoding/json matches it: ASCII case-insensitively. Unknown keys dropped."""
    out = []
    # Every occurrence of a repeated key (ippam.cniconfig.GoObject), as Go's decoder sees it.
    for key, value in getattr(obj, "pairs", None) or obj.items():
        if isinstance(key, str) and key.isascii() and key.lower() in fields:
            out.append((key.lower(), value))
    return out


def _folded(obj: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """``obj``'s values by field name: the last key of a field wins, as in Go."""
    return dict(_field_values(obj, fields))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    return "a list" if isinstance(value, list) else "an object"


def _type_error(value: Any, want: Any) -> bool:
    """True when encoding/json cannot decode ``value`` into a field of type ``want``."""
    if want == _CIDR:
        return not isinstance(value, str) or go_strict_cidr(value) is None
    if value is None:
        return False
    if want == _IP:
        return not isinstance(value, str) or (value != "" and go_strict_ip(value) is None)
    if want == _STR:
        return not isinstance(value, str)
    if want == _INT:
        return isinstance(value, bool) or not isinstance(value, int) or value not in _INT64
    if want == _BOOL:
        return not isinstance(value, bool)
    if want == _STRS:
        return not isinstance(value, list) or any(
            v is not None and not isinstance(v, str) for v in value
        )
    if isinstance(want, dict):
        return not isinstance(value, Mapping) or any(
            _type_error(v, want[k]) for k, v in _field_values(value, want)
        )
    return False


def _type_refusals(ipam: Mapping[str, Any]) -> list[str]:
    """Why encoding/json fails on the section's types (empty when it decodes)."""
    out: list[str] = []
    for name, value in _field_values(ipam, _IPAM_FIELDS):
        want = _IPAM_FIELDS[name]
        shown = _SHOWN.get(name, name)
        if value is None:
            continue
        if name in _ITEMS:
            if not isinstance(value, list):
                out.append(f"{shown} is {_kind(value)}, not {want}")
                continue
            inner = _ITEMS[name]
            for i, item in enumerate(value):
                if item is None:
                    continue
                if not isinstance(item, Mapping):
                    out.append(f"{shown}[{i}] is {_kind(item)}, not an object")
                    continue
                for key, v in _field_values(item, inner):
                    if _type_error(v, inner[key]):
                        out.append(f"{shown}[{i}].{key} is {_kind(v)}, not {inner[key]}")
        elif want == _STRS and isinstance(value, list):
            bad = [v for v in value if v is not None and not isinstance(v, str)]
            if bad:
                out.append(f"{shown} holds {_kind(bad[0])}, not only strings")
        elif _type_error(value, want):
            out.append(
                f"{shown} is {_kind(value)}, not {want if isinstance(want, str) else _ANY_OBJ}"
            )
    return out


def _meant(text: str) -> WhereaboutsRange | None:
    """The range a refused text means once its spaces are trimmed (None if none): kept, so
    the pool of that name shows that whereabouts hands nothing out for this config."""
    network = go_cidr(text.strip()) if text.strip() != text else None
    return WhereaboutsRange(network) if network is not None else None


def _parse_range_entry(
    entry: Mapping[str, Any], where: str, problems: list[str], refusals: list[str], *, top: bool
) -> WhereaboutsRange | None:
    """One range as LoadIPAMConfig reads it. ``top``: the top-level range, whose
    range_start/range_end go through ``backwardsCompatibleIPAddress`` (ParseIPSloppy, a
    failure silently dropped); an ``ipRanges`` entry's are ``net.IP`` decoded by
    encoding/json (Go's strict net.ParseIP, a failure rejecting the whole config)."""
    raw_range = entry.get("range")
    if not isinstance(raw_range, str) or raw_range == "":
        refusals.append(f"{where} has no range")
        return None
    start: IPAddress | None = None
    end: IPAddress | None = None
    for key in ("range_start", "range_end"):
        value = entry.get(key)
        if not isinstance(value, str) or value == "":
            continue
        ip = go_ip(value) if top else go_strict_ip(value)
        if ip is None and top:
            problems.append(
                f"{key} '{value}' is not an IP address as whereabouts reads it; whereabouts "
                "silently ignores it"
            )
        elif ip is None:
            continue  # encoding/json refuses it: a refusal of _type_refusals
        elif key == "range_start":
            start = ip
        else:
            end = ip
    # LoadIPAMConfig splits the range at its first "-": the left part is range_start and
    # the right part "last/prefix" gives both range_end and the subnet (so the subnet
    # comes from the last address); range_start/range_end keys are then overridden. The
    # first address must lie in that subnet.
    first_text, dash, rest = raw_range.partition("-")
    if dash:
        first_ip = go_ip(first_text)
        last = go_cidr_ip(rest)
        if first_ip is None or last is None:
            refusals.append(f"{where} '{raw_range}' is not a CIDR or a first-last/prefix range")
            return _meant(rest)
        end, network = last
        if not _inside(first_ip, network):
            refusals.append(f"{where} '{raw_range}': {first_ip} is outside {network}")
            return None
        start = first_ip
    else:
        parsed = go_cidr(raw_range)
        if parsed is None:
            refusals.append(f"{where} '{raw_range}' is not a CIDR")
            return _meant(raw_range)
        network = parsed
    host_bits = (32 if network.version == 4 else 128) - network.prefixlen
    if host_bits < 2:
        problems.append(
            f"range {network} has no usable address: whereabouts needs at least 2 host bits"
        )
    else:
        first, last_int = _first_last(WhereaboutsRange(network, start, end))
        net_first, net_last = int(network.network), int(network.network) + network.size - 1
        # Ignoring a range_start on the network address or a range_end on the last
        # address changes nothing, so only the other cases are worth a word.
        if (
            start is not None
            and start.version != network.version
            and _inside_as_compared(start, network)
        ):
            problems.append(
                f"every allocation from {network} fails: range_start {start} is IPv4, and "
                "whereabouts finds no address of the range from it"
            )
        elif start is not None and as_compared(start, network) != first and int(start) != net_first:
            if not _inside(start, network):
                problems.append(f"range_start {start} is outside {network} and is ignored")
            else:
                problems.append(
                    f"range_start {start} is the last address of {network}; whereabouts "
                    "ignores it and starts at the first usable address"
                )
        if end is not None and as_compared(end, network) != last_int and int(end) != net_last:
            if not _inside(end, network):
                problems.append(f"range_end {end} is outside {network} and is ignored")
            elif int(end) == net_first:
                problems.append(
                    f"range_end {end} is the network address of {network}; whereabouts "
                    "ignores it and ends at the last usable address"
                )
            else:
                problems.append(
                    f"range_end {end} is before range_start {start}; whereabouts ignores it "
                    "and ends at the last usable address"
                )
    excludes: list[IPNetwork] = []
    bad: list[str] = []
    raw_exclude = entry.get("exclude")
    seen: set[str] = set()
    for item in raw_exclude if isinstance(raw_exclude, list) else ():
        if item is None:
            item = ""  # encoding/json leaves a null list element at the zero value ""
        if not isinstance(item, str):
            continue  # a type refusal (_type_refusals)
        # A repeated entry excludes nothing more (whereabouts skips the same subnet twice):
        # parse and keep each text once, so 20,000 copies cost what one does.
        if item in seen:
            continue
        seen.add(item)
        ex = go_exclude(item)
        if ex is None:
            bad.append(item)
            problems.append(f"every allocation from {network} fails: {exclude_unparsed(item)}")
            continue
        if ex.version != network.version:
            problems.append(
                f"exclude entry '{item}' is not in the IP family of {network} "
                f"(whereabouts reads it as {ex}) and excludes nothing"
            )
        excludes.append(ex)
    return WhereaboutsRange(network, start, end, tuple(excludes), tuple(bad))


def parse_whereabouts_ipam(ipam: Mapping[str, Any]) -> WhereaboutsConfig:
    """Read a whereabouts ``ipam`` section as whereabouts' LoadIPAMConfig does. Never
    raises; problems in plain words. A reason whereabouts rejects the whole config is a
    problem that ends in "whereabouts rejects the config" and the config's ``refusal``."""
    problems: list[str] = []
    if not isinstance(ipam, Mapping):
        return WhereaboutsConfig(problems=("ipam is not a JSON object",))
    refusals = _type_refusals(ipam)
    view = _folded(ipam, _IPAM_FIELDS)
    ranges: list[WhereaboutsRange] = []
    # whereabouts prepends the top-level range to ipRanges.
    if isinstance(view.get("range"), str) and view["range"] != "":
        r = _parse_range_entry(view, "range", problems, refusals, top=True)
        if r is not None:
            ranges.append(r)
    ip_ranges = view.get("ipranges")
    for i, item in enumerate(ip_ranges if isinstance(ip_ranges, list) else ()):
        if item is None or isinstance(item, Mapping):
            entry = _folded(item or {}, _RANGE_FIELDS)
            r = _parse_range_entry(entry, f"ipRanges[{i}]", problems, refusals, top=False)
            if r is not None:
                ranges.append(r)
    if not view.get("range") and not ip_ranges:
        problems.append("no range: set 'range' or 'ipRanges'")

    gateway: IPAddress | None = None
    raw_gateway = view.get("gateway")
    if isinstance(raw_gateway, str) and raw_gateway != "":
        gateway = go_ip(raw_gateway)
        if gateway is None:
            refusals.append(f"gateway '{raw_gateway}' is not an IP address")
    addresses = view.get("addresses")
    for i, item in enumerate(addresses if isinstance(addresses, list) else ()):
        address = (
            _folded(item, _ADDRESS_FIELDS).get("address") if isinstance(item, Mapping) else None
        )
        if isinstance(address, str) and go_cidr(address) is None:
            refusals.append(f"addresses[{i}].address '{address}' is not a CIDR")

    network_name = view.get("network_name")
    overlapping = view.get("enable_overlapping_ranges")
    slice_size = view.get("node_slice_size")
    raw_routes = view.get("routes")
    routes = (
        tuple(r for r in raw_routes if isinstance(r, dict)) if isinstance(raw_routes, list) else ()
    )

    problems.extend(f"{reason}: whereabouts rejects the config" for reason in refusals)
    refusal = refusals[0] if refusals else ""
    if refusal:
        ranges = [dataclasses.replace(r, refusal=refused(refusal)) for r in ranges]
    return WhereaboutsConfig(
        refusal=refusal,
        ranges=tuple(ranges),
        gateway=gateway,
        network_name=network_name if isinstance(network_name, str) else "",
        # Default true: IPAMConfig.UnmarshalJSON starts from DefaultOverlappingIPsFeatures.
        enable_overlapping_ranges=overlapping if isinstance(overlapping, bool) else True,
        node_slice_size=slice_size if isinstance(slice_size, str) else "",
        routes=routes,
        problems=tuple(problems),
    )
