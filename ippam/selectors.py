"""Reads for the dashboard: every query a page runs lives here, never in a view.

Each selector takes keyword-only filters and returns querysets or plain dataclasses with
everything a template needs, so that a template never triggers a query per row: related
rows come from select_related/prefetch_related, one aggregate, or one extra query per
*page* whose results are attached to the rows (`_attach_*` helpers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Collate, Substr
from django.utils import timezone
from netaddr import AddrFormatError, IPAddress, IPNetwork, IPSet

from ippam.fields import ip_to_key, key_to_ip, network_key_bounds
from ippam.models import (
    Alert,
    Allocation,
    AuditEntry,
    Cluster,
    Finding,
    InterfaceAddress,
    IPPool,
    NADRange,
    NetworkAttachmentDefinition,
    Node,
    OverlappingRangeIPReservation,
    Pod,
    PodEvent,
    PodInterface,
)
from ippam.whereabouts import WhereaboutsRange, usable_addresses

# Pools up to this many addresses (an IPv4 /22) get one cell per address; larger ones a heat map.
MAP_MAX_CELLS = 1024
MAX_HEAT_BLOCKS = 1024


# --- clusters and sync health -------------------------------------------------------------


@dataclass(frozen=True)
class ClusterHealth:
    cluster: Cluster
    level: str  # ok | stale | error | never | syncing
    message: str

    @property
    def is_stale(self) -> bool:
        return self.level != "ok"


def cluster_health(cluster: Cluster, *, now: datetime | None = None) -> ClusterHealth:
    """How fresh this cluster's data is, in the words the sync bar shows."""
    now = now or timezone.now()
    stale_after = timedelta(seconds=settings.IPPAM_STALE_AFTER_SECONDS)
    state = cluster.sync_state
    if state in (Cluster.SyncState.FAILED, Cluster.SyncState.UNREACHABLE):
        error = cluster.sync_error.strip().splitlines()[0] if cluster.sync_error.strip() else ""
        label = cluster.get_sync_state_display()
        return ClusterHealth(cluster, "error", f"{label}: {error}" if error else label)
    if cluster.last_good_sync is None:
        if state == Cluster.SyncState.SYNCING:
            return ClusterHealth(cluster, "syncing", "first sync running; no data yet")
        return ClusterHealth(cluster, "never", "never synced; no data yet")
    if now - cluster.last_good_sync > stale_after:
        return ClusterHealth(cluster, "stale", "data is stale: no successful sync recently")
    if state == Cluster.SyncState.SYNCING:
        return ClusterHealth(cluster, "ok", "syncing")
    return ClusterHealth(cluster, "ok", "in sync")


def cluster_list() -> list[Cluster]:
    return list(Cluster.objects.order_by("name"))


def cluster_health_list(*, clusters: list[Cluster] | None = None) -> list[ClusterHealth]:
    now = timezone.now()
    return [
        cluster_health(c, now=now) for c in (clusters if clusters is not None else cluster_list())
    ]


def _scoped(qs: QuerySet, cluster: Cluster | None, field_name: str = "cluster") -> QuerySet:
    return qs if cluster is None else qs.filter(**{field_name: cluster})


# --- parsing user input -------------------------------------------------------------------


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
MAX_QUERY_LENGTH = 200


def clean_query(text: str | None) -> str:
    """A user's search text, safe for every backend: PostgreSQL rejects NUL bytes in text."""
    return _CONTROL_RE.sub("", text or "").strip()[:MAX_QUERY_LENGTH]


def parse_ip(text: str) -> IPAddress | None:
    text = (text or "").strip()
    if not text or "/" in text:
        return None
    try:
        return IPAddress(text)
    except (AddrFormatError, ValueError, TypeError):
        return None


def parse_cidr(text: str) -> IPNetwork | None:
    text = (text or "").strip()
    if "/" not in text:
        return None
    try:
        return IPNetwork(text).cidr
    except (AddrFormatError, ValueError, TypeError):
        return None


_MAC_RE = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$", re.I)


def parse_mac(text: str) -> str | None:
    text = (text or "").strip()
    if not _MAC_RE.match(text):
        return None
    digits = re.sub(r"[^0-9a-f]", "", text.lower())
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def _sort_param(sort: str | None, allowed: dict[str, str], default: str) -> tuple[str, list[str]]:
    """Map a user's `sort` (optionally `-`-prefixed) to order_by fields; nonsense gives the default."""
    sort = (sort or "").strip()
    desc = sort.startswith("-")
    key = sort[1:] if desc else sort
    if key not in allowed:
        sort = default
        desc = sort.startswith("-")
        key = sort[1:] if desc else sort
    column = allowed[key]
    return sort, [f"-{column}" if desc else column, "pk"]


# --- usable addresses of a pool -----------------------------------------------------------


@dataclass
class PoolAddressPlan:
    """What each address of a pool's range is meant for, from the NADs' whereabouts config."""

    network: IPNetwork
    usable: IPSet
    excluded: IPSet
    gateways: set[IPAddress] = field(default_factory=set)


def _network_of(range_text: str) -> IPNetwork | None:
    text = (range_text or "").strip()
    if not text:
        return None
    try:
        if "-" in text.split("/")[0]:
            # `first-last/prefix` form: the network is the prefix around `first`.
            first, rest = text.split("-", 1)
            prefix = rest.split("/", 1)[1] if "/" in rest else None
            return IPNetwork(f"{first}/{prefix}").cidr if prefix else None
        return IPNetwork(text).cidr
    except (AddrFormatError, ValueError, TypeError, IndexError):
        return None


