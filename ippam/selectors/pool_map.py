"""A pool's address plan (what each address of its range is for, from the NADs' whereabouts
config) and its allocation map: one cell per address for small regions, a heat map of
sub-blocks counted in the database for large ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netaddr import IPAddress, IPNetwork

from ippam.fields import ip_to_key, key_to_ip, network_key_bounds
from ippam.ipparse import go_cidr, input_cidr
from ippam.models import Allocation, Finding, IPPool, NADRange
from ippam.pool_blocks import BlockHeat, pool_block_heat
from ippam.ranges import PoolUsable, UsableRange, pool_usable, stored_range_usable
from ippam.selectors.freed import freed_phrase, pool_freed_by_ip

# Pools up to this many addresses (an IPv4 /22) get one cell per address; larger ones a heat map.
MAP_MAX_CELLS = 1024


@dataclass
class PoolAddressPlan:
    """What each address of a pool's range is meant for, from the NADs' whereabouts config."""

    network: IPNetwork
    usable: PoolUsable  # the same numbers as the pool's usable count (ippam.ranges)
    gateways: set[IPAddress] = field(default_factory=set)


def nad_range_usable(nad_range: NADRange) -> UsableRange | None:
    """One NAD range as whereabouts hands it out (None when its range is no CIDR)."""
    return stored_range_usable(
        nad_range.range,
        nad_range.range_start,
        nad_range.range_end,
        nad_range.exclude or (),
        nad_range.verdict,
    )


def pool_address_plan(
    pool: IPPool, nad_ranges: list[NADRange] | None = None
) -> PoolAddressPlan | None:
    network = go_cidr(pool.range)
    if network is None:
        return None
    ranges = nad_ranges if nad_ranges is not None else list(pool.nad_ranges.all())
    gateways = {r.gateway for r in ranges if r.gateway is not None}
    usable = pool_usable(network, [nad_range_usable(r) for r in ranges])
    return PoolAddressPlan(network=network, usable=usable, gateways=gateways)


# The map's cell states in three groups that partition the cells: every cell is counted in
# exactly one state. Over the whole pool the allocated group adds up to the pool's allocated
# (every allocation is drawn in it, wherever it lies) and the free group to its free
# (whereabouts' usable addresses no allocation holds), the numbers of the page's header;
# allocations on addresses the config no longer hands out ("allocated excluded", e.g. an
# exclude added after the fact) are the one way the two frees can differ, and say so.
ALLOCATED_STATES = [
    ("allocated", "allocated"),
    ("allocated excluded", "allocated, on an address the config no longer hands out"),
    ("allocated reused", "re-allocated after a recent free"),
    ("leaked", "leaked"),
    ("suspect", "suspect"),
]
FREE_STATES = [
    ("free", "free"),
    ("freed", "recently freed"),
    ("held", "free to whereabouts, but a pod or reservation holds it"),
    ("gateway", "gateway (whereabouts may hand it out)"),
]
UNUSABLE_STATES = [
    ("excluded", "excluded"),
    ("gateway excluded", "gateway (not handed out)"),
    ("network", "network"),
    ("broadcast", "broadcast"),
]
MAP_LEGEND = [*ALLOCATED_STATES, *FREE_STATES, *UNUSABLE_STATES]


@dataclass
class LegendGroup:
    label: str
    total: int
    states: list[tuple[str, str, int]]  # (state, label, cells)


def map_legend(counts: dict[str, int]) -> list[LegendGroup]:
    """The legend of a cell map: allocated, free and not handed out, each with its states."""
    groups = []
    for label, states in (
        ("Allocated", ALLOCATED_STATES),
        ("Free", FREE_STATES),
        ("Not handed out", UNUSABLE_STATES),
    ):
        shown = [(s, text, counts.get(s, 0)) for s, text in states]
        groups.append(LegendGroup(label, sum(n for *_, n in shown), shown))
    return groups


@dataclass
class MapCell:
    ip: IPAddress
    state: str  # free allocated leaked suspect excluded gateway network broadcast freed
    title: str
    usable: bool = False  # whereabouts may hand it out (whatever holds it now)


@dataclass
class HeatBlock:
    first: int  # the block's first address
    prefixlen: int
    version: int
    usable: int
    allocated: int
    leaked: int
    suspect: int

    @property
    def network(self) -> IPNetwork:
        return IPNetwork((self.first, self.prefixlen), version=self.version)

    @property
    def size(self) -> int:
        return 1 << ((32 if self.version == 4 else 128) - self.prefixlen)

    @property
    def cidr(self) -> str:
        """str(self.network), without building one (a heat map draws 256 of them)."""
        if self.version == 4:
            f = self.first
            return f"{f >> 24}.{f >> 16 & 255}.{f >> 8 & 255}.{f & 255}/{self.prefixlen}"
        return str(self.network)

    @property
    def utilization(self) -> float:
        return self.allocated / self.usable if self.usable else 0.0

    @property
    def level(self) -> int:
        """0..10, the heat bucket the block is drawn in."""
        if not self.allocated:
            return 0
        return max(1, min(10, int(self.utilization * 10 + 0.9999)))


@dataclass
class AllocationMap:
    region: IPNetwork
    cells: list[MapCell] | None = None
    blocks: list[HeatBlock] | None = None
    parent: IPNetwork | None = None  # the region one level up, when drilled into a block
    zoomed: bool = False  # showing a block, not the whole pool
    error: str = ""
    counts: dict[str, int] = field(default_factory=dict)  # cells per state, each cell once

    @property
    def legend(self) -> list[LegendGroup]:
        return map_legend(self.counts)


def _finding_states(pool: IPPool, *, lo: str, hi: str) -> dict[str, tuple[str, str]]:
    """ip key -> (state, reason) of leak findings inside [lo, hi] for this pool."""
    out: dict[str, tuple[str, str]] = {}
    rows = Finding.objects.filter(pool=pool, ip__range=(lo, hi)).values_list(
        "ip", "state", "reason"
    )
    for ip, state, reason in rows:
        key = ip_to_key(ip)
        if key not in out or state == Finding.State.LEAKED:
            out[key] = (state, reason)
    return out


def parse_block(pool_network: IPNetwork, block: str | None) -> IPNetwork | None:
    """A user's `?block=` if it is a CIDR inside the pool, else None."""
    net = input_cidr(block or "")
    if net is None or net.version != pool_network.version:
        return None
    if net.first < pool_network.first or net.last > pool_network.last:
        return None
    return net


