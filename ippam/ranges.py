"""Which addresses of a whereabouts range can be handed out: the one implementation.

Pure module (no Django, no kubernetes client). The sync's counters, the pool map and the
NAD form all ask here, so they cannot disagree. Everything is interval arithmetic on
integers: the excluded intervals are sorted and merged once, clipped to the candidates, and
counts, membership and free blocks are read off them. Nothing enumerates addresses (an IPv6
/64 has 2**64) or removes them one by one from a set (quadratic with thousands of
excludes); the cost is O(n log n) in the number of exclude entries.

What whereabouts does (pkg/iphelpers ``GetIPRange``, pkg/allocate ``IterateForAssignment``,
pkg/storage/kubernetes ``toIPReservationList``), mirrored here:

- candidates run from the first to the last *usable* address: network+1 .. last-1, for
  IPv6 too (``LastUsableIP`` is ``DecIP(SubnetBroadcastIP)`` for both families);
- fewer than 2 host bits (/31, /32, /127, /128): no usable address (``HasUsableIPs``);
- ``range_start`` counts only inside network+1 .. last-1, ``range_end`` only inside the
  effective start .. last-1; otherwise each is silently ignored, not clamped (a reversed
  end gives the rest of the subnet);
- ``exclude`` subnets are skipped; the allocator parses each entry strictly (Go's
  ``net.ParseCIDR``, then ``net.ParseIP``: no leading zeros, no spaces) on every ADD, and
  one entry that does not parse makes every allocation from the range fail ("could not
  parse exclude range"), so nothing is usable;
- ``range_start``/``range_end`` compare as 16 bytes (``CompareIPs``): an IPv4 one can fall
  inside an IPv6 range that spans ::ffff:0:0/96 (see ``as_compared``);
- offsets from the network address of 2**63 and more are not usable. whereabouts stores an
  allocation under its decimal offset and reads offsets back with ``strconv.ParseInt(..,
  64)``: a larger one is logged and dropped, so the address looks free again and is handed
  out twice (its README: "only the first /65 range is addressable"). Counting those as
  usable would promise addresses whereabouts cannot keep track of.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from netaddr import IPAddress, IPNetwork

from ippam.ipparse import go_cidr, go_exclude, max_prefix

__all__ = [
    "EVERY_ALLOCATION_FAILS",
    "MAX_OFFSET",
    "PoolUsable",
    "UsableRange",
    "as_compared",
    "exclude_unparsed",
    "merge_intervals",
    "pool_usable",
    "range_usable",
    "stored_range_usable",
]

# The largest offset whereabouts can read back (int64), see the module docstring.
MAX_OFFSET = 2**63 - 1

Interval = tuple[int, int]  # inclusive [first, last] of integer addresses

# How the pages say that whereabouts hands out nothing from a range.
EVERY_ALLOCATION_FAILS = "every allocation from this range fails"


def exclude_unparsed(entry: str) -> str:
    """Why: IterateForAssignment parses every exclude entry (Go's strict net.ParseCIDR, then
    net.ParseIP) before it looks for an address, and returns its error for any of them."""
    return f"exclude entry `{entry}` cannot be parsed"


def refused(reason: str) -> str:
    """The verdict on each range of a config whereabouts' LoadIPAMConfig rejects."""
    return f"{EVERY_ALLOCATION_FAILS}: whereabouts rejects the config ({reason})"


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping, non-adjacent intervals covering the same addresses."""
    merged: list[Interval] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1] + 1:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


@dataclass(frozen=True)
class UsableRange:
    """The addresses whereabouts may hand out from one range (before any allocation).

    ``first``..``last`` are the candidates (empty when first > last); ``excluded`` the
    merged excluded intervals inside them; ``error`` says why whereabouts would refuse
    every allocation (then nothing is usable, whatever the numbers say).
    """

    network: IPNetwork
    first: int
    last: int
    excluded: tuple[Interval, ...] = ()
    error: str = ""

    @property
    def count(self) -> int:
        if self.error or self.first > self.last:
            return 0
        return self.last - self.first + 1 - sum(hi - lo + 1 for lo, hi in self.excluded)

    def free_blocks(self) -> Iterator[Interval]:
        """The usable addresses as ascending inclusive intervals."""
        if self.error or self.first > self.last:
            return
        at = self.first
        for lo, hi in self.excluded:
            if lo > at:
                yield at, lo - 1
            at = hi + 1
        if at <= self.last:
            yield at, self.last

    def is_usable(self, ip: int | IPAddress) -> bool:
        if isinstance(ip, IPAddress):
            if ip.version != self.network.version:
                return False
            ip = int(ip)
        if self.error or not self.first <= ip <= self.last:
            return False
        i = bisect.bisect_right(self.excluded, (ip, 2**128)) - 1
        return i < 0 or self.excluded[i][1] < ip


def as_compared(ip: IPAddress | None, net: IPNetwork) -> int | None:
    """``ip`` as iphelpers.CompareIPs sets it against ``net``'s addresses: both as 16 bytes,
    an IPv4 address as ::ffff:a.b.c.d. So an IPv4 range_start or range_end can fall inside
    an IPv6 range that spans ::ffff:0:0/96; an IPv6 one never inside an IPv4 range (an
    address in ::ffff:0:0/96 is IPv4 to Go)."""
    if ip is None:
        return None
    if ip.version == net.version:
        return int(ip)
    return 0xFFFF << 32 | int(ip) if net.version == 6 else None


def range_usable(
    network: IPNetwork,
    range_start: IPAddress | None = None,
    range_end: IPAddress | None = None,
    exclude: Iterable[IPNetwork | str] = (),
    *,
    error: str = "",
) -> UsableRange:
    """What whereabouts may hand out from ``network`` (any CIDR; its network counts).

    ``exclude`` entries are networks or the text of a config (read as whereabouts'
    allocator reads it, strictly); one that does not parse is an error. Entries of the
    other IP family exclude nothing. ``error``: a verdict found elsewhere (e.g. a config
    whereabouts rejects): then nothing is usable.
    """
    net = network.cidr
    base = int(net.network)
    host_bits = max_prefix(net.version) - net.prefixlen
    if host_bits < 2:
        return UsableRange(net, 1, 0, error=error)
    first = base + 1
    last = min(base + net.size - 2, base + MAX_OFFSET)
    start = as_compared(range_start, net)
    if start is not None and first <= start <= base + net.size - 2:
        if range_start is not None and range_start.version != net.version:
            # IterateForAssignment walks from it while ipnet.Contains(ip): never, for IPv4.
            error = error or (
                f"{EVERY_ALLOCATION_FAILS}: range_start {range_start} is IPv4, and whereabouts "
                f"finds no address of {net} from it"
            )
        first = start
    end = as_compared(range_end, net)
    if end is not None and first <= end <= last:
        last = end
    spans: list[Interval] = []
    for item in exclude:
        ex = go_exclude(item) if isinstance(item, str) else item
        if ex is None:
            error = error or f"{EVERY_ALLOCATION_FAILS}: {exclude_unparsed(str(item))}"
            continue
        if ex.version != net.version:
            continue
        lo, hi = max(ex.first, first), min(ex.last, last)
        if lo <= hi:
            spans.append((lo, hi))
    return UsableRange(net, first, last, tuple(merge_intervals(spans)), error)


def stored_range_usable(
    cidr: str,
    range_start: IPAddress | None,
    range_end: IPAddress | None,
    exclude: Iterable[str],
    verdict: str,
) -> UsableRange | None:
    """A NAD range as the database keeps it (ippam.models.NADRange): ``verdict`` is why
    whereabouts fails every allocation from it, as the sync found it from the whole config
    (a config whereabouts rejects, which the stored columns alone cannot show). None when
    ``cidr`` is no CIDR."""
    network = go_cidr(cidr)
    if network is None:
        return None
    return range_usable(network, range_start, range_end, exclude, error=verdict)


@dataclass(frozen=True)
class PoolUsable:
    """What whereabouts may hand out of one IPPool: the union over the NAD ranges that feed
    it (several NADs can share a pool through the same range and network_name)."""

    network: IPNetwork
    blocks: tuple[Interval, ...]  # merged free intervals, ascending
    errors: tuple[str, ...] = ()  # refusals of the ranges that feed the pool

    @property
    def count(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.blocks)

    def is_usable(self, ip: int | IPAddress) -> bool:
        if isinstance(ip, IPAddress):
            if ip.version != self.network.version:
                return False
            ip = int(ip)
        i = bisect.bisect_right(self.blocks, (ip, 2**128)) - 1
        return i >= 0 and self.blocks[i][1] >= ip

    def count_in(self, lo: int, hi: int) -> int:
        """Usable addresses within [lo, hi]."""
        i = max(bisect.bisect_right(self.blocks, (lo, 2**128)) - 1, 0)
        total = 0
        for first, last in self.blocks[i:]:
            if first > hi:
                break
            total += max(0, min(last, hi) - max(first, lo) + 1)
        return total


def pool_usable(network: IPNetwork, ranges: Iterable[UsableRange | None] | None) -> PoolUsable:
    """The pool's usable addresses from the ranges feeding it; with none (``None`` or
    empty: no NAD we know of feeds the pool), its whole range as whereabouts would use it."""
    given = list(ranges or ())
    feeding = [r for r in given if r is not None] if given else [range_usable(network)]
    blocks = merge_intervals(b for r in feeding for b in r.free_blocks())
    errors = tuple(dict.fromkeys(r.error for r in feeding if r.error))
    return PoolUsable(network.cidr, tuple(blocks), errors)