def _candidates(network: IPNetwork) -> IPSet:
    """Whereabouts never hands out the first nor the last address; /31 and /32 hold none."""
    return usable_addresses(WhereaboutsRange(network=network))


def nad_range_usable(nad_range: NADRange, network: IPNetwork) -> tuple[IPSet, IPSet]:
    """(usable, excluded) of one NAD range inside `network`, as whereabouts computes them."""
    excludes = []
    for item in nad_range.exclude or []:
        try:
            excludes.append(IPNetwork(str(item)).cidr)
        except (AddrFormatError, ValueError, TypeError):
            continue
    usable = usable_addresses(
        WhereaboutsRange(
            network=network,
            range_start=nad_range.range_start,
            range_end=nad_range.range_end,
            exclude=tuple(excludes),
        )
    )
    return usable, _candidates(network) - usable


def pool_address_plan(
    pool: IPPool, nad_ranges: list[NADRange] | None = None
) -> PoolAddressPlan | None:
    network = _network_of(pool.range)
    if network is None:
        return None
    ranges = nad_ranges if nad_ranges is not None else list(pool.nad_ranges.all())
    if not ranges:
        return PoolAddressPlan(network=network, usable=_candidates(network), excluded=IPSet())
    usable, excluded = IPSet(), IPSet()
    gateways: set[IPAddress] = set()
    for nad_range in ranges:
        u, e = nad_range_usable(nad_range, network)
        usable |= u
        excluded |= e
        if nad_range.gateway is not None:
            gateways.add(nad_range.gateway)
    # An address usable for one NAD of the pool is not excluded for the pool.
    return PoolAddressPlan(
        network=network, usable=usable, excluded=excluded - usable, gateways=gateways
    )


# --- pools --------------------------------------------------------------------------------

POOL_SORTS = {
    "name": "name",
    "range": "first_ip",
    "network": "network_name",
    "usable": "usable",
    "allocated": "allocated",
    "free": "free_count",
    "utilization": "utilization",
    "leaks": "leak_count",
    "cluster": "cluster__name",
}


def pool_list_with_usage(
    *, cluster: Cluster | None = None, sort: str | None = None, q: str = ""
) -> tuple[QuerySet[IPPool], str]:
    """Pools with their leak count and the NADs feeding them; returns (queryset, sort used)."""
    qs = _scoped(IPPool.objects.all(), cluster)
    q = clean_query(q)
    if q:
        ip = parse_ip(q)
        net = parse_cidr(q)
        if ip is not None:
            qs = qs.filter(first_ip__lte=ip, last_ip__gte=ip)
        elif net is not None:
            lo, hi = network_key_bounds(net)
            qs = qs.filter(first_ip__lte=hi, last_ip__gte=lo)
        else:
            qs = qs.filter(
                Q(name__icontains=q)
                | Q(namespace__icontains=q)
                | Q(network_name__icontains=q)
                | Q(range__icontains=q)
                | Q(nad_ranges__nad__name__icontains=q)
            ).distinct()
    leak_counts = (
        Finding.objects.filter(pool=OuterRef("pk"))
        .order_by()
        .values("pool")
        .annotate(c=Count("pk"))
        .values("c")
    )
    qs = qs.annotate(
        leak_count=Coalesce(Subquery(leak_counts, output_field=IntegerField()), Value(0)),
        free_count=F("usable") - F("allocated"),
    )
    sort_used, order = _sort_param(sort, POOL_SORTS, "-utilization")
    qs = qs.select_related("cluster").prefetch_related(_nad_ranges_prefetch()).order_by(*order)
    return qs, sort_used


def _nad_ranges_prefetch() -> Any:
    from django.db.models import Prefetch

    return Prefetch(
        "nad_ranges",
        queryset=NADRange.objects.select_related("nad").order_by(
            "nad__namespace", "nad__name", "position"
        ),
    )


def pool_get(*, pool_id: int, summary: bool = True) -> IPPool:
    """The pool or Http404-able IPPool.DoesNotExist.

    `summary=False`: the bare row, for a fragment of the pool page that shows neither the
    feeding NADs nor the leak count (no prefetch, no findings join).
    """
    if not summary:
        return IPPool.objects.get(pk=pool_id)
    return (
        IPPool.objects.select_related("cluster")
        .prefetch_related(_nad_ranges_prefetch())
        .annotate(leak_count=Count("findings", distinct=True))
        .get(pk=pool_id)
    )


MAP_LEGEND = [
    ("free", "free"),
    ("allocated", "allocated"),
    ("leaked", "leaked"),
    ("suspect", "suspect"),
    ("excluded", "excluded"),
    ("gateway", "gateway"),
    ("network", "network"),
    ("broadcast", "broadcast"),
]


@dataclass
class MapCell:
    ip: IPAddress
    state: str  # free allocated leaked suspect excluded gateway network broadcast
    title: str


@dataclass
class HeatBlock:
    network: IPNetwork
    usable: int
    allocated: int
    leaked: int
    suspect: int

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
    counts: dict[str, int] = field(default_factory=dict)


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
    net = parse_cidr(block or "")
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


