"""Node-slice rules (whereabouts >= 0.9, node_slice_size; see ippam/nodeslice.py): slices
stranded on vanished nodes, nodes without a slice, and pools with no free slice left.

Only the slices ``check_slices`` counts take part: an entry that overlaps another, lies
outside the range or in another family, is a node's second slice, or belongs to an unusable
sliceSize is a problem the NAD and node pages show, not a slice that is free or taken."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from django.db.models import Q

from ippam.leaks.rules.common import DEAD_PHASES, Candidate, Context, Kind, _pool_label
from ippam.models import IPPool, NADRange, NodeSlicePool, Pod
from ippam.nodeslice import SliceCheck, check_slices


@dataclass
class _SliceNet:
    """A NodeSlicePool with the NADs that feed it."""

    id: int
    namespace: str
    name: str
    range: str
    slice_size: str
    allocations: list[tuple[str, str]]  # (nodeName, sliceRange); "" is a free slice
    created_at: dt.datetime | None
    nads: list[tuple[int, str]] = field(default_factory=list)  # (id, "ns/name")

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"

    @cached_property
    def check(self) -> SliceCheck:
        return check_slices(self.range, self.slice_size, self.allocations)

    @property
    def free(self) -> int:
        return self.check.free


def _slice_nets(ctx: Context) -> list[_SliceNet]:
    """The cluster's NodeSlicePools and their NADs. whereabouts names the pool after the
    NAD's network_name, or its CNI config name when unset (node-controller getSliceName)."""
    nets: dict[str, _SliceNet] = {}
    for pk, ns, name, rng, size, allocations, created in NodeSlicePool.objects.filter(
        cluster=ctx.cluster
    ).values_list("id", "namespace", "name", "range", "slice_size", "allocations", "created_at"):
        pairs = [
            (str(a.get("nodeName") or ""), str(a.get("sliceRange") or ""))
            for a in allocations or ()
            if isinstance(a, dict)
        ]
        nets.setdefault(name, _SliceNet(pk, ns, name, rng, size, pairs, created))
    if not nets:
        return []
    ranges = NADRange.objects.filter(cluster=ctx.cluster).exclude(node_slice_size="")
    for network_name, config, nad_id, nad_ns, nad_name in ranges.values_list(
        "network_name", "nad__config", "nad_id", "nad__namespace", "nad__name"
    ):
        config_name = str(config.get("name") or "") if isinstance(config, dict) else ""
        net = nets.get(network_name or config_name)
        if net is not None and all(i != nad_id for i, _ in net.nads):
            net.nads.append((nad_id, f"{nad_ns}/{nad_name}"))
    return sorted(nets.values(), key=lambda n: (n.namespace, n.name))


def stranded_slices(ctx: Context) -> list[Candidate]:
    """A slice still assigned to a node that no longer exists: nobody can allocate from it
    and its addresses are stranded. The node-slice controller frees a slice only when it
    handles the Node's delete event (removeUnusedNodes); a missed event (controller down or
    restarted without a resync of that NAD) leaves it assigned for good."""
    if not ctx.node_ready:  # nodes not synced: a gone node cannot be told from an unknown one
        return []
    nets = _slice_nets(ctx)
    if not nets:
        return []
    pools = {
        (node, rng, network_name): (pk, ns, name, allocated)
        for pk, ns, name, node, rng, network_name, allocated in IPPool.objects.filter(
            cluster=ctx.cluster
        )
        .exclude(slice_range="")
        .values_list(
            "id", "namespace", "name", "node_name", "slice_range", "network_name", "allocated"
        )
    }
    found = []
    for net in nets:
        for node, slice_range in net.check.counted:
            if not node or node in ctx.node_ready:
                continue
            pool = pools.get((node, slice_range, net.name)) or pools.get((node, slice_range, ""))
            held = pool[3] if pool else 0
            where = f"IPPool {_pool_label(pool[1], pool[2])}" if pool else "no IPPool yet"
            found.append(
                Candidate(
                    kind=Kind.SLICE_STRANDED,
                    identity=f"{Kind.SLICE_STRANDED}:{net.label}#{slice_range}",
                    reason=(
                        f"slice {slice_range} of NodeSlicePool {net.label} is still assigned to "
                        f"node {node}, which no longer exists ({where}, {held} allocations): "
                        "no node can allocate from it. whereabouts' node-slice controller frees "
                        "a slice only when it sees the Node deleted; restart it (it requeues "
                        "every NAD and clears slices of gone nodes), and reclaim the "
                        "allocations of the node's pods"
                    ),
                    pool_id=pool[0] if pool else None,
                    nad_id=net.nads[0][0] if net.nads else None,
                    node_name=node,
                    details={
                        "network": net.name,
                        "slice": slice_range,
                        "allocated": held,
                        "nads": [n for _, n in net.nads],
                    },
                )
            )
    return found


