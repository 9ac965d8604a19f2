"""Whereabouts' node-slice mode ("Fast IPAM", whereabouts >= 0.9), as pure functions.

Pure module (no Django, no kubernetes client). What whereabouts does, read in its source
(k8snetworkplumbingwg/whereabouts at 3a262bd0; ``doc/proposals/fast_ipam_by_node.md`` is
the design, the code below is what runs):

- Setting ``node_slice_size`` in the IPAM config turns the mode on. The node-slice
  controller (``pkg/node-controller/controller.go`` ``syncHandler``) cuts the NAD's first
  range (``IPRanges[0].Range``) into slices with ``iphelpers.DivideRangeBySize``:
  contiguous, ascending, the first starting at the range's network address, IPv4 only.
  It keeps them in a NodeSlicePool named after ``network_name``, or the CNI config's
  ``name`` when that is unset (``getSliceName``), as ``status.allocations`` =
  ``[{nodeName, sliceRange}]``; an empty ``nodeName`` is a free slice.
- A node without a slice takes the *first* free one (``assignNodeToSlice``); a node that
  has one keeps it. When no slice is free the node is silently left without one (a TODO in
  the code, no event). Only Node add and delete events requeue the NADs; on a delete,
  ``removeUnusedNodes`` clears the node's ``nodeName``, which frees the slice. The per-node
  IPPool is not deleted.
- The plugin (``pkg/storage/kubernetes/ipam.go`` ``IPManagementKubernetesUpdate``) finds
  its node's ``sliceRange`` in the NodeSlicePool (``GetNodeSlicePoolRange``; no entry:
  the ADD fails with "no allocated node slice for node"). It then allocates from the whole
  range with ``range_start``/``range_end`` replaced by the slice's ``FirstUsableIP`` and
  ``LastUsableIP`` and no ``exclude``: the user's range_start, range_end and exclude are
  dropped, and the network and broadcast addresses *of every slice* are skipped (not only
  those of the whole range). The IPPool is ``IPPoolName`` with a node:
  ``[network_name-]<node>-<slice with ':' and '/' as '-'>``; its ``spec.range`` is the
  slice, so allocation offsets count from the slice's network address.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from netaddr import IPAddress, IPNetwork

from ippam.ipparse import go_cidr
from ippam.naming import node_pool_name, normalize_range
from ippam.ranges import UsableRange, range_usable

__all__ = [
    "MAX_SLICES_LISTED",
    "PoolSlice",
    "SliceCheck",
    "SliceNetwork",
    "SlicePlan",
    "check_slices",
    "divide_range",
    "map_pool",
    "pool_name_for",
    "slice_prefix",
    "slice_usable",
    "slices_usable_total",
]

# A NodeSlicePool lists every slice in one object; etcd refuses objects over ~1.5 MB, about
# 30,000 entries of {nodeName, sliceRange}. ippam never lists more slices than this one by
# one (counts stay arithmetic).
MAX_SLICES_LISTED = 30_000

# Go's strconv.Atoi after strings.TrimPrefix(size, "/"): an optional sign and decimal digits.
_ATOI = re.compile(r"[+-]?[0-9]+")


def slice_prefix(size: str) -> int | None:
    """The prefix length ``node_slice_size`` asks for ("/22" or "22"), or None when
    whereabouts' ``DivideRangeBySize`` cannot read it (then it makes no slices at all)."""
    text = size[1:] if size.startswith("/") else size
    if not _ATOI.fullmatch(text):
        return None
    return int(text)


@dataclass(frozen=True)
class SlicePlan:
    """How the controller cuts a range: ``count`` slices of ``/prefix`` from ``network``;
    ``error`` says why it makes none (then ``count`` is 0)."""

    network: IPNetwork | None
    prefix: int
    count: int
    error: str = ""

    def slices(self, limit: int = MAX_SLICES_LISTED) -> list[IPNetwork]:
        """The slices in the controller's order, at most ``limit`` of them."""
        if self.network is None or self.error:
            return []
        step = 2 ** (32 - self.prefix)
        base = self.network.first
        return [IPNetwork((base + i * step, self.prefix)) for i in range(min(self.count, limit))]


