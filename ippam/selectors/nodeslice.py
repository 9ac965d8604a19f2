"""Node-slice mode on the NAD and node pages: each slice of a network, the node it belongs
to, its IPPool's utilization, the free slices; a node's slices. A few queries per page,
none per slice (see ippam/nodeslice.py for what whereabouts does)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ippam.models import Cluster, IPPool, NetworkAttachmentDefinition, Node, NodeSlicePool
from ippam.naming import node_slice_pool_name
from ippam.nodeslice import (
    MAX_SLICES_LISTED,
    check_slices,
    divide_range,
    slice_usable,
    slices_usable_total,
)

__all__ = ["SliceNetworkView", "SliceRow", "nad_node_slices", "node_slices"]


@dataclass(frozen=True)
class SliceRow:
    slice: str
    node: str  # "" when the slice is free
    node_id: int | None  # the Node row, None when free or the node is gone
    network: str = ""  # NodeSlicePool name (node page)
    pool: IPPool | None = None  # the IPPool of (node, slice), if whereabouts made it
    usable: int = 0
    # Why this entry is no usable slice and not counted (ippam.nodeslice.check_slices).
    problem: str = ""

    @property
    def gone(self) -> bool:
        return bool(self.node) and self.node_id is None

    @property
    def allocated(self) -> int:
        return self.pool.allocated if self.pool else 0

    @property
    def utilization(self) -> float:
        return self.allocated / self.usable if self.usable else 0.0


@dataclass
class SliceNetworkView:
    range: str
    slice_size: str
    name: str  # the NodeSlicePool whereabouts keeps (network_name, else config name)
    pool: NodeSlicePool | None
    usable_per_slice: int = 0
    usable_total: int = 0
    error: str = ""
    # What is wrong with the listed slices, as sentences (check_slices); the rows say which.
    problems: tuple[str, ...] = ()
    slices: list[SliceRow] = field(default_factory=list)
    # IPPools of this network whose (node, slice) the NodeSlicePool no longer lists: a node
    # left and its slice went free or to another node; whereabouts does not delete them.
    leftover_pools: list[IPPool] = field(default_factory=list)

    @property
    def counted(self) -> int:
        return sum(1 for s in self.slices if not s.problem)

    @property
    def not_counted(self) -> int:
        return len(self.slices) - self.counted

    @property
    def free(self) -> int:
        return sum(1 for s in self.slices if not s.node and not s.problem)

    @property
    def gone(self) -> int:
        return sum(1 for s in self.slices if s.gone and not s.problem)


def _config_name(nad: NetworkAttachmentDefinition) -> str:
    return str(nad.config.get("name") or "") if isinstance(nad.config, dict) else ""


def _errors(error: str) -> tuple[str, ...]:
    return (error,) if error else ()


def nad_node_slices(*, nad: NetworkAttachmentDefinition) -> list[SliceNetworkView]:
    """One view per node-slice range of the NAD (whereabouts uses the first range only)."""
    ranges = [r for r in nad.ranges.all() if r.node_slice_size]
    if not ranges:
        return []
    views = []
    for r in ranges[:1]:  # node-controller: IPRanges[0].Range
        name = node_slice_pool_name(r.network_name, _config_name(nad))
        nsp = (
            NodeSlicePool.objects.filter(cluster_id=nad.cluster_id, name=name)
            .order_by("namespace")
            .first()
        )
        plan = divide_range(
            nsp.range if nsp else r.range, nsp.slice_size if nsp else r.node_slice_size
        )
        view = SliceNetworkView(
            r.range, r.node_slice_size, name, nsp, error=plan.error, problems=_errors(plan.error)
        )
        if plan.network is not None and not plan.error:
            first = plan.slices(1)
            view.usable_per_slice = slice_usable(plan.network, first[0]).count if first else 0
            view.usable_total = slices_usable_total(plan)
        if nsp is None:
            views.append(view)
            continue
        pools = list(
            IPPool.objects.filter(cluster_id=nad.cluster_id, network_name=r.network_name)
            .exclude(slice_range="")
            .order_by("name")
        )
        by_key = {(p.node_name, p.slice_range): p for p in pools}
        pairs = [
            (str(a.get("nodeName") or ""), str(a.get("sliceRange") or ""))
            for a in (nsp.allocations or ())[:MAX_SLICES_LISTED]
            if isinstance(a, dict)
        ]
        nodes = dict(
            Node.objects.filter(
                cluster_id=nad.cluster_id, name__in={n for n, _ in pairs if n}
            ).values_list("name", "id")
        )
        check = check_slices(nsp.range, nsp.slice_size, pairs)
        view.problems = check.problems
        odd = dict(check.odd)
        for i, (node, slice_range) in enumerate(pairs):
            view.slices.append(
                SliceRow(
                    slice_range,
                    node,
                    nodes.get(node),
                    name,
                    by_key.get((node, slice_range)) if node else None,
                    0 if i in odd else view.usable_per_slice,
                    odd.get(i, ""),
                )
            )
        listed = set(pairs)
        slices = {s for _, s in pairs}
        view.leftover_pools = [
            p
            for p in pools
            if p.slice_range in slices and (p.node_name, p.slice_range) not in listed
        ]
        views.append(view)
    return views


def node_slices(*, cluster: Cluster | int, node_name: str, node_id: int | None) -> list[SliceRow]:
    """The node's slices across node-slice networks, and a row with slice "" for every
    network that has none for it (its pods there fail). One query without node-slice
    networks, two with."""
    cluster_id = cluster if isinstance(cluster, int) else cluster.pk
    rows: list[SliceRow] = []
    networks = list(NodeSlicePool.objects.filter(cluster_id=cluster_id).order_by("name"))
    if not networks:
        return rows
    pools = {
        (p.network_name, p.slice_range): p
        for p in IPPool.objects.filter(cluster_id=cluster_id, node_name=node_name).exclude(
            slice_range=""
        )
    }
    for nsp in networks:
        plan = divide_range(nsp.range, nsp.slice_size)
        first = plan.slices(1)
        usable = slice_usable(plan.network, first[0]).count if first and plan.network else 0
        pairs = [
            (str(a.get("nodeName") or ""), str(a.get("sliceRange") or ""))
            for a in (nsp.allocations or ())[:MAX_SLICES_LISTED]
            if isinstance(a, dict)
        ]
        mine = [i for i, (node, _) in enumerate(pairs) if node == node_name]
        odd = dict(check_slices(nsp.range, nsp.slice_size, pairs).odd) if mine else {}
        for i in mine:
            slice_range = pairs[i][1]
            pool = pools.get((nsp.name, slice_range)) or pools.get(("", slice_range))
            rows.append(
                SliceRow(
                    slice_range,
                    node_name,
                    node_id,
                    nsp.name,
                    pool,
                    0 if i in odd else usable,
                    odd.get(i, ""),
                )
            )
        if not mine:
            rows.append(SliceRow("", "", node_id, nsp.name, None, usable))
    return rows
