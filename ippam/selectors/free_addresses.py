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

A next address a live pod lists on the pool's network (in its Multus network-status, through
a NAD that feeds the pool) while no allocation tracks it is still what whereabouts hands out
next: it reads only the IPPool's allocations. Such an address is not free, it is the
duplicate about to happen: it stays in the list, in whereabouts' order, flagged with its
holder (``held_by``), and the free blocks leave it out.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.db.models import CharField, Value
from django.db.models.functions import Cast
from netaddr import IPAddress

from ippam.fields import ip_to_key, network_key_bounds
from ippam.freeaddrs import largest_free_blocks, next_free
from ippam.ipparse import go_cidr
from ippam.models import (
    Allocation,
    InterfaceAddress,
    IPPool,
    NADRange,
    OverlappingRangeIPReservation,
)
from ippam.ranges import UsableRange, range_usable
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
    held_by: dict[str, str] = field(default_factory=dict)  # address -> the pod that lists it


@dataclass
class NextAddress:
    """One next address, as the page shows it: whether a live pod already holds it."""

    ip: IPAddress
    held_by: str = ""  # namespace/name of a live pod listing it, with no allocation


@dataclass
class FreeAddresses:
    pool: IPPool
    count: int  # how many were asked for (after the cap)
    addresses: list[IPAddress]
    reason: str = ""  # why there are fewer than asked (or none)
    ranges: list[RangeFree] = field(default_factory=list)
    # Next addresses a live pod lists on the pool's network with no allocation tracking
    # them (address -> namespace/name): whereabouts hands them out anyway.
    held_by: dict[str, str] = field(default_factory=dict)

    @property
    def next(self) -> list[NextAddress]:
        return [NextAddress(ip, self.held_by.get(str(ip), "")) for ip in self.addresses]

    @property
    def next_by_range(self) -> list[tuple[RangeFree, list[NextAddress]]]:
        return [
            (r, [NextAddress(ip, self.held_by.get(str(ip), "")) for ip in r.addresses])
            for r in self.ranges
        ]


@dataclass
class FreeBlock:
    first: IPAddress
    last: IPAddress

    @property
    def size(self) -> int:
        return int(self.last) - int(self.first) + 1


def _taken(
    pool: IPPool, version: int, lo: int, hi: int, reservations: bool
) -> Iterator[tuple[int, bool]]:
    """(address, is a reservation) inside [lo, hi], ascending, in one query read lazily as
    raw sortable keys (no IPAddress per row: a /16 pool holds 60k allocations): the pool's
    allocations and, when asked, the addresses reserved in its network_name scope (an ORIP
    is one per IP per scope, whichever pool handed the address out)."""
    mask = 0xFFFFFFFF if version == 4 else (1 << 128) - 1
    bounds = (ip_to_key(IPAddress(lo, version)), ip_to_key(IPAddress(hi, version)))
    rows = (
        Allocation.objects.filter(pool=pool, ip__range=bounds)
        .annotate(raw=Cast("ip", output_field=CharField()), orip=Value(False))
        .order_by()
        .values_list("raw", "orip")
    )
    if reservations:
        orips = (
            OverlappingRangeIPReservation.objects.filter(
                cluster_id=pool.cluster_id, network_name=pool.network_name, ip__range=bounds
            )
            .annotate(raw=Cast("ip", output_field=CharField()), orip=Value(True))
            .order_by()
            .values_list("raw", "orip")
        )
        rows = rows.union(orips, all=True)
    for key, orip in rows.order_by("raw").iterator(chunk_size=_CHUNK):
        yield int(key, 16) & mask, bool(orip)


def _addresses(rows: Iterable[tuple[int, bool]], reservations: bool) -> Iterator[int]:
    return (ip for ip, orip in rows if reservations or not orip)


TakenFor = Callable[[UsableRange, bool], Iterable[int]]


def _lazy(pool: IPPool) -> TakenFor:
    """One query per range walked, read only as far as the walk goes."""

    def taken(usable: UsableRange, reservations: bool) -> Iterable[int]:
        version = usable.network.version
        return _addresses(_taken(pool, version, usable.first, usable.last, reservations), True)

    return taken


def _walk(usable: UsableRange, reservations: bool, count: int, taken: TakenFor) -> list[IPAddress]:
    if usable.error or usable.first > usable.last:
        return []
    version = usable.network.version
    found = next_free(usable.free_blocks(), taken(usable, reservations), count)
    return [IPAddress(i, version) for i in found]


def _config(r: NADRange, usable: UsableRange) -> tuple[object, ...]:
    return (usable.first, usable.last, usable.excluded, usable.error, r.enable_overlapping_ranges)


