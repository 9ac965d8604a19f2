"""Whereabouts IPAM config: parsing and "usable address" arithmetic.

Pure module (no Django, no kubernetes client). The rules mirror whereabouts'
``pkg/config`` (how ``range``/``ipRanges``/``range_start``/``range_end``/``exclude`` are
read) and ``pkg/iphelpers`` (which addresses of a range it will hand out). Counting is
done with netaddr ``IPSet`` arithmetic, never by enumerating addresses: an IPv6 /64 has
2**64 of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from netaddr import AddrFormatError, IPAddress, IPNetwork, IPRange, IPSet

__all__ = [
    "WhereaboutsConfig",
    "WhereaboutsRange",
    "gateway_in_usable",
    "parse_whereabouts_ipam",
    "usable_addresses",
]


@dataclass(frozen=True)
class WhereaboutsRange:
    """One whereabouts range: the subnet, optional start/end and exclusions."""

    network: IPNetwork
    range_start: IPAddress | None = None
    range_end: IPAddress | None = None
    exclude: tuple[IPNetwork, ...] = ()

    @property
    def cidr(self) -> str:
        """The range as whereabouts names its IPPool after it (network address/prefix)."""
        return str(self.network.cidr)

    def usable(self) -> IPSet:
        return usable_addresses(self)

    def usable_count(self) -> int:
        return self.usable().size


@dataclass(frozen=True)
class WhereaboutsConfig:
    ranges: tuple[WhereaboutsRange, ...] = ()
    gateway: IPAddress | None = None
    network_name: str = ""
    enable_overlapping_ranges: bool = True
    node_slice_size: str = ""
    routes: tuple[dict, ...] = ()
    problems: tuple[str, ...] = field(default=())

    def usable(self) -> IPSet:
        """All usable addresses over every range (overlaps counted once)."""
        total = IPSet()
        for r in self.ranges:
            total |= r.usable()
        return total


def usable_addresses(r: WhereaboutsRange) -> IPSet:
    """Addresses whereabouts may hand out from ``r``.

    From max(network+1, range_start) to min(last-1, range_end), minus ``exclude``.
    whereabouts' ``iphelpers.GetIPRange`` skips the first and the last address of the
    subnet for IPv6 as well as IPv4 (it does not special-case IPv6, which has no
    broadcast), so we do the same: the last address of an IPv6 range is never handed
    out. Subnets with fewer than 2 host bits (/31, /32, /127, /128) are rejected by
    whereabouts ("net mask is too short"), so they have no usable address.
    range_start/range_end outside the subnet are ignored, as whereabouts does.
    """
    net = r.network.cidr
    host_bits = (32 if net.version == 4 else 128) - net.prefixlen
    if host_bits < 2:
        return IPSet()
    first = int(net.network) + 1
    last = int(net.network) + net.size - 2
    if r.range_start is not None and _inside(r.range_start, net):
        first = max(first, int(r.range_start))
    if r.range_end is not None and _inside(r.range_end, net):
        last = min(last, int(r.range_end))
    if first > last:
        return IPSet()
    usable = IPSet(IPRange(IPAddress(first, net.version), IPAddress(last, net.version)))
    for ex in r.exclude:
        if ex.version == net.version:
            usable.remove(ex)
    return usable


def gateway_in_usable(config: WhereaboutsConfig, r: WhereaboutsRange) -> bool:
    """True when the configured gateway is an address whereabouts could hand out.

    whereabouts does not exclude the gateway by itself; a config that leaves it in
    the usable set will eventually give the gateway's address to a pod.
    """
    if config.gateway is None:
        return False
    return config.gateway in usable_addresses(r)


def _inside(ip: IPAddress, net: IPNetwork) -> bool:
    return ip.version == net.version and ip in net


def _parse_ip(value: Any) -> IPAddress | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return IPAddress(text)
    except (AddrFormatError, ValueError, TypeError):
        return None


def _parse_cidr(value: str) -> IPNetwork | None:
    text = value.strip()
    if "/" not in text:
        return None
    addr, _, prefix = text.partition("/")
    ip = _parse_ip(addr)
    if ip is None or not prefix.isascii() or not prefix.isdigit():
        return None
    plen = int(prefix)
    if plen > (32 if ip.version == 4 else 128):
        return None
    return IPNetwork(f"{ip}/{plen}")


def _parse_range_entry(
    entry: Mapping[str, Any], where: str, problems: list[str]
) -> WhereaboutsRange | None:
    raw_range = entry.get("range")
    if raw_range is None or raw_range == "":
        problems.append(f"{where} has no range")
        return None
    if not isinstance(raw_range, str):
        problems.append(f"{where} range {raw_range!r} is not a string")
        return None
    start: IPAddress | None = None
    end: IPAddress | None = None
    text = raw_range.strip()
    # whereabouts accepts "first-last/prefix": the network is first/prefix and the
    # two addresses become range_start and range_end.
    addr_part, slash, prefix = text.partition("/")
    if "-" in addr_part and slash:
        first_text, _, last_text = addr_part.partition("-")
        start = _parse_ip(first_text)
        end = _parse_ip(last_text)
        if start is None or end is None:
            problems.append(f"range '{raw_range}' is not a valid CIDR or first-last/prefix range")
            return None
        network = _parse_cidr(f"{first_text}/{prefix}")
    else:
        network = _parse_cidr(text)
    if network is None:
        problems.append(f"range '{raw_range}' is not a valid CIDR")
        return None
    network = network.cidr
    for key in ("range_start", "range_end"):
        value = entry.get(key)
        if value is None or value == "":
            continue
        ip = _parse_ip(value)
        if ip is None:
            problems.append(f"{key} {value!r} is not a valid IP address and is ignored")
            continue
        if key == "range_start":
            start = ip
        else:
            end = ip
    checked: dict[str, IPAddress | None] = {"range_start": start, "range_end": end}
    for key, ip in checked.items():
        if ip is not None and not _inside(ip, network):
            problems.append(f"{key} {ip} is outside {network} and is ignored")
    if (
        start is not None
        and end is not None
        and _inside(start, network)
        and _inside(end, network)
        and int(start) > int(end)
    ):
        problems.append(f"range_start {start} is after range_end {end}: no usable address")
    excludes: list[IPNetwork] = []
    raw_exclude = entry.get("exclude") or []
    if isinstance(raw_exclude, str):
        raw_exclude = [raw_exclude]
    if not isinstance(raw_exclude, list):
        problems.append(f"exclude {raw_exclude!r} is not a list and is ignored")
        raw_exclude = []
    for item in raw_exclude:
        if not isinstance(item, str):
            problems.append(f"exclude entry {item!r} is not a string and is ignored")
            continue
        ex = _parse_cidr(item)
        if ex is None:
            ip = _parse_ip(item)
            ex = IPNetwork(f"{ip}/{32 if ip.version == 4 else 128}") if ip is not None else None
        if ex is None:
            problems.append(f"exclude entry '{item}' is not a valid CIDR or IP and is ignored")
            continue
        if ex.version != network.version:
            problems.append(f"exclude entry '{item}' is not the same IP family as {network}")
        excludes.append(ex.cidr)
    host_bits = (32 if network.version == 4 else 128) - network.prefixlen
    if host_bits < 2:
        problems.append(f"range {network} is too small: whereabouts needs at least 2 host bits")
    return WhereaboutsRange(network, start, end, tuple(excludes))


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
        gateway = _parse_ip(raw_gateway)
        if gateway is None:
            problems.append(f"gateway {raw_gateway!r} is not a valid IP address")

    network_name = ipam.get("network_name", "")
    if not isinstance(network_name, str):
        problems.append(f"network_name {network_name!r} is not a string and is ignored")
        network_name = ""

    overlapping = ipam.get("enable_overlapping_ranges", True)
    if not isinstance(overlapping, bool):
        problems.append(
            f"enable_overlapping_ranges {overlapping!r} is not true or false; "
            "whereabouts' default (true) applies"
        )
        overlapping = True

    slice_size = ipam.get("node_slice_size", "")
    if isinstance(slice_size, int) and not isinstance(slice_size, bool):
        slice_size = str(slice_size)
    if not isinstance(slice_size, str):
        problems.append(f"node_slice_size {slice_size!r} is not a string and is ignored")
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

    return WhereaboutsConfig(
        ranges=tuple(ranges),
        gateway=gateway,
        network_name=network_name,
        enable_overlapping_ranges=overlapping,
        node_slice_size=slice_size,
        routes=tuple(routes),
        problems=tuple(problems),
    )