def pool_allocation_map(pool: IPPool, *, block: str | None = None) -> AllocationMap:
    """One cell per address for regions up to MAP_MAX_CELLS, else a heat map of sub-blocks.

    `block` narrows the region (a heat map cell links to its block); a block that is not a
    CIDR inside the pool is ignored.
    """
    plan = pool_address_plan(pool)
    if plan is None:
        return AllocationMap(
            region=IPNetwork("0.0.0.0/32"), error=f"The range {pool.range!r} is not a CIDR."
        )
    region = parse_block(plan.network, block) or plan.network
    parent = None
    if region != plan.network:
        parent = IPNetwork(
            f"{region.network}/{max(region.prefixlen - 8, plan.network.prefixlen)}"
        ).cidr
        if parent == plan.network:
            parent = None
    result = (
        _cell_map(pool, plan, region, parent)
        if region.size <= MAP_MAX_CELLS
        else _heat_map(pool, plan, region, parent)
    )
    result.zoomed = region != plan.network
    return result


def _cell_map(
    pool: IPPool, plan: PoolAddressPlan, region: IPNetwork, parent: IPNetwork | None
) -> AllocationMap:
    lo, hi = network_key_bounds(region)
    holders = {
        int(ip): (podref, ifname, container_id)
        for ip, podref, ifname, container_id in Allocation.objects.filter(
            cluster_id=pool.cluster_id, pool=pool, ip__range=(lo, hi)
        )
        .order_by()  # Meta.ordering ("pool", ...) would join IPPool for nothing
        .values_list("ip", "podref", "ifname", "container_id")
    }
    findings = {int(key_to_ip(k)): v for k, v in _finding_states(pool, lo=lo, hi=hi).items()}
    freed = pool_freed_by_ip(pool, lo=lo, hi=hi)
    usable = plan.usable
    # Said on every address it leaves unusable: whereabouts refuses to allocate at all.
    refused = f" ({'; '.join(usable.errors)})" if usable.errors else ""
    gateways = {int(g) for g in plan.gateways}
    network_first, network_last = plan.network.first, plan.network.last
    has_edges = plan.network.size > 2
    cells: list[MapCell] = []
    counts: dict[str, int] = {}
    version = region.version
    for value in range(region.first, region.last + 1):
        ip = IPAddress(value, version)
        holder = holders.get(value)
        finding = findings.get(value)
        can_use = usable.is_usable(value)
        # An allocation first, wherever it lies (even on an address the config no longer
        # hands out): the allocated states then add up to the pool's allocated count.
        if holder is not None and finding is not None:
            f_state, reason = finding
            state = "leaked" if f_state == Finding.State.LEAKED else "suspect"
            who = f" held by {holder[0]}" if holder[0] else ""
            title = f"{ip}: {state}{who}: {reason}"
        elif holder is not None:
            podref, ifname, container_id = holder
            state = "allocated" if can_use else "allocated excluded"
            title = f"{ip}: {podref or 'unknown pod'}{' ' + ifname if ifname else ''}"
            if container_id:
                title += f" (container {container_id[:12]})"
            if not can_use:
                title += "; the range's config does not hand this address out (any more)"
        elif has_edges and value == network_first:
            state, title = "network", f"{ip}: network address"
        elif has_edges and value == network_last:
            state, title = "broadcast", f"{ip}: broadcast / last address"
        elif finding is not None and can_use:
            # No allocation holds it (an untracked address, an orphaned reservation): it is
            # free to whereabouts, which may hand it out next, while something holds it.
            state, title = "held", f"{ip}: whereabouts may hand it out, but: {finding[1]}"
        elif value in gateways:
            state = "gateway" if can_use else "gateway excluded"
            title = f"{ip}: gateway" + (
                " (whereabouts may hand it out: exclude it)" if can_use else ""
            )
        elif not can_use:
            state, title = "excluded", f"{ip}: excluded (not handed out){refused}"
        else:
            state, title = "free", f"{ip}: free"
        if finding is not None and holder is None and state != "held":
            title += f"; {finding[1]}"
        gone = freed.get(value)
        if gone is not None:
            # Whereabouts re-uses a freed offset at once: say who had it, even when the
            # address is already someone else's (then the cell is marked "reused").
            title += f"; {freed_phrase(gone)}"
            if state == "free":
                state = "freed"
            elif state == "allocated" and holder is not None and holder[0] != gone.podref:
                state = "allocated reused"  # two CSS classes, one count
        counts[state] = counts.get(state, 0) + 1
        cells.append(MapCell(ip=ip, state=state, title=title, usable=can_use))
    return AllocationMap(region=region, cells=cells, parent=parent, counts=counts)


