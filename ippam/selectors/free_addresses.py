"""A pool's next free addresses (in whereabouts' order) and its largest free blocks, for the
pool page and the API (GET /api/v1/pools/<id>/free/).

Which ranges count: whereabouts hands an address out of an IPPool with the range config of
the NAD the pod attaches through (range_start, range_end, exclude and
enable_overlapping_ranges are per NAD), while the allocations live in the one shared IPPool
(same range and network_name). So when the NADs feeding a pool agree, there is one answer;
when they differ, the next address depends on the NAD, and each NAD range gets its own
list (``ranges``) while the pool-wide list stays empty and ``reason`` says why: a merged
list would promise an address one of the NADs excludes. A pool no NAD we know of feeds is
walked as whereabouts would walk its bare range (network+1 .. last-1), as its usable count is.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db.models import CharField, QuerySet
from django.db.models.functions import Cast
from netaddr import IPAddress

from ippam.fields import ip_to_key
from ippam.freeaddrs import largest_free_blocks, next_free
from ippam.ipparse import go_cidr
from ippam.models import Allocation, IPPool, NADRange, OverlappingRangeIPReservation
from ippam.ranges import Interval, UsableRange, range_usable
from ippam.selectors.pool_map import nad_range_usable, pool_address_plan

# The most addresses one request may ask for (the API's ?count= is capped here).
MAX_FREE_COUNT = 256
_CHUNK = 2000


@dataclass
class RangeFree:
    nad: str  # namespace/name of the NAD ("" for the pool's bare range)
    position: int
    range_start: str
    range_end: str
    exclude: list[str]
    addresses: list[IPAddress]
    error: str = ""


@dataclass
class FreeAddresses:
    pool: IPPool
    count: int  # how many were asked for (after the cap)
    addresses: list[IPAddress]
    reason: str = ""  # why there are fewer than asked (or none)
    ranges: list[RangeFree] = field(default_factory=list)


@dataclass
class FreeBlock:
    first: IPAddress
    last: IPAddress

    @property
    def size(self) -> int:
        return int(self.last) - int(self.first) + 1


def _keys(qs: QuerySet, version: int, lo: int, hi: int) -> Iterator[int]:
    """The addresses of `qs` (field ``ip``) inside [lo, hi], ascending, read lazily as raw
    sortable keys (no IPAddress per row: a /16 pool holds 60k allocations)."""
    mask = 0xFFFFFFFF if version == 4 else (1 << 128) - 1
    rows = (
        qs.filter(ip__range=(ip_to_key(IPAddress(lo, version)), ip_to_key(IPAddress(hi, version))))
        .annotate(raw=Cast("ip", output_field=CharField()))
        .order_by("ip")
        .values_list("raw", flat=True)
    )
    for key in rows.iterator(chunk_size=_CHUNK):
        yield int(key, 16) & mask


def _taken(pool: IPPool, version: int, lo: int, hi: int, reservations: bool) -> Iterator[int]:
    """Allocated addresses of the pool and, when whereabouts checks them, the addresses
    reserved in the pool's network_name scope (ORIPs are one per IP per scope)."""
    streams = [_keys(Allocation.objects.filter(pool=pool), version, lo, hi)]
    if reservations:
        orips = OverlappingRangeIPReservation.objects.filter(
            cluster_id=pool.cluster_id, network_name=pool.network_name, ip__isnull=False
        )
        streams.append(_keys(orips, version, lo, hi))
    return heapq.merge(*streams)


def _walk(pool: IPPool, usable: UsableRange, reservations: bool, count: int) -> list[IPAddress]:
    if usable.error or usable.first > usable.last:
        return []
    version = usable.network.version
    taken = _taken(pool, version, usable.first, usable.last, reservations)
    return [IPAddress(i, version) for i in next_free(usable.free_blocks(), taken, count)]


def _config(r: NADRange, usable: UsableRange) -> tuple[object, ...]:
    return (usable.first, usable.last, usable.excluded, usable.error, r.enable_overlapping_ranges)


def pool_free_addresses(*, pool: IPPool, count: int) -> FreeAddresses:
    """The next ``count`` (capped at MAX_FREE_COUNT) addresses whereabouts would hand out."""
    count = max(0, min(count, MAX_FREE_COUNT))
    network = go_cidr(pool.range)
    if network is None:
        return FreeAddresses(pool, count, [], f"the range {pool.range!r} is not a CIDR")
    nad_ranges = list(pool.nad_ranges.select_related("nad").order_by("nad__namespace", "nad__name"))
    feeding = [(r, u) for r in nad_ranges if (u := nad_range_usable(r)) is not None]
    if not feeding:
        usable = range_usable(network)
        addresses = _walk(pool, usable, True, count)
        return FreeAddresses(pool, count, addresses, _short(usable, addresses, count))
    ranges = [
        RangeFree(
            nad=f"{r.nad.namespace}/{r.nad.name}",
            position=r.position,
            range_start=str(r.range_start or ""),
            range_end=str(r.range_end or ""),
            exclude=list(r.exclude or ()),
            addresses=_walk(pool, u, r.enable_overlapping_ranges, count),
            error=u.error,
        )
        for r, u in feeding
    ]
    if len({_config(r, u) for r, u in feeding}) > 1:
        return FreeAddresses(
            pool,
            count,
            [],
            f"{len(feeding)} NAD ranges feed this pool with different range_start, range_end, "
            "exclude or enable_overlapping_ranges: the next address depends on the NAD a pod "
            "attaches through; see each range's list",
            ranges,
        )
    usable = feeding[0][1]
    addresses = ranges[0].addresses
    return FreeAddresses(pool, count, addresses, _short(usable, addresses, count), ranges)


def _short(usable: UsableRange, addresses: list[IPAddress], count: int) -> str:
    if usable.error:
        return usable.error
    if usable.first > usable.last:
        return f"{usable.network} has no usable address (fewer than 2 host bits)"
    if len(addresses) < count:
        return f"only {len(addresses)} free address(es) left in the range"
    return ""


def pool_free_blocks(*, pool: IPPool, top: int = 10) -> list[FreeBlock]:
    """The ``top`` largest runs of free addresses of the pool, largest first: its usable
    addresses (the same union as its usable count) minus allocations and reservations."""
    plan = pool_address_plan(pool)
    if plan is None or not plan.usable.blocks:
        return []
    version = plan.network.version
    lo, hi = plan.usable.blocks[0][0], plan.usable.blocks[-1][1]
    ranges = list(pool.nad_ranges.all())
    reservations = not ranges or any(r.enable_overlapping_ranges for r in ranges)
    taken = _taken(pool, version, lo, hi, reservations)
    blocks: list[Interval] = largest_free_blocks(plan.usable.blocks, taken, top)
    return [FreeBlock(IPAddress(a, version), IPAddress(b, version)) for a, b in blocks]