def _ints_in(addresses: IPSet, region: IPNetwork) -> set[int]:
    """The addresses of `addresses` inside `region` (at most MAP_MAX_CELLS of them) as ints."""
    out: set[int] = set()
    for cidr in (addresses & IPSet([region])).iter_cidrs():
        out.update(range(cidr.first, cidr.last + 1))
    return out


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
    # Set membership of ints: IPSet.__contains__ per address is 100x slower for a /22.
    usable = _ints_in(plan.usable, region)
    gateways = {int(g) for g in plan.gateways}
    network_first, network_last = plan.network.first, plan.network.last
    has_edges = plan.network.size > 2
    cells: list[MapCell] = []
    counts: dict[str, int] = {}
    version = region.version
    for value in range(region.first, region.last + 1):
        ip = IPAddress(value, version)
        holder = holders.get(value)
        if has_edges and value == network_first:
            state, title = "network", f"{ip}: network address"
        elif has_edges and value == network_last:
            state, title = "broadcast", f"{ip}: broadcast / last address"
        elif value in findings:
            f_state, reason = findings[value]
            state = "leaked" if f_state == Finding.State.LEAKED else "suspect"
            who = f" held by {holder[0]}" if holder and holder[0] else ""
            title = f"{ip}: {state}{who}: {reason}"
        elif holder is not None:
            podref, ifname, container_id = holder
            state = "allocated"
            title = f"{ip}: {podref or 'unknown pod'}{' ' + ifname if ifname else ''}"
            if container_id:
                title += f" (container {container_id[:12]})"
        elif value in gateways:
            state, title = "gateway", f"{ip}: gateway"
        elif value not in usable:
            state, title = "excluded", f"{ip}: excluded (not handed out)"
        else:
            state, title = "free", f"{ip}: free"
        counts[state] = counts.get(state, 0) + 1
        cells.append(MapCell(ip=ip, state=state, title=title))
    return AllocationMap(region=region, cells=cells, parent=parent, counts=counts)


def _key_prefix(digits: int) -> Any:
    """The first `digits` hex digits of the address key, grouped byte-wise.

    PostgreSQL groups text under the database collation (slow for 60k rows); the keys are
    plain hex, so the "C" collation gives the same groups several times faster.
    """
    prefix = Substr("ip", 1, digits)
    return Collate(prefix, "C") if connection.vendor == "postgresql" else prefix