def divide_range(range_cidr: str, size: str) -> SlicePlan:
    """The slices whereabouts' ``DivideRangeBySize`` makes of ``range_cidr``.

    Mirrors its refusals: a size it cannot read gives no slices (it returns nil, nil, so
    the NodeSlicePool has no allocations and every ADD fails); a slice larger than the
    range is an error. IPv6 is refused: the function does uint32 arithmetic on
    ``ip.To4()`` and crashes the controller on an IPv6 range.
    """
    prefix = slice_prefix(size)
    if prefix is None:
        return SlicePlan(None, 0, 0, f'node_slice_size "{size}" is not a number such as "/26"')
    net = go_cidr(range_cidr)
    if net is None:
        return SlicePlan(None, prefix, 0, f"range {range_cidr!r} is not a CIDR")
    if net.version != 4:
        return SlicePlan(
            net, prefix, 0, "whereabouts' node-slice controller handles IPv4 ranges only"
        )
    # DivideRangeBySize refuses a range not written with its network address, but it is
    # only ever given one: LoadIPAMConfiguration (pkg/config/config.go) rewrites every
    # range to ipNet.String() first, so "10.0.0.5/24" is sliced as 10.0.0.0/24.
    if prefix < net.prefixlen:
        return SlicePlan(
            net,
            prefix,
            0,
            f"slices of /{prefix} are larger than the range {net.cidr}; "
            f"use a node_slice_size of /{net.prefixlen} or longer",
        )
    if prefix > 32:
        return SlicePlan(net, prefix, 0, f"/{prefix} is not an IPv4 prefix length")
    return SlicePlan(net.cidr, prefix, 2 ** (prefix - net.prefixlen))


# A NodeSlicePool with thousands of odd slices (a controller gone wrong) is described by its
# first ones; the count says how many more.
MAX_SLICE_PROBLEMS = 50


@dataclass(frozen=True)
class SliceCheck:
    """A NodeSlicePool's ``status.allocations`` held against the slices its controller cuts.

    ``counted`` are the (nodeName, sliceRange) entries that are slices of the plan, one per
    node, overlapping none: only they count (free slices, taken slices, "all slices taken").
    ``odd`` maps the index of every other entry to why; ``problems`` says it in sentences.
    """

    plan: SlicePlan
    counted: tuple[tuple[str, str], ...]
    odd: tuple[tuple[int, str], ...]
    problems: tuple[str, ...]

    @property
    def free(self) -> int:
        return sum(1 for node, _ in self.counted if not node)

    def reason(self, index: int) -> str:
        """Why entry ``index`` is not counted ("" when it is)."""
        return next((why for i, why in self.odd if i == index), "")


_WHOLE_RANGE = (
    "whereabouts ignores a range_start or range_end outside the range (iphelpers.GetIPRange), "
    "so {node} allocates beyond its slice, over other nodes' slices"
)