def nodes_without_slice(ctx: Context) -> list[Candidate]:
    """A node with pods on a node-slice network but no slice of it: whereabouts fails their
    ADD with "no allocated node slice for node" (storage/kubernetes GetNodeSlicePoolRange).
    The controller assigns slices only on NAD events and Node add/delete, and leaves a node
    without one when none is free."""
    if not ctx.node_ready:
        return []
    nets = {nad: net for net in _slice_nets(ctx) for nad in net.nads}
    if not nets:
        return []
    by_ref = {label: (nad_id, net) for (nad_id, label), net in nets.items()}
    assigned = {(net.id, node) for net in nets.values() for node, _ in net.allocations if node}
    # Few pods name a node-slice NAD: narrow by the annotation's text, then read the parsed
    # requests of those pods only.
    names = sorted({label.split("/", 1)[1] for label in by_ref})
    mention = Q()
    for name in names:
        mention |= Q(networks_annotation__contains=name)
    pods = (
        Pod.objects.filter(cluster=ctx.cluster, deletion_timestamp__isnull=True)
        .exclude(node_name="")
        .exclude(phase__in=DEAD_PHASES)
        .filter(mention)
        .values_list("namespace", "name", "node_name", "requested_networks", "created_at")
    )
    groups: dict[tuple[int, str], list[tuple[str, dt.datetime | None]]] = defaultdict(list)
    nad_of: dict[tuple[int, str], tuple[int, str]] = {}
    for ns, name, node, requested, created in pods:
        if node not in ctx.node_ready:
            continue  # a pod on a gone node is another problem
        for req in requested or ():
            if not isinstance(req, dict):
                continue
            label = f"{req.get('namespace') or ns}/{req.get('name')}"
            hit = by_ref.get(label)
            if hit is None or (hit[1].id, node) in assigned:
                continue
            key = (hit[1].id, node)
            groups[key].append((f"{ns}/{name}", created))
            nad_of.setdefault(key, (hit[0], label))
    nets_by_id = {net.id: net for net in nets.values()}
    found = []
    for (net_id, node), pods_ in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        net = nets_by_id[net_id]
        nad_id, nad_label = nad_of[(net_id, node)]
        refs = sorted({ref for ref, _ in pods_})
        fix = (
            f"{net.free} slices are free, so the controller missed this node: restart "
            "whereabouts' node-slice controller (it requeues every NAD)"
            if net.free
            else "no slice is free: give the network a larger range or a smaller "
            "node_slice_size (the controller then re-slices and reassigns every node), or "
            "free the slices of nodes that are gone"
        )
        dates = [c for _, c in pods_ if c]
        found.append(
            Candidate(
                kind=Kind.NODE_WITHOUT_SLICE,
                identity=f"{Kind.NODE_WITHOUT_SLICE}:{net.label}:{node}",
                reason=(
                    f"node {node} has {len(refs)} pod{'s' if len(refs) != 1 else ''} on NAD "
                    f"{nad_label} but no slice of "
                    f'NodeSlicePool {net.label}: whereabouts fails their ADD with "no '
                    f'allocated node slice for node". {fix[0].upper()}{fix[1:]}'
                ),
                nad_id=nad_id,
                podref=refs[0],
                node_name=node,
                details={"network": net.name, "pods": refs[:20], "count": len(refs)},
                changed_at=max(dates, default=None),
            )
        )
    return found


def exhausted_slices(ctx: Context) -> list[Candidate]:
    """Every slice of a NodeSlicePool is assigned: the next node to join gets none (the
    controller leaves it without one, silently) and its pods on the network fail."""
    found = []
    for net in _slice_nets(ctx):
        counted = net.check.counted
        if not counted or net.free:
            continue
        gone = sorted(node for node, _ in counted if ctx.node_ready and node not in ctx.node_ready)
        note = (
            f"; {len(gone)} of them belong to nodes that are gone ({', '.join(gone[:5])})"
            if gone
            else ""
        )
        odd = len(net.check.odd)
        odd_note = (
            f" ({odd} more listed entr{'ies are' if odd != 1 else 'y is'} no usable slice and "
            "not counted: see the NAD page)"
            if odd
            else ""
        )
        found.append(
            Candidate(
                kind=Kind.SLICES_EXHAUSTED,
                identity=f"{Kind.SLICES_EXHAUSTED}:{net.label}",
                reason=(
                    f"all {len(counted)} slices of NodeSlicePool {net.label} "
                    f"({net.range}) are assigned{note}{odd_note}: a node that joins gets no "
                    "slice and its pods on this network fail. Give the network a larger range "
                    "or a smaller node_slice_size before adding nodes"
                ),
                nad_id=net.nads[0][0] if net.nads else None,
                details={
                    "network": net.name,
                    "slices": len(counted),
                    "not_counted": odd,
                    "gone_nodes": gone,
                    "nads": [n for _, n in net.nads],
                },
            )
        )
    return found