def _allocation_block_counts(pool_id: int, prefixes: list[str]) -> dict[str, int]:
    """Allocations of the pool per block, a block being every key that starts with a prefix.

    One `COUNT(*)` per block over its key range, in one statement: each is an Index Only
    Scan of the (pool, ip) index, no heap fetch, no grouping. A `GROUP BY` of the key's
    prefix reads the same index entries but computes, hashes and groups a substring per
    allocation, several times slower (60k allocations: ~45 ms against ~17 ms).
    """
    if not prefixes:
        return {}
    qn = connection.ops.quote_name
    meta = Allocation._meta
    table = qn(meta.db_table)
    pool_col = qn(meta.get_field("pool").column)
    ip_col = qn(meta.get_field("ip").column)
    pad = 32 - len(prefixes[0])
    params: list[Any] = []
    for prefix in prefixes:
        params += [prefix, prefix + "0" * pad, prefix + "f" * pad]
    params.append(pool_id)
    values = ", ".join(["(%s, %s, %s)"] * len(prefixes))
    sql = (
        f"WITH blocks (prefix, lo, hi) AS (VALUES {values}) "
        f"SELECT blocks.prefix, (SELECT COUNT(*) FROM {table} "
        f"WHERE {table}.{pool_col} = %s AND {table}.{ip_col} BETWEEN blocks.lo AND blocks.hi) "
        "FROM blocks"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {prefix: count for prefix, count in cursor.fetchall() if count}


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
    firsts = range(region.first, region.last + 1, step)
    alloc_counts = _allocation_block_counts(
        pool.pk, [f"{first | mapped:032x}"[:digits] for first in firsts]
    )
    leak_counts: dict[tuple[str, str], int] = {}
    for blk, state, c in (
        Finding.objects.filter(pool=pool, ip__range=(lo, hi))
        .order_by()
        .annotate(block=_key_prefix(digits))
        .values("block", "state")
        .annotate(c=Count("pk"))
        .values_list("block", "state", "c")
    ):
        leak_counts[(blk, state)] = c
    # Usable addresses per block by interval overlap: an IPSet intersection per block costs
    # ~0.3 ms, which is most of the page for 256 blocks.
    spans = [(r.first, r.last) for r in plan.usable.iter_ipranges()]
    blocks: list[HeatBlock] = []
    for first in firsts:
        sub = IPNetwork((first, block_prefix_len), version=region.version)
        key = f"{first | mapped:032x}"[:digits]
        usable = sum(
            min(last, sub.last) - max(first, sub.first) + 1
            for first, last in spans
            if first <= sub.last and last >= sub.first
        )
        blocks.append(
            HeatBlock(
                network=sub,
                usable=usable,
                allocated=alloc_counts.get(key, 0),
                leaked=leak_counts.get((key, Finding.State.LEAKED), 0),
                suspect=leak_counts.get((key, Finding.State.SUSPECT), 0),
            )
        )
    return AllocationMap(region=region, blocks=blocks, parent=parent)


@dataclass
class AllocationRow:
    allocation: Allocation
    pod: Pod | None
    node: Node | None
    state: str  # allocated | leaked | suspect | terminating | no pod
    reason: str = ""


def pool_allocations(*, pool: IPPool, q: str = "") -> QuerySet[Allocation]:
    # pool_id alone (it implies the cluster): the database walks the (pool, ip) index in
    # address order, with no per-row filter on cluster_id.
    qs = Allocation.objects.filter(pool=pool)
    q = clean_query(q)
    if q:
        ip = parse_ip(q)
        net = parse_cidr(q)
        if ip is not None:
            qs = qs.filter(ip=ip)
        elif net is not None:
            qs = qs.filter(ip__range=network_key_bounds(net))
        else:
            qs = qs.filter(
                Q(podref__icontains=q) | Q(container_id__istartswith=q) | Q(ifname__iexact=q)
            )
    return qs.order_by("ip")


def allocation_rows(allocations: list[Allocation], *, pool: IPPool) -> list[AllocationRow]:
    """Attach pod, node and leak state to one page of allocations: three queries in all.

    The pods and nodes hold only what the table shows (their big JSON and annotation
    columns are neither fetched nor decoded, 50 rows a page).
    """
    pods = _pods_by_ref(
        pool.cluster_id,
        {(a.pod_namespace, a.pod_name) for a in allocations},
        fields=("cluster_id", "namespace", "name", "node_name", "deletion_timestamp"),
    )
    nodes = _nodes_by_name(
        pool.cluster_id,
        {p.node_name for p in pods.values() if p.node_name},
        fields=("cluster_id", "name"),
    )
    keys = [a.key for a in allocations]
    findings: dict[str, tuple[str, str]] = {}
    for key, state, reason in (
        Finding.objects.filter(pool=pool, allocation_key__in=keys)
        .order_by("state")
        .values_list("allocation_key", "state", "reason")
    ):
        findings.setdefault(key, (state, reason))
    rows = []
    for a in allocations:
        pod = pods.get((a.pod_namespace, a.pod_name))
        node = nodes.get(pod.node_name) if pod else None
        finding = findings.get(a.key)
        if finding is not None:
            state, reason = finding
        elif pod is None:
            state, reason = "no pod", "no synced pod has this name"
        elif pod.deletion_timestamp is not None:
            state, reason = "terminating", "pod is terminating"
        else:
            state, reason = "allocated", ""
        rows.append(AllocationRow(allocation=a, pod=pod, node=node, state=state, reason=reason))
    return rows


def _pods_by_ref(
    cluster_id: int, refs: set[tuple[str, str]], *, fields: tuple[str, ...] = ()
) -> dict[tuple[str, str], Pod]:
    """The pods of these (namespace, name) refs; `fields`: load only these (and the pk)."""
    refs = {r for r in refs if r[0] and r[1]}
    if not refs:
        return {}
    namespaces = {ns for ns, _ in refs}
    names = {n for _, n in refs}
    qs = Pod.objects.filter(cluster_id=cluster_id, namespace__in=namespaces, name__in=names)
    if fields:
        qs = qs.only(*fields)
    return {(p.namespace, p.name): p for p in qs if (p.namespace, p.name) in refs}


def _nodes_by_name(
    cluster_id: int, names: set[str], *, fields: tuple[str, ...] = ()
) -> dict[str, Node]:
    if not names:
        return {}
    qs = Node.objects.filter(cluster_id=cluster_id, name__in=names)
    if fields:
        qs = qs.only(*fields)
    return {n.name: n for n in qs}


# --- attachment failures ------------------------------------------------------------------

_CNI_EXPLANATIONS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"could not allocate IP in range[^:]*?(?:ip:\s*(\S+)\s*/\s*(\S+))?", re.I),
        "The pool is full: whereabouts found no free address in the range.",
    ),
    (
        re.compile(r"failed to find plugin \"?([\w.-]+)\"?", re.I),
        'The CNI plugin binary "{0}" is not installed on the node.',
    ),
    (
        re.compile(
            r"(?:cannot find|failed to get|not found).{0,40}network-attachment-definition|networkattachmentdefinitions?\S* \"?([\w.-]+)\"? not found",
            re.I,
        ),
        "The pod asks for a NetworkAttachmentDefinition that does not exist in that namespace.",
    ),
    (
        re.compile(
            r"(?:failed to lookup master|Link not found|master.{0,20}not found)\s*\"?([\w.-]*)",
            re.I,
        ),
        'The master interface "{0}" named by the NAD does not exist on this node.',
    ),
    (
        re.compile(r"context deadline exceeded|timed? ?out|i/o timeout", re.I),
        "whereabouts timed out talking to the Kubernetes API while updating the pool.",
    ),
    (
        re.compile(r"overlapping ?range", re.I),
        "The address is already reserved in an overlapping range (OverlappingRangeIPReservation).",
    ),
    (
        re.compile(
            r"invalid character|cannot unmarshal|error parsing|failed to load netconf", re.I
        ),
        "The NAD's CNI config is not valid JSON, or a field has the wrong type.",
    ),
    (
        re.compile(r"insufficient|no (?:free )?(?:virtual functions|VFs|devices)", re.I),
        "No SR-IOV device is free on the node for this resource.",
    ),
]


def explain_cni_error(message: str) -> str:
    """The CNI error of a FailedCreatePodSandBox event, in plain words."""
    text = message or ""
    for pattern, words in _CNI_EXPLANATIONS:
        m = pattern.search(text)
        if m:
            arg = next((g for g in m.groups() if g), "")
            if "{0}" not in words:
                return words
            return words.format(arg) if arg else words.replace(' "{0}"', "").replace(" {0}", "")
    # Unknown: the innermost error is usually after the last ": ".
    tail = text.rsplit(": ", 1)[-1].strip()
    return tail[:300] if tail else "The network attachment failed (no message)."


@dataclass
class AttachmentFailure:
    event: PodEvent
    explanation: str
    pod: Pod | None
    node: Node | None