def check_slices(
    range_cidr: str, slice_size: str, allocations: Sequence[tuple[str, str]]
) -> SliceCheck:
    """Which listed slices are the controller's, and what is wrong with the others.

    Not counted, each with its consequence in whereabouts:
    - every entry when ``slice_size`` is unusable (not a number, "/0", larger than the
      range, a range the controller refuses): ``DivideRangeBySize`` cuts nothing, so no
      listed slice is one it made;
    - a ``sliceRange`` that is not a CIDR (the plugin's ``net.ParseCIDR`` fails: every ADD
      on that node fails);
    - a slice of the other address family, or outside the range: the plugin passes the
      slice's first and last usable address as range_start and range_end, which
      ``GetIPRange`` ignores when they are not in the range, so that node allocates from
      the whole range;
    - a slice of another size or off the controller's grid;
    - slices that overlap (or one listed twice): the nodes holding them hand out the same
      addresses, each from its own IPPool, so neither sees the other's;
    - a second slice of one node: ``GetNodeSlicePoolRange`` returns the first entry of a
      node, so the later ones are held (no other node gets them) and never used.
    """
    plan = divide_range(range_cidr, slice_size)
    reasons: dict[int, list[str]] = defaultdict(list)
    if plan.error:
        why = f"sliceSize {slice_size!r} is unusable: {plan.error}"
        problems = (f"{why}; whereabouts cuts no slices, so none of the listed is counted",)
        odd = tuple((i, why) for i in range(len(allocations)))
        return SliceCheck(plan, (), odd, problems if allocations else (why,))
    whole = plan.network
    if whole is None:  # divide_range gives a network whenever it gives no error
        return SliceCheck(plan, (), (), ())
    step = 2 ** (32 - plan.prefix)
    parsed: dict[int, IPNetwork] = {}
    for i, (node, text) in enumerate(allocations):
        who = f"node {node}" if node else "the node given it"
        net = go_cidr(text)
        if net is None:
            reasons[i].append(
                f"not a CIDR: the plugin cannot parse it and every ADD on {who} fails"
            )
            continue
        parsed[i] = net
        if net.version != whole.version:
            family = f"an IPv{net.version} slice of an IPv{whole.version} range"
            reasons[i].append(f"{family}: {_WHOLE_RANGE.format(node=who)}")
        elif not (whole.first <= net.first and net.last <= whole.last):
            reasons[i].append(f"outside the range {whole}: {_WHOLE_RANGE.format(node=who)}")
        elif net.prefixlen != plan.prefix or (net.first - whole.first) % step:
            reasons[i].append(f"not one of the /{plan.prefix} slices the controller cuts")
    # Overlaps, by a sweep in address order: each slice against the farthest-reaching one
    # before it (enough to mark every overlapping slice, without listing every pair).
    order = sorted(parsed, key=lambda i: (parsed[i].version, parsed[i].first, -parsed[i].last))
    reach: int | None = None
    for i in order:
        net = parsed[i]
        if reach is not None and parsed[reach].version == net.version:
            other = parsed[reach]
            if net.first <= other.last:
                twice = allocations[i][1] == allocations[reach][1]
                for me, them in ((i, reach), (reach, i)):
                    node = allocations[them][0]
                    held = f"node {node}" if node else "free"
                    what = "listed twice" if twice else f"overlaps {allocations[them][1]}"
                    reasons[me].append(
                        f"{what} ({held}): two nodes would hand out the same addresses, "
                        "each from its own IPPool, so neither sees the other's"
                    )
                if net.last <= other.last:
                    continue
        reach = i
    first_of: dict[str, int] = {}
    for i, (node, _slice) in enumerate(allocations):
        if not node:
            continue
        if node not in first_of:
            first_of[node] = i
            continue
        held = allocations[first_of[node]][1]
        reasons[i].append(
            f"node {node} holds {held} already: whereabouts uses a node's first slice only "
            "(GetNodeSlicePoolRange), so this one is held from every other node and unused"
        )
    odd = tuple((i, "; ".join(dict.fromkeys(reasons[i]))) for i in sorted(reasons))
    lines = [
        f"slice {allocations[i][1]!r} ({'node ' + allocations[i][0] if allocations[i][0] else 'free'}"
        f"), not counted: {why}"
        for i, why in odd[:MAX_SLICE_PROBLEMS]
    ]
    if len(odd) > MAX_SLICE_PROBLEMS:
        lines.append(f"and {len(odd) - MAX_SLICE_PROBLEMS} more slices not counted")
    counted = tuple(a for i, a in enumerate(allocations) if i not in reasons)
    return SliceCheck(plan, counted, odd, tuple(lines))