def pool_live_holders(pool: IPPool, addresses: Iterable[IPAddress] | None = None) -> dict[int, str]:
    """Addresses live pods list on the pool's network, as {address: namespace/name}: on an
    interface attached through a NAD whose range feeds the pool, of a pod not Succeeded or
    Failed (those hold nothing). ``addresses``: only these (else every one in the range).
    One query."""
    network = go_cidr(pool.range)
    if network is None:
        return {}
    qs = InterfaceAddress.objects.filter(
        cluster_id=pool.cluster_id,
        interface__nad_id__in=NADRange.objects.filter(pool=pool).values("nad_id"),
    ).exclude(interface__pod__phase__in=("Succeeded", "Failed"))
    if addresses is None:
        qs = qs.filter(ip__range=network_key_bounds(network))
    else:
        wanted = [ip_to_key(ip) for ip in addresses if ip.version == network.version]
        if not wanted:
            return {}
        qs = qs.filter(ip__in=wanted)
    rows = qs.order_by("interface__pod__namespace", "interface__pod__name").values_list(
        "ip", "interface__pod__namespace", "interface__pod__name"
    )
    held: dict[int, str] = {}
    for ip, namespace, name in rows:
        held.setdefault(int(ip), f"{namespace}/{name}")
    return held


def pool_free_addresses(
    *,
    pool: IPPool,
    count: int,
    taken: TakenFor | None = None,
    holders: dict[int, str] | None = None,
) -> FreeAddresses:
    """The next ``count`` (capped at MAX_FREE_COUNT) addresses whereabouts would hand out,
    those a live pod holds flagged (``held_by``).

    ``pool.nad_ranges`` should be prefetched with their NAD (the pool selectors do).
    ``taken``: the taken addresses of a range (default: read lazily from the database).
    ``holders``: the pool's live holders (pool_live_holders), else read for the addresses
    found."""
    free = _free_addresses(pool=pool, count=count, taken=taken)
    found = {*free.addresses, *(ip for r in free.ranges for ip in r.addresses)}
    if holders is None:
        holders = pool_live_holders(pool, found) if found else {}
    free.held_by = {str(ip): holders[int(ip)] for ip in sorted(found) if int(ip) in holders}
    for r in free.ranges:
        r.held_by = {
            str(ip): free.held_by[str(ip)] for ip in r.addresses if str(ip) in free.held_by
        }
    return free


def _free_addresses(*, pool: IPPool, count: int, taken: TakenFor | None) -> FreeAddresses:
    count = max(0, min(count, MAX_FREE_COUNT))
    taken = taken or _lazy(pool)
    network = go_cidr(pool.range)
    if network is None:
        return FreeAddresses(pool, count, [], f"the range {pool.range!r} is not a CIDR")
    feeding = [(r, u) for r in pool.nad_ranges.all() if (u := nad_range_usable(r)) is not None]
    if not feeding:
        usable = range_usable(network)
        addresses = _walk(usable, True, count, taken)
        return FreeAddresses(pool, count, addresses, _short(usable, addresses, count))
    ranges = [
        RangeFree(
            nad=f"{r.nad.namespace}/{r.nad.name}",
            position=r.position,
            range_start=str(r.range_start or ""),
            range_end=str(r.range_end or ""),
            exclude=list(r.exclude or ()),
            addresses=_walk(u, r.enable_overlapping_ranges, count, taken),
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


def pool_free_summary(
    *, pool: IPPool, count: int = 5, top: int = 10
) -> tuple[FreeAddresses, list[FreeBlock]]:
    """For the pool page: the next ``count`` free addresses and the ``top`` largest runs of
    free addresses, largest first. The runs are the pool's usable addresses (the union its
    usable count is made of) minus allocations and reservations. One query for the taken
    addresses of the whole pool, shared by both (``pool.nad_ranges`` prefetched)."""
    plan = pool_address_plan(pool, list(pool.nad_ranges.all()))
    if plan is None:
        return pool_free_addresses(pool=pool, count=count), []
    version = plan.network.version
    rows = list(_taken(pool, version, plan.network.first, plan.network.last, True))
    holders = pool_live_holders(pool)
    free = pool_free_addresses(
        pool=pool,
        count=count,
        taken=lambda _usable, reservations: _addresses(rows, reservations),
        holders=holders,
    )
    ranges = list(pool.nad_ranges.all())
    reservations = not ranges or any(r.enable_overlapping_ranges for r in ranges)
    # An address a live pod holds is no part of a free block, allocation or not.
    taken = heapq.merge(_addresses(rows, reservations), sorted(holders))
    blocks = largest_free_blocks(plan.usable.blocks, taken, top)
    return free, [FreeBlock(IPAddress(a, version), IPAddress(b, version)) for a, b in blocks]