def attachment_failures(
    *,
    cluster: Cluster | None = None,
    pool: IPPool | None = None,
    nad: NetworkAttachmentDefinition | None = None,
    node: Node | None = None,
    limit: int = 20,
) -> list[AttachmentFailure]:
    qs = PodEvent.objects.filter(reason=PodEvent.Reason.FAILED_SANDBOX).select_related(
        "nad", "pool", "cluster"
    )
    qs = _scoped(qs, cluster)
    if pool is not None:
        qs = qs.filter(pool=pool)
    if nad is not None:
        qs = qs.filter(nad=nad)
    if node is not None:
        on_node = Pod.objects.filter(
            cluster=OuterRef("cluster"),
            namespace=OuterRef("pod_namespace"),
            name=OuterRef("pod_name"),
            node_name=node.name,
        )
        qs = qs.filter(cluster=node.cluster_id).filter(Exists(on_node))
    events = list(qs.order_by(F("last_seen").desc(nulls_last=True), "-pk")[:limit])
    by_cluster: dict[int, set[tuple[str, str]]] = {}
    for e in events:
        by_cluster.setdefault(e.cluster_id, set()).add((e.pod_namespace, e.pod_name))
    pods: dict[tuple[int, str, str], Pod] = {}
    nodes: dict[tuple[int, str], Node] = {}
    for cid, refs in by_cluster.items():
        found = _pods_by_ref(cid, refs)
        pods.update({(cid, *k): v for k, v in found.items()})
        nodes.update(
            {
                (cid, k): v
                for k, v in _nodes_by_name(
                    cid, {p.node_name for p in found.values() if p.node_name}
                ).items()
            }
        )
    out = []
    for e in events:
        pod = pods.get((e.cluster_id, e.pod_namespace, e.pod_name))
        out.append(
            AttachmentFailure(
                event=e,
                explanation=explain_cni_error(e.message),
                pod=pod,
                node=nodes.get((e.cluster_id, pod.node_name)) if pod and pod.node_name else None,
            )
        )
    return out


# --- overview -----------------------------------------------------------------------------


@dataclass
class OverviewTotals:
    nads: int
    pools: int
    allocations: int
    findings: int
    open_alerts: int
    alerts_by_kind: list[tuple[str, str, int]]  # (kind, label, count)


def overview_totals(*, cluster: Cluster | None = None) -> OverviewTotals:
    labels = dict(Alert.Kind.choices)
    by_kind = [
        (kind, labels.get(kind, kind), c)
        for kind, c in _scoped(Alert.objects.filter(state=Alert.State.OPEN), cluster)
        .order_by()
        .values("kind")
        .annotate(c=Count("pk"))
        .order_by("kind")
        .values_list("kind", "c")
    ]
    # The pools' `allocated` counters (kept by sync, watch and reclaim) sum to the number of
    # Allocation rows, without counting those rows: one small query stays flat with size.
    pool_totals = _scoped(IPPool.objects.all(), cluster).aggregate(
        n=Count("*"), allocated=Coalesce(Sum("allocated"), 0, output_field=IntegerField())
    )
    return OverviewTotals(
        nads=_scoped(NetworkAttachmentDefinition.objects.all(), cluster).count(),
        pools=pool_totals["n"],
        allocations=pool_totals["allocated"],
        findings=_scoped(Finding.objects.all(), cluster).count(),
        open_alerts=sum(c for _, _, c in by_kind),
        alerts_by_kind=by_kind,
    )


def recent_alerts(*, cluster: Cluster | None = None, limit: int = 10) -> list[Alert]:
    qs = _scoped(Alert.objects.exclude(state=Alert.State.RESOLVED), cluster)
    return list(
        qs.select_related("cluster", "pool", "acknowledged_by").order_by("-opened_at", "-pk")[
            :limit
        ]
    )


# --- NADs ---------------------------------------------------------------------------------

NAD_SORTS = {
    "name": "name",
    "namespace": "namespace",
    "cni": "cni_type",
    "ipam": "ipam_type",
    "master": "master",
    "pods": "pods_attached",
    "cluster": "cluster__name",
}


def nad_list(
    *, cluster: Cluster | None = None, q: str = "", sort: str | None = None
) -> tuple[QuerySet[NetworkAttachmentDefinition], str]:
    qs = _scoped(NetworkAttachmentDefinition.objects.all(), cluster)
    q = clean_query(q)
    if q:
        ip = parse_ip(q)
        if ip is not None:
            qs = qs.filter(ranges__first_ip__lte=ip, ranges__last_ip__gte=ip).distinct()
        else:
            qs = qs.filter(
                Q(name__icontains=q)
                | Q(namespace__icontains=q)
                | Q(cni_type__iexact=q)
                | Q(ipam_type__iexact=q)
                | Q(master__iexact=q)
                | Q(ranges__range__icontains=q)
            ).distinct()
    attached = (
        PodInterface.objects.filter(nad=OuterRef("pk"))
        .order_by()
        .values("nad")
        .annotate(c=Count("pod", distinct=True))
        .values("c")
    )
    qs = qs.annotate(
        pods_attached=Coalesce(Subquery(attached, output_field=IntegerField()), Value(0))
    )
    sort_used, order = _sort_param(sort, NAD_SORTS, "namespace")
    if sort_used.lstrip("-") == "namespace":
        order = [order[0], "name", "pk"]
    ranges = NADRange.objects.select_related("pool").order_by("position")
    from django.db.models import Prefetch

    qs = (
        qs.select_related("cluster")
        .prefetch_related(Prefetch("ranges", queryset=ranges))
        .order_by(*order)
    )
    return qs, sort_used


def nad_get(*, nad_id: int) -> NetworkAttachmentDefinition:
    from django.db.models import Prefetch

    return (
        NetworkAttachmentDefinition.objects.select_related("cluster")
        .prefetch_related(
            Prefetch(
                "ranges", queryset=NADRange.objects.select_related("pool").order_by("position")
            )
        )
        .get(pk=nad_id)
    )