def _heat_map(
    pool: IPPool, plan: PoolAddressPlan, region: IPNetwork, parent: IPNetwork | None
) -> AllocationMap:
    host_bits = region.size.bit_length() - 1
    block_bits = 8
    if host_bits - block_bits > 10:  # more than 1024 blocks: coarser blocks, 256 of them
        block_bits = host_bits - 8
    block_bits = (block_bits + 3) // 4 * 4  # a whole number of hex digits of the sortable key
    # The sortable key is 32 hex digits of the IPv6 (or v4-mapped) form: a block whose
    # size is a power of 16 is a key prefix, so the database can group by it.
    digits = (128 - block_bits) // 4
    block_prefix_len = region.prefixlen + (host_bits - block_bits)
    lo, hi = network_key_bounds(region)
    mapped = 0xFFFF00000000 if region.version == 4 else 0  # as ippam.fields.ip_to_key
    step = 1 << block_bits
    # Allocations kept per 256 addresses by the writers (ippam.pool_blocks), and the leak
    # findings, in one statement.
    heat = pool_block_heat(pool_id=pool.pk, lo=lo, hi=hi, digits=digits)
    nothing = BlockHeat()
    blocks: list[HeatBlock] = []
    version = region.version
    # The usable addresses of every block in one walk along the plan's sorted, disjoint
    # usable intervals (as PoolUsable.count_in per block, without its bisect each time).
    usable_blocks = plan.usable.blocks
    n_usable = len(usable_blocks)
    i = 0
    for first in range(region.first, region.last + 1, step):
        last = first + step - 1
        while i < n_usable and usable_blocks[i][1] < first:
            i += 1
        usable = 0
        j = i
        while j < n_usable and usable_blocks[j][0] <= last:
            u_first, u_last = usable_blocks[j]
            usable += min(u_last, last) - max(u_first, first) + 1
            j += 1
        allocated, leaked, suspect = heat.get(f"{first | mapped:032x}"[:digits], nothing)
        blocks.append(
            HeatBlock(first, block_prefix_len, version, usable, allocated, leaked, suspect)
        )
    return AllocationMap(region=region, blocks=blocks, parent=parent)