def slice_usable(range_cidr: IPNetwork, slice_cidr: IPNetwork) -> UsableRange:
    """What whereabouts may hand out on the node that holds ``slice_cidr``.

    Exactly its call: the whole range with ``range_start`` = ``FirstUsableIP(slice)`` and
    ``range_end`` = ``LastUsableIP(slice)``, no excludes. A slice of /31 or /32 has no
    usable address (``FirstUsableIP`` refuses it, so every ADD on that node fails).
    """
    if slice_cidr.size < 4:
        return UsableRange(
            range_cidr.cidr,
            1,
            0,
            error=f"slice {slice_cidr} is too small: whereabouts finds no usable address in it",
        )
    return range_usable(
        range_cidr,
        IPAddress(slice_cidr.first + 1, slice_cidr.version),
        IPAddress(slice_cidr.last - 1, slice_cidr.version),
    )


def slices_usable_total(plan: SlicePlan) -> int:
    """Addresses whereabouts may hand out over every slice of ``plan`` (each slice loses
    its own network and broadcast address; slices of /31 and /32 give none)."""
    if plan.error or plan.count == 0:
        return 0
    # One slice's count from the one count of usable addresses (ippam.ranges).
    if not 0 <= plan.prefix <= 32:
        return 0
    return plan.count * range_usable(IPNetwork((0, plan.prefix), version=4)).count


def pool_name_for(slice_cidr: str, node_name: str, network_name: str = "") -> str:
    """The IPPool whereabouts keeps for a node's slice (``IPPoolName`` with a node)."""
    return node_pool_name(slice_cidr, node_name, network_name)


@dataclass(frozen=True)
class SliceNetwork:
    """A node-slice network as the cluster shows it: its NodeSlicePool (``name`` is the
    network_name, or the config name when that is unset), the ``network_name`` its NADs
    set ("" when unset) and the pool's ``{nodeName, sliceRange}`` allocations."""

    name: str
    network_name: str
    range: str
    slice_size: str
    allocations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PoolSlice:
    """An IPPool read as a node-slice pool: the network (NodeSlicePool name) it belongs
    to, the node its name carries, its slice, and whether the NodeSlicePool still gives
    that slice to that node (False: the slice was freed or went to another node)."""

    network: str
    network_name: str
    node_name: str
    slice_range: str
    assigned: bool


def _inside(slice_net: IPNetwork, network: SliceNetwork) -> bool:
    whole = go_cidr(network.range)
    prefix = slice_prefix(network.slice_size)
    return (
        whole is not None
        and whole.version == slice_net.version
        and slice_net.prefixlen == prefix
        and whole.first <= slice_net.first
        and slice_net.last <= whole.last
    )


def map_pool(name: str, range_cidr: str, networks: Sequence[SliceNetwork]) -> PoolSlice | None:
    """Which node and slice an IPPool named ``name`` with ``spec.range`` ``range_cidr``
    belongs to, or None when it is no node-slice pool of ``networks``.

    The name is ``[network_name-]<node>-<normalized slice>``; node names and network
    names may both contain '-', so the name alone cannot be split. A network with a
    network_name takes pools whose name starts with it; an unnamed one takes the rest.
    A pool whose (node, slice) the NodeSlicePool lists wins over one matched by name only
    (a slice freed when its node left keeps its old IPPool).
    """
    slice_net = go_cidr(range_cidr)
    if slice_net is None:
        return None
    suffix = "-" + normalize_range(range_cidr)
    if not name.endswith(suffix) or len(name) == len(suffix):
        return None
    head = name[: -len(suffix)]
    matches: list[PoolSlice] = []
    for network in networks:
        if not _inside(slice_net, network):
            continue
        if network.network_name:
            lead = network.network_name + "-"
            if not head.startswith(lead) or len(head) == len(lead):
                continue
            node = head[len(lead) :]
        else:
            node = head
        assigned = (node, range_cidr) in network.allocations
        matches.append(PoolSlice(network.name, network.network_name, node, range_cidr, assigned))
    if not matches:
        return None
    # Listed by the NodeSlicePool first, then the longest network_name (most specific).
    return max(matches, key=lambda m: (m.assigned, len(m.network_name)))