def nad_interfaces(*, nad: NetworkAttachmentDefinition) -> QuerySet[PodInterface]:
    """The pod interfaces attached to this NAD, with their pod and addresses."""
    return (
        PodInterface.objects.filter(nad=nad)
        .select_related("pod")
        .prefetch_related("addresses")
        .order_by("pod__namespace", "pod__name", "interface")
    )


def attach_nodes(items: list[Any], *, pod_attr: str = "pod") -> None:
    """Set `.node` on each item from its pod's node_name: one query for a page."""
    by_cluster: dict[int, set[str]] = {}
    for item in items:
        pod = getattr(item, pod_attr, None)
        if pod is not None and pod.node_name:
            by_cluster.setdefault(pod.cluster_id, set()).add(pod.node_name)
    nodes: dict[tuple[int, str], Node] = {}
    if by_cluster:
        q = Q()
        for cid, names in by_cluster.items():
            q |= Q(cluster_id=cid, name__in=names)
        nodes = {(n.cluster_id, n.name): n for n in Node.objects.filter(q)}
    for item in items:
        pod = getattr(item, pod_attr, None)
        item.node = nodes.get((pod.cluster_id, pod.node_name)) if pod is not None else None


def pretty_config(nad: NetworkAttachmentDefinition) -> str:
    import json

    if nad.config is not None:
        return json.dumps(nad.config, indent=2, sort_keys=False)
    return nad.config_raw


# --- nodes --------------------------------------------------------------------------------

NODE_SORTS = {
    "name": "name",
    "ready": "ready",
    "pods": "secondary_pods",
    "addresses": "addresses_held",
    "cluster": "cluster__name",
}


def node_list(
    *, cluster: Cluster | None = None, q: str = "", sort: str | None = None
) -> tuple[QuerySet[Node], str]:
    qs = _scoped(Node.objects.all(), cluster)
    q = clean_query(q)
    if q:
        qs = qs.filter(name__icontains=q)
    pods = (
        Pod.objects.filter(
            cluster=OuterRef("cluster"), node_name=OuterRef("name"), interfaces__default=False
        )
        .order_by()
        .values("node_name")
        .annotate(c=Count("pk", distinct=True))
        .values("c")
    )
    addresses = (
        InterfaceAddress.objects.filter(
            interface__pod__cluster=OuterRef("cluster"),
            interface__pod__node_name=OuterRef("name"),
            interface__default=False,
        )
        .order_by()
        .values("interface__pod__node_name")
        .annotate(c=Count("pk"))
        .values("c")
    )
    qs = qs.annotate(
        secondary_pods=Coalesce(Subquery(pods, output_field=IntegerField()), Value(0)),
        addresses_held=Coalesce(Subquery(addresses, output_field=IntegerField()), Value(0)),
    )
    sort_used, order = _sort_param(sort, NODE_SORTS, "name")
    return qs.select_related("cluster").order_by(*order), sort_used


def node_get(*, node_id: int) -> Node:
    return Node.objects.select_related("cluster").get(pk=node_id)


def node_pods(*, node: Node) -> QuerySet[Pod]:
    """Pods scheduled on the node with every interface, its addresses and its NAD (for the master NIC)."""
    from django.db.models import Prefetch

    interfaces = (
        PodInterface.objects.select_related("nad")
        .prefetch_related("addresses")
        .order_by("interface", "pk")
    )
    return (
        Pod.objects.filter(cluster=node.cluster_id, node_name=node.name)
        .prefetch_related(Prefetch("interfaces", queryset=interfaces))
        .order_by("namespace", "name")
    )


def attach_missing_attachments(pods: list[Pod]) -> None:
    """Set `.missing_networks` on each pod: requested attachments absent from network-status.

    Multus writes network-status after the attachments succeed, so a requested network that
    is missing from it on a Running pod is drift worth showing. Uses the prefetched interfaces.
    """
    for pod in pods:
        attached = {i.network_name for i in pod.interfaces.all()}
        missing = []
        for req in pod.requested_networks or []:
            if not isinstance(req, dict) or not req.get("name"):
                continue
            ref = f"{req.get('namespace') or pod.namespace}/{req['name']}"
            if ref not in attached:
                missing.append(ref)
        pod.missing_networks = missing


def node_interfaces(node: Node) -> QuerySet[Pod]:
    return node_pods(node=node)


# --- leaks --------------------------------------------------------------------------------


def finding_list(
    *,
    cluster: Cluster | None = None,
    kind: str = "",
    state: str = "",
    q: str = "",
    pool_id: int | None = None,
) -> QuerySet[Finding]:
    qs = _scoped(Finding.objects.all(), cluster)
    if pool_id is not None:
        qs = qs.filter(pool_id=pool_id)
    if kind in Finding.Kind.values:
        qs = qs.filter(kind=kind)
    if state in Finding.State.values:
        qs = qs.filter(state=state)
    q = clean_query(q)
    if q:
        ip = parse_ip(q)
        qs = (
            qs.filter(ip=ip)
            if ip is not None
            else qs.filter(
                Q(podref__icontains=q) | Q(node_name__icontains=q) | Q(reason__icontains=q)
            )
        )
    return qs.select_related("cluster", "pool", "nad", "reservation").order_by("kind", "ip", "pk")


