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

from ippam.ipparse import go_cidr, go_exclude, go_ip
from ippam.naming import go_ip_string
from ippam.ranges import UsableRange, range_usable

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
    # Why whereabouts rejects the whole config (set by parse_whereabouts_ipam): then no
    # range of it hands anything out.
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
    start, end = r.range_start, r.range_end
    if start is not None and start.version == net.version and first <= int(start) <= last:
        first = int(start)
    if end is not None and end.version == net.version and first <= int(end) <= last:
        last = int(end)
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


def _parse_range_entry(
    entry: Mapping[str, Any], where: str, problems: list[str]
) -> WhereaboutsRange | None:
    raw_range = entry.get("range")
    if raw_range is None or raw_range == "":
        problems.append(f"{where} has no range and is ignored")
        return None
    if not isinstance(raw_range, str):
        problems.append(f"range {raw_range!r} is not a string")
        return None
    start: IPAddress | None = None
    end: IPAddress | None = None
    for key in ("range_start", "range_end"):
        value = entry.get(key)
        if value is None or value == "":
            continue
        ip = go_ip(value)
        if ip is None:
            problems.append(f"{key} {value!r} is not a valid IP address and is ignored")
        elif key == "range_start":
            start = ip
        else:
            end = ip
    # whereabouts' config.LoadIPAMConfig splits the range at its first "-": the left
    # part is range_start and the right part "last/prefix" gives both range_end and the
    # subnet (so the subnet comes from the last address); range_start/range_end keys
    # are then overridden. The first address must lie in that subnet.
    first_text, dash, rest = raw_range.partition("-")
    if dash:
        first_ip = go_ip(first_text)
        network = go_cidr(rest)
        if first_ip is None or network is None:
            problems.append(f"range '{raw_range}' is not a valid CIDR or first-last/prefix range")
            return None
        if not _inside(first_ip, network):
            problems.append(f"range '{raw_range}': {first_ip} is outside {network}")
            return None
        start, end = first_ip, go_ip(rest.partition("/")[0])
    else:
        network = go_cidr(raw_range)
        if network is None:
            problems.append(f"range '{raw_range}' is not a valid CIDR")
            return None
    host_bits = (32 if network.version == 4 else 128) - network.prefixlen
    if host_bits < 2:
        problems.append(
            f"range {network} has no usable address: whereabouts needs at least 2 host bits"
        )
    else:
        first, last = _first_last(WhereaboutsRange(network, start, end))
        net_first, net_last = int(network.network), int(network.network) + network.size - 1
        # Ignoring a range_start on the network address or a range_end on the last
        # address changes nothing, so only the other cases are worth a word.
        if start is not None and int(start) != first and int(start) != net_first:
            if not _inside(start, network):
                problems.append(f"range_start {start} is outside {network} and is ignored")
            else:
                problems.append(
                    f"range_start {start} is the last address of {network}; whereabouts "
                    "ignores it and starts at the first usable address"
                )
        if end is not None and int(end) != last and int(end) != net_last:
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
    if raw_exclude is None:
        raw_exclude = []
    if not isinstance(raw_exclude, list):
        problems.append(f"exclude {raw_exclude!r} is not a list: whereabouts rejects the config")
        raw_exclude = []
    seen: set[str] = set()
    for item in raw_exclude:
        if not isinstance(item, str):
            problems.append(
                f"exclude entry {item!r} is not a string: whereabouts rejects the config"
            )
            continue
        # A repeated entry excludes nothing more (whereabouts skips the same subnet twice):
        # parse and keep each text once, so 20,000 copies cost what one does.
        if item in seen:
            continue
        seen.add(item)
        ex = go_exclude(item)
        if ex is None:
            bad.append(item)
            problems.append(
                f"exclude entry '{item}' is not a valid CIDR or IP: whereabouts fails every "
                f"allocation from {network}"
            )
            continue
        if ex.version != network.version:
            problems.append(f"exclude entry '{item}' is not in the IP family of {network}")
        excludes.append(ex)
    return WhereaboutsRange(network, start, end, tuple(excludes), tuple(bad))


def parse_whereabouts_ipam(ipam: Mapping[str, Any]) -> WhereaboutsConfig:
    """Read a whereabouts ``ipam`` section. Never raises; problems in plain words."""
    problems: list[str] = []
    if not isinstance(ipam, Mapping):
        return WhereaboutsConfig(problems=("ipam is not a JSON object",))
    ranges: list[WhereaboutsRange] = []
    entries: list[tuple[str, Mapping[str, Any]]] = []
    # whereabouts prepends the top-level range to ipRanges.
    if ipam.get("range") not in (None, ""):
        entries.append(("range", ipam))
    ip_ranges = ipam.get("ipRanges")
    if ip_ranges is not None:
        if isinstance(ip_ranges, list):
            for i, item in enumerate(ip_ranges):
                if isinstance(item, Mapping):
                    entries.append((f"ipRanges[{i}]", item))
                else:
                    problems.append(f"ipRanges[{i}] is not a JSON object and is ignored")
        else:
            problems.append("ipRanges is not a list and is ignored")
    for where, entry in entries:
        r = _parse_range_entry(entry, where, problems)
        if r is not None:
            ranges.append(r)
    if not entries:
        problems.append("no range: set 'range' or 'ipRanges'")

    gateway: IPAddress | None = None
    raw_gateway = ipam.get("gateway")
    if raw_gateway not in (None, ""):
        gateway = go_ip(raw_gateway)
        if gateway is None:
            problems.append(f"gateway {raw_gateway!r} is not a valid IP address")

    network_name = ipam.get("network_name", "")
    if not isinstance(network_name, str):
        problems.append(
            f"network_name {network_name!r} is not a string: whereabouts rejects the config"
        )
        network_name = ""

    # Default true: whereabouts' IPAMConfig.UnmarshalJSON starts from
    # DefaultOverlappingIPsFeatures. A non-boolean makes its JSON decoding fail.
    overlapping = ipam.get("enable_overlapping_ranges", True)
    if overlapping is None:
        overlapping = True
    if not isinstance(overlapping, bool):
        problems.append(
            f"enable_overlapping_ranges {overlapping!r} is not true or false: "
            "whereabouts rejects the config"
        )
        overlapping = True

    slice_size = ipam.get("node_slice_size", "")
    if slice_size is None:
        slice_size = ""
    if not isinstance(slice_size, str):
        problems.append(
            f'node_slice_size {slice_size!r} is not a string such as "/28": '
            "whereabouts rejects the config"
        )
        slice_size = ""

    routes: list[dict] = []
    raw_routes = ipam.get("routes") or []
    if isinstance(raw_routes, list):
        for i, route in enumerate(raw_routes):
            if isinstance(route, dict):
                routes.append(route)
            else:
                problems.append(f"routes[{i}] is not a JSON object and is ignored")
    else:
        problems.append("routes is not a list and is ignored")

    refusals = [p for p in problems if "whereabouts rejects the config" in p]
    if gateway is None and raw_gateway not in (None, ""):
        # LoadIPAMConfig fails on a gateway it cannot parse.
        refusals.append(f"gateway {raw_gateway!r} is not a valid IP address")
    refusal = refusals[0] if refusals else ""
    if refusal:
        ranges = [dataclasses.replace(r, refusal=refusal) for r in ranges]
    return WhereaboutsConfig(
        refusal=refusal,
        ranges=tuple(ranges),
        gateway=gateway,
        network_name=network_name,
        enable_overlapping_ranges=overlapping,
        node_slice_size=slice_size,
        routes=tuple(routes),
        problems=tuple(problems),
    )