def finding_counts(*, cluster: Cluster | None = None) -> list[tuple[str, str, int, int]]:
    """(kind, label, leaked, suspect) for every kind that has findings."""
    labels = dict(Finding.Kind.choices)
    counts: dict[str, list[int]] = {}
    for kind, state, c in (
        _scoped(Finding.objects.all(), cluster)
        .order_by()
        .values("kind", "state")
        .annotate(c=Count("pk"))
        .values_list("kind", "state", "c")
    ):
        slot = counts.setdefault(kind, [0, 0])
        slot[0 if state == Finding.State.LEAKED else 1] += c
    return [(k, labels.get(k, k), v[0], v[1]) for k, v in sorted(counts.items())]


def attach_finding_context(findings: list[Finding]) -> None:
    """Give each finding of a page `.alert`, `.pod` and `.node`: three queries for the page."""
    if not findings:
        return
    alert_q = Q()
    for f in findings:
        alert_q |= Q(cluster_id=f.cluster_id, identity=f.identity)
    alerts = {
        (a.cluster_id, a.identity): a
        for a in Alert.objects.filter(alert_q).select_related("acknowledged_by")
    }
    pods: dict[tuple[int, str, str], Pod] = {}
    by_cluster: dict[int, set[tuple[str, str]]] = {}
    for f in findings:
        if "/" in f.podref:
            ns, name = f.podref.split("/", 1)
            by_cluster.setdefault(f.cluster_id, set()).add((ns, name))
    for cid, refs in by_cluster.items():
        pods.update({(cid, *k): v for k, v in _pods_by_ref(cid, refs).items()})
    node_names: dict[int, set[str]] = {}
    for f in findings:
        pod = None
        if "/" in f.podref:
            ns, name = f.podref.split("/", 1)
            pod = pods.get((f.cluster_id, ns, name))
        f.pod = pod
        name = f.node_name or (pod.node_name if pod else "")
        if name:
            node_names.setdefault(f.cluster_id, set()).add(name)
    nodes: dict[tuple[int, str], Node] = {}
    if node_names:
        nq = Q()
        for cid, names in node_names.items():
            nq |= Q(cluster_id=cid, name__in=names)
        nodes = {(n.cluster_id, n.name): n for n in Node.objects.filter(nq)}
    for f in findings:
        f.alert = alerts.get((f.cluster_id, f.identity))
        name = f.node_name or (f.pod.node_name if f.pod else "")
        f.node = nodes.get((f.cluster_id, name)) if name else None


def finding_get(*, finding_id: int) -> Finding:
    """One finding with `.alert`, `.pod` and `.node` attached: the context of
    "dashboard/leaks.html#finding-row", for re-rendering a row after an action."""
    finding = Finding.objects.select_related("cluster", "pool", "nad", "reservation").get(
        pk=finding_id
    )
    attach_finding_context([finding])
    return finding


# --- search -------------------------------------------------------------------------------


@dataclass
class HeldAddress:
    ip: IPAddress
    pool: IPPool | None
    podref: str
    pod: Pod | None
    node: Node | None
    interface: str
    source: str  # "IPPool allocation" | "network-status" | "reservation"
    container_id: str = ""


@dataclass
class SearchResults:
    q: str
    kind: str  # ip | cidr | mac | text | empty
    ip: IPAddress | None = None
    network: IPNetwork | None = None
    pools: list[IPPool] = field(default_factory=list)
    holders: list[HeldAddress] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    interfaces: list[PodInterface] = field(default_factory=list)
    nads: list[NetworkAttachmentDefinition] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    allocations: list[Allocation] = field(default_factory=list)
    allocation_count: int = 0

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.pools,
                self.holders,
                self.history,
                self.findings,
                self.pods,
                self.interfaces,
                self.nads,
                self.nodes,
                self.allocations,
            )
        )


SEARCH_LIMIT = 50


def search(q: str, *, cluster: Cluster | None = None) -> SearchResults:
    """One box: an IP, a CIDR, a MAC, or a name (pod, NAD, pool, node)."""
    q = clean_query(q)
    if not q:
        return SearchResults(q=q, kind="empty")
    ip = parse_ip(q)
    if ip is not None:
        return _search_ip(q, ip, cluster)
    net = parse_cidr(q)
    if net is not None:
        return _search_cidr(q, net, cluster)
    mac = parse_mac(q)
    if mac is not None:
        interfaces = list(
            _scoped(PodInterface.objects.filter(mac__iexact=mac), cluster)
            .select_related("pod", "nad", "cluster")
            .prefetch_related("addresses")[:SEARCH_LIMIT]
        )
        attach_nodes(interfaces)
        return SearchResults(q=q, kind="mac", interfaces=interfaces)
    res = SearchResults(q=q, kind="text")
    ns, _, name = q.rpartition("/")
    pod_q = Q(name__icontains=name, namespace=ns) if ns else Q(name__icontains=q)
    res.pods = list(
        _scoped(Pod.objects.filter(pod_q), cluster)
        .select_related("cluster")
        .order_by("namespace", "name")[:SEARCH_LIMIT]
    )
    nodes = _nodes_for_pods(res.pods)
    for p in res.pods:
        p.node = nodes.get((p.cluster_id, p.node_name))
    nad_q = Q(name__icontains=name, namespace=ns) if ns else Q(name__icontains=q)
    res.nads = list(
        _scoped(NetworkAttachmentDefinition.objects.filter(nad_q), cluster).select_related(
            "cluster"
        )[:SEARCH_LIMIT]
    )
    res.pools = list(
        _scoped(
            IPPool.objects.filter(Q(name__icontains=q) | Q(network_name__icontains=q)), cluster
        ).select_related("cluster")[:SEARCH_LIMIT]
    )
    res.nodes = list(
        _scoped(Node.objects.filter(name__icontains=q), cluster).select_related("cluster")[
            :SEARCH_LIMIT
        ]
    )
    return res


def _nodes_for_pods(pods: list[Pod]) -> dict[tuple[int, str], Node]:
    by_cluster: dict[int, set[str]] = {}
    for p in pods:
        if p.node_name:
            by_cluster.setdefault(p.cluster_id, set()).add(p.node_name)
    if not by_cluster:
        return {}
    nq = Q()
    for cid, names in by_cluster.items():
        nq |= Q(cluster_id=cid, name__in=names)
    return {(n.cluster_id, n.name): n for n in Node.objects.filter(nq)}


def _search_ip(q: str, ip: IPAddress, cluster: Cluster | None) -> SearchResults:
    res = SearchResults(q=q, kind="ip", ip=ip)
    res.pools = list(
        _scoped(IPPool.objects.filter(first_ip__lte=ip, last_ip__gte=ip), cluster)
        .select_related("cluster")
        .order_by("cluster__name", "name")
    )
    allocations = list(
        _scoped(Allocation.objects.filter(ip=ip), cluster).select_related("pool", "cluster")
    )
    addresses = list(
        _scoped(InterfaceAddress.objects.filter(ip=ip), cluster).select_related(
            "interface__pod", "interface__nad"
        )
    )
    reservations = list(_scoped(OverlappingRangeIPReservation.objects.filter(ip=ip), cluster))
    refs: dict[int, set[tuple[str, str]]] = {}
    for a in allocations:
        refs.setdefault(a.cluster_id, set()).add((a.pod_namespace, a.pod_name))
    for r in reservations:
        refs.setdefault(r.cluster_id, set()).add((r.pod_namespace, r.pod_name))
    pods: dict[tuple[int, str, str], Pod] = {}
    for cid, rs in refs.items():
        pods.update({(cid, *k): v for k, v in _pods_by_ref(cid, rs).items()})
    all_pods = list(pods.values()) + [ia.interface.pod for ia in addresses]
    nodes = _nodes_for_pods(all_pods)

    def node_of(pod: Pod | None) -> Node | None:
        return nodes.get((pod.cluster_id, pod.node_name)) if pod else None

    for a in allocations:
        pod = pods.get((a.cluster_id, a.pod_namespace, a.pod_name))
        res.holders.append(
            HeldAddress(
                ip,
                a.pool,
                a.podref,
                pod,
                node_of(pod),
                a.ifname,
                "IPPool allocation",
                a.container_id,
            )
        )
    for ia in addresses:
        pod = ia.interface.pod
        res.holders.append(
            HeldAddress(
                ip, None, pod.podref, pod, node_of(pod), ia.interface.interface, "network-status"
            )
        )
    for r in reservations:
        pod = pods.get((r.cluster_id, r.pod_namespace, r.pod_name))
        res.holders.append(
            HeldAddress(
                ip, None, r.podref, pod, node_of(pod), r.ifname, "reservation", r.container_id
            )
        )
    res.findings = list(_scoped(Finding.objects.filter(ip=ip), cluster).select_related("pool"))
    # Who held it last: the most recent events and audit entries naming the address.
    for e in _scoped(PodEvent.objects.filter(ip=ip), cluster).order_by(
        F("last_seen").desc(nulls_last=True)
    )[:10]:
        res.history.append(
            {
                "at": e.last_seen,
                "what": e.reason,
                "who": f"{e.pod_namespace}/{e.pod_name}",
                "message": e.message,
            }
        )
    word = re.compile(rf"(?<![\w.:]){re.escape(str(ip))}(?![\w:]|\.\d)")
    audit_qs = AuditEntry.objects.filter(Q(target__contains=str(ip)) | Q(message__contains=str(ip)))
    if cluster is not None:
        audit_qs = audit_qs.filter(cluster=cluster)
    for entry in audit_qs.order_by("-at")[:20]:
        if word.search(entry.target) or word.search(entry.message):
            before = entry.before if isinstance(entry.before, dict) else {}
            who = str(before.get("podref", "")) or entry.actor_name
            res.history.append(
                {
                    "at": entry.at,
                    "what": entry.get_action_display(),
                    "who": who,
                    "message": f"{entry.target}: {entry.outcome} {entry.message}".strip(),
                }
            )
    res.history.sort(key=lambda h: h["at"] or timezone.now() - timedelta(days=36500), reverse=True)
    return res


def _search_cidr(q: str, net: IPNetwork, cluster: Cluster | None) -> SearchResults:
    res = SearchResults(q=q, kind="cidr", network=net)
    lo, hi = network_key_bounds(net)
    res.pools = list(
        _scoped(IPPool.objects.filter(first_ip__lte=hi, last_ip__gte=lo), cluster)
        .select_related("cluster")
        .order_by("first_ip")[:SEARCH_LIMIT]
    )
    res.nads = list(
        _scoped(
            NetworkAttachmentDefinition.objects.filter(
                ranges__first_ip__lte=hi, ranges__last_ip__gte=lo
            ),
            cluster,
        )
        .select_related("cluster")
        .distinct()
        .order_by("namespace", "name")[:SEARCH_LIMIT]
    )
    allocs = _scoped(Allocation.objects.filter(ip__range=(lo, hi)), cluster)
    res.allocation_count = allocs.count()
    res.allocations = list(allocs.select_related("pool").order_by("ip")[:SEARCH_LIMIT])
    return res


__all__ = [
    "AllocationMap",
    "ClusterHealth",
    "cluster_health",
    "explain_cni_error",
    "key_to_ip",
    "pool_allocation_map",
    "pool_list_with_usage",
    "search",
]
