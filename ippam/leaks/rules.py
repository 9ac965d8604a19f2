"""Leak rules as set-based queries over the synced rows of one cluster (DESIGN.md §4).

Every rule is one or two SQL statements (anti-joins with NOT EXISTS, GROUP BY ... HAVING,
a self-join for ranges) that return only the *candidates*; Python then touches candidates
only, to fetch the context a person needs (the pod's phase, node, what its network-status
does list) with a few bulk queries, and to write the sentence. Nothing loops over every
allocation or pod of the cluster in Python, so detection stays within seconds at 150k
allocations (bench/leaks_bench.py).

Grace. A rule only fires once the objects involved have been stable for
settings.IPPAM_LEAK_GRACE_SECONDS (read at call time; 0 turns it off). Which timestamp says
"the object changed" differs per rule, and we only use timestamps the API server wrote,
never `synced_at` (a full resync may rewrite every row, which would hold every finding
forever):
- a pod's `creationTimestamp` for rules that read its network-status: Multus writes the
  annotation only after CNI ADD returns, seconds after the pod is created, and
  whereabouts allocates before that (whereabouts issues #162, #207 are exactly this race);
- for an allocation whose pod is gone, the creationTimestamp of its
  OverlappingRangeIPReservation (whereabouts creates it in the same ADD that allocates), or
  the last event ippam saw for the pod: a pod created after our pod list but allocated
  before our pool list would otherwise look orphaned for one sync;
- a reservation's own creationTimestamp; the newer NAD's for overlapping ranges;
- and when none of these dates an allocation (no reservation, no event, a pod without
  creationTimestamp), when ippam first saw it (Allocation.first_seen, kept across syncs):
  "no timestamp" must not read as "long ago", or the first sync raises it at once.

Suspicion. A finding about a pod that is Pending, terminating, on a NotReady (or vanished)
node, or whose only whereabouts attachment Multus marks `default: true` is "suspect", not
"leaked": the kubelet or Multus may simply not have caught up, and the whereabouts
reconciler makes the same exception for Pending pods (pkg/reconciler/iploop.go).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, connections, transaction
from django.db.models import CharField, Count, Exists, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Concat
from netaddr import IPAddress

from ippam.models import (
    Allocation,
    Cluster,
    Finding,
    InterfaceAddress,
    IPPool,
    NADRange,
    Node,
    NodeSlicePool,
    OverlappingRangeIPReservation,
    Pod,
    PodEvent,
    PodInterface,
)
from ippam.overlaps import OverlapSide, OverlapVerdict, overlap_verdict

Kind = Finding.Kind
State = Finding.State

#: Kinds whose findings reclamation can act on (DESIGN.md §5).
RECLAIMABLE_KINDS = (Kind.ORPHANED_ALLOCATION, Kind.STALE_ALLOCATION, Kind.ORPHANED_RESERVATION)

DEAD_PHASES = ("Succeeded", "Failed")
CHUNK = 2000


@dataclass
class Candidate:
    """A finding as the rules computed it, before it is upserted."""

    kind: str
    identity: str
    reason: str
    state: str = State.LEAKED
    ip: IPAddress | None = None
    pool_id: int | None = None
    allocation_key: str = ""
    reservation_id: int | None = None
    nad_id: int | None = None
    podref: str = ""
    node_name: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    # When the objects involved last changed, per the rule; None: long ago.
    changed_at: dt.datetime | None = None


@dataclass
class PodInfo:
    id: int
    namespace: str
    name: str
    node_name: str
    phase: str
    deletion_timestamp: dt.datetime | None
    created_at: dt.datetime | None
    has_network_status: bool
    # interface -> addresses, from the pod's network-status (non-default entries)
    addresses: dict[str, list[str]] = field(default_factory=dict)
    only_default_whereabouts: bool = False

    @property
    def podref(self) -> str:
        return f"{self.namespace}/{self.name}"


class Context:
    """What the rules share: the cluster, `now`, node readiness, and a pod cache."""

    def __init__(self, cluster: Cluster, now: dt.datetime) -> None:
        self.cluster = cluster
        self.now = now
        nodes = dict(Node.objects.filter(cluster=cluster).values_list("name", "ready"))
        self.node_ready: dict[str, bool] = nodes
        self._pods: dict[int, PodInfo] = {}

    def pods(self, ids: Iterable[int]) -> dict[int, PodInfo]:
        """PodInfo for these pod ids, loaded in bulk (three queries per chunk)."""
        ids = [i for i in ids if i is not None]
        missing = sorted({i for i in ids if i not in self._pods})
        for chunk in _chunks(missing):
            rows = Pod.objects.filter(id__in=chunk).values_list(
                "id",
                "namespace",
                "name",
                "node_name",
                "phase",
                "deletion_timestamp",
                "created_at",
                "network_status_annotation",
            )
            for pid, ns, name, node, phase, deleting, created, status in rows:
                self._pods[pid] = PodInfo(
                    pid, ns, name, node, phase, deleting, created, bool(status)
                )
            addresses = InterfaceAddress.objects.filter(
                interface__pod_id__in=chunk, interface__default=False
            ).values_list("interface__pod_id", "interface__interface", "ip")
            for pid, iface, ip in addresses:
                self._pods[pid].addresses.setdefault(iface or "?", []).append(str(ip))
            # Pods whose every whereabouts-managed attachment is the default network.
            managed = PodInterface.objects.filter(
                pod_id__in=chunk, nad__ranges__isnull=False
            ).values_list("pod_id", "default")
            defaults: dict[int, set[bool]] = defaultdict(set)
            for pid, is_default in managed:
                defaults[pid].add(is_default)
            for pid, flags in defaults.items():
                self._pods[pid].only_default_whereabouts = flags == {True}
        return {i: self._pods[i] for i in ids if i in self._pods}

    def suspicion(self, pod: PodInfo) -> str:
        """Why a finding about this pod is only suspect, or "" when it is a leak."""
        if pod.deletion_timestamp is not None and pod.node_name and self.node_ready:
            ready = self.node_ready.get(pod.node_name)
            if not ready:
                # Stuck Terminating: the kubelet that would tear the sandbox down (and run
                # CNI DEL, which frees the address) is down or gone, so the pod object stays
                # and nothing says whether the address is still in use. Never a leak while
                # the pod object exists.
                where = "which no longer exists" if ready is None else "which is NotReady"
                return (
                    f"pod {pod.podref} is stuck terminating (deletion requested "
                    f"{_when(pod.deletion_timestamp)}) on node {pod.node_name}, {where}: its "
                    "address is freed only once the pod object is gone"
                )
        if pod.deletion_timestamp is not None:
            return f"pod {pod.podref} is terminating (deletion requested {_when(pod.deletion_timestamp)})"
        if pod.phase == "Pending":
            return f"pod {pod.podref} is Pending, so Multus may not have written its network-status yet"
        if pod.node_name and self.node_ready:  # no Node rows at all: nodes not synced
            ready = self.node_ready.get(pod.node_name)
            if ready is None:
                return f"pod {pod.podref} is on node {pod.node_name}, which no longer exists"
            if not ready:
                return f"pod {pod.podref} is on node {pod.node_name}, which is NotReady, so its status may be out of date"
        if pod.only_default_whereabouts:
            return (
                f"the only whereabouts attachment of pod {pod.podref} is its default network "
                "(network-status marks it default: true)"
            )
        return ""


def _chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _when(moment: dt.datetime | None) -> str:
    if moment is None:
        return "at an unknown time"
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _pool_label(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def _listing(pod: PodInfo) -> str:
    if not pod.has_network_status:
        return "it has no network-status annotation"
    if not pod.addresses:
        return "its network-status lists no secondary address"
    shown = "; ".join(f"{iface}: {', '.join(ips)}" for iface, ips in sorted(pod.addresses.items()))
    return f"its network-status lists {shown}"


def _pod_id(cluster: Cluster) -> Subquery:
    return Subquery(
        Pod.objects.filter(
            cluster=cluster, namespace=OuterRef("pod_namespace"), name=OuterRef("pod_name")
        ).values("id")[:1]
    )


# --- the rules ------------------------------------------------------------------------------


def unlisted_allocations(ctx: Context) -> list[Candidate]:
    """Orphaned and stale allocations in one pass: the allocations that no non-default
    interface of a pod of that name lists. One anti-join (hashed on PostgreSQL); the pod,
    its reservation's age and its last event are looked up for those few rows only. No pod:
    orphaned. A pod: stale (unless it completed)."""
    cluster = ctx.cluster
    # Any interface of the pod counts, the default network's too. whereabouts' reconciler
    # reads only non-default network-status entries and so frees the address of a pod whose
    # *default* network whereabouts serves (Multus `v1.multus-cni.io/default-network`, the
    # KubeVirt virt-launcher case): k8snetworkplumbingwg/whereabouts#638, fix PR #644 still
    # open. That address is held by a running VM; ippam must not call it a leak.
    listed = InterfaceAddress.objects.filter(
        cluster=cluster,
        ip=OuterRef("ip"),
        interface__pod__namespace=OuterRef("pod_namespace"),
        interface__pod__name=OuterRef("pod_name"),
    )
    orip_created = Subquery(
        OverlappingRangeIPReservation.objects.filter(
            cluster=cluster, ip=OuterRef("ip"), podref=OuterRef("podref")
        ).values("created_at")[:1]
    )
    last_event = Subquery(
        PodEvent.objects.filter(
            cluster=cluster, pod_namespace=OuterRef("pod_namespace"), pod_name=OuterRef("pod_name")
        )
        .order_by("-last_seen")
        .values("last_seen")[:1]
    )
    rows = list(
        Allocation.objects.filter(cluster=cluster)
        .exclude(Exists(listed))
        .annotate(pod_id=_pod_id(cluster), orip_created=orip_created, last_event=last_event)
        .values(
            "key",
            "ip",
            "podref",
            "ifname",
            "pool_id",
            "pool__namespace",
            "pool__name",
            "pod_id",
            "orip_created",
            "last_event",
            "first_seen",
        )
        .order_by()
    )
    orphaned = [r for r in rows if r["pod_id"] is None]
    stale = [r for r in rows if r["pod_id"] is not None]
    return _orphaned(orphaned) + _stale(ctx, stale)


def _orphaned(rows: list[dict[str, Any]]) -> list[Candidate]:
    found = []
    for row in rows:
        pool = _pool_label(row["pool__namespace"], row["pool__name"])
        ip = row["ip"]
        changed = max(
            (t for t in (row["orip_created"], row["last_event"]) if t), default=row["first_seen"]
        )
        if not row["podref"]:
            state = State.SUSPECT
            reason = (
                f"{ip} in {pool} (key {row['key']}) names no pod: the allocation has no podref, "
                "so ippam cannot tell who holds it; check the pods on this network before reclaiming"
            )
        elif not _is_podref(row["podref"]):
            # Never reclaim on the basis of a podref whereabouts could not have written:
            # nothing says the pod it meant is gone (the pool's problems say what is odd).
            state = State.SUSPECT
            reason = (
                f"{ip} in {pool} (key {row['key']}) is allocated to {row['podref']!r}, which is "
                "not namespace/name, so ippam cannot tell who holds it; check the pods on this "
                "network before reclaiming"
            )
        else:
            state = State.LEAKED
            seen = (
                f"last seen {_when(row['last_event'])}"
                if row["last_event"]
                else "not in the last sync"
            )
            reason = (
                f"{ip} in {pool} is allocated to {row['podref']}, which no longer exists ({seen}); "
                "the address can be reclaimed"
            )
        found.append(
            Candidate(
                kind=Kind.ORPHANED_ALLOCATION,
                identity=f"{Kind.ORPHANED_ALLOCATION}:{pool}:{row['key']}",
                reason=reason,
                state=state,
                ip=ip,
                pool_id=row["pool_id"],
                allocation_key=row["key"],
                podref=row["podref"],
                details={
                    "ifname": row["ifname"],
                    "pod_last_seen": row["last_event"] and row["last_event"].isoformat(),
                },
                changed_at=changed,
            )
        )
    return found


def _stale(ctx: Context, rows: list[dict[str, Any]]) -> list[Candidate]:
    pods = ctx.pods(r["pod_id"] for r in rows)
    found = []
    for row in rows:
        pod = pods[row["pod_id"]]
        if pod.phase in DEAD_PHASES:
            # A completed pod keeps its network-status; the address is its until the
            # sandbox is torn down, and then it is orphaned, not stale.
            continue
        pool = _pool_label(row["pool__namespace"], row["pool__name"])
        why = ctx.suspicion(pod)
        reason = f"{row['ip']} in {pool} is allocated to {pod.podref}, but {_listing(pod)}"
        now_holds = pod.addresses.get(row["ifname"]) if row["ifname"] else None
        if now_holds:
            # A StatefulSet pod re-created under the same name with a new address: the podref
            # matches, the address does not, so this older allocation is the stale one
            # (whereabouts' reconciler once reclaimed the wrong one: issues #176, #182).
            reason += (
                f" (it was re-created under the same name, as StatefulSet pods are, and now "
                f"holds {', '.join(now_holds)} on {row['ifname']}: this older allocation is the "
                "stale one)"
            )
        if why:
            reason += f"; suspect only: {why}"
        else:
            reason += f" (pod {pod.phase or 'phase unknown'}); the address can be reclaimed"
        found.append(
            Candidate(
                kind=Kind.STALE_ALLOCATION,
                identity=f"{Kind.STALE_ALLOCATION}:{pool}:{row['key']}",
                reason=reason,
                state=State.SUSPECT if why else State.LEAKED,
                ip=row["ip"],
                pool_id=row["pool_id"],
                allocation_key=row["key"],
                podref=pod.podref,
                node_name=pod.node_name,
                details={
                    "ifname": row["ifname"],
                    "pod_phase": pod.phase,
                    "pod_addresses": pod.addresses,
                },
                changed_at=pod.created_at or row["first_seen"],
            )
        )
    return found


def _is_podref(podref: str) -> bool:
    namespace, sep, name = podref.partition("/")
    return bool(sep and namespace and name and "/" not in name)


def untracked_addresses(ctx: Context) -> list[Candidate]:
    cluster = ctx.cluster
    nad_ref = OuterRef("interface__nad_id")
    # ippam.sync links every NADRange to the IPPool whereabouts keeps for it (by name).
    held = Allocation.objects.filter(
        cluster=cluster, ip=OuterRef("ip"), pool__nad_ranges__nad_id=nad_ref
    )
    # Node-slice mode keeps no pool per range but one per node and slice
    # ([network_name-]node-slice, mapped by ippam.sync.nodeslice): held there counts too.
    held_in_slice = (
        Allocation.objects.filter(cluster=cluster, ip=OuterRef("ip"))
        .exclude(pool__slice_range="")
        .filter(
            Exists(
                NADRange.objects.filter(
                    nad_id=OuterRef(nad_ref),
                    network_name=OuterRef("pool__network_name"),
                ).exclude(node_slice_size="")
            )
        )
    )
    # SQL keeps to equalities (NAD has ranges; no allocation of that address in the NAD's
    # pools), which PostgreSQL estimates well and hashes; whether the address falls inside
    # one of the NAD's ranges is checked here for the few rows left (an address outside
    # them did not come from whereabouts).
    addresses = list(
        InterfaceAddress.objects.filter(cluster=cluster, interface__nad__isnull=False)
        .exclude(interface__pod__phase__in=DEAD_PHASES)
        .filter(Exists(NADRange.objects.filter(nad_id=nad_ref)))
        .exclude(Exists(held))
        .exclude(Exists(held_in_slice))
        .values(
            "ip",
            "interface__interface",
            "interface__pod_id",
            "interface__nad_id",
            "interface__nad__namespace",
            "interface__nad__name",
        )
        .order_by()
    )
    ranges: dict[int, list[tuple[int, int, int | None]]] = defaultdict(list)
    nad_ids = sorted({r["interface__nad_id"] for r in addresses})
    for chunk in _chunks(nad_ids):
        for nad_id, first_ip, last_ip, range_pool_id in NADRange.objects.filter(
            nad_id__in=chunk, first_ip__isnull=False, last_ip__isnull=False
        ).values_list("nad_id", "first_ip", "last_ip", "pool_id"):
            ranges[nad_id].append((_ordinal(first_ip), _ordinal(last_ip), range_pool_id))
    rows: list[dict[str, Any]] = []
    for address in addresses:
        ip = _ordinal(address["ip"])
        for first, last, pool_id in ranges.get(address["interface__nad_id"], ()):
            if first <= ip <= last:
                rows.append({**address, "range_pool_id": pool_id})
                break
    pods = ctx.pods(r["interface__pod_id"] for r in rows)
    found = []
    for row in rows:
        pod = pods[row["interface__pod_id"]]
        nad = f"{row['interface__nad__namespace']}/{row['interface__nad__name']}"
        why = ctx.suspicion(pod)
        reason = (
            f"{row['ip']} on {pod.podref} ({row['interface__interface'] or 'interface ?'}, NAD {nad}) "
            "is not allocated in any IPPool of that NAD, so whereabouts may hand it to another pod"
        )
        reason += f"; suspect only: {why}" if why else "; restart the pod to get a tracked address"
        found.append(
            Candidate(
                kind=Kind.UNTRACKED_ADDRESS,
                identity=f"{Kind.UNTRACKED_ADDRESS}:{nad}:{row['ip']}:{pod.podref}",
                reason=reason,
                state=State.SUSPECT if why else State.LEAKED,
                ip=row["ip"],
                pool_id=row["range_pool_id"],
                nad_id=row["interface__nad_id"],
                podref=pod.podref,
                node_name=pod.node_name,
                details={"interface": row["interface__interface"]},
                changed_at=pod.created_at,
            )
        )
    return found


def _ordinal(ip: IPAddress) -> int:
    """An address as one comparable number (IPv4 mapped into ::ffff:0:0/96, like the keys)."""
    return int(ip) | (0xFFFF00000000 if ip.version == 4 else 0)


def _interface_scope() -> Any:
    """The address scope of an interface: whereabouts' network_name for a managed NAD's
    range ("wb:<network_name>"), else the NAD itself ("nad:<id>")."""
    network = Subquery(
        NADRange.objects.filter(
            nad_id=OuterRef("interface__nad_id"),
            first_ip__lte=OuterRef("ip"),
            last_ip__gte=OuterRef("ip"),
        ).values("network_name")[:1],
        output_field=CharField(),
    )
    return Coalesce(
        Concat(Value("wb:"), network, output_field=CharField()),
        Concat(Value("nad:"), F("interface__nad_id"), output_field=CharField()),
        output_field=CharField(),
    )


def duplicate_addresses(ctx: Context) -> list[Candidate]:
    cluster = ctx.cluster
    found: list[Candidate] = []
    # (a) one address on two live pods' interfaces of the same network. GROUP BY address
    # first (the (cluster, ip) index, no join), then look closer only at shared addresses.
    live = InterfaceAddress.objects.filter(cluster=cluster, interface__nad__isnull=False).exclude(
        interface__pod__phase__in=DEAD_PHASES
    )
    shared = list(
        InterfaceAddress.objects.filter(cluster=cluster)
        .values("ip")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .values_list("ip", flat=True)
    )
    members: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for chunk in _chunks(sorted(shared, key=int)):
        for row in (
            live.filter(ip__in=chunk)
            .annotate(scope=_interface_scope())
            .values(
                "scope",
                "ip",
                "interface__pod_id",
                "interface__interface",
                "interface__nad_id",
                "interface__nad__namespace",
                "interface__nad__name",
            )
        ):
            members[(row["scope"], str(row["ip"]))].append(row)
    members = {k: v for k, v in members.items() if len({r["interface__pod_id"] for r in v}) > 1}
    if members:
        pods = ctx.pods(r["interface__pod_id"] for rows in members.values() for r in rows)
        for (scope, ip), rows in sorted(members.items()):
            holders = sorted({pods[r["interface__pod_id"]].podref for r in rows})
            involved = [pods[r["interface__pod_id"]] for r in rows]
            whys = [w for w in (ctx.suspicion(p) for p in involved) if w]
            nads = sorted(
                {f"{r['interface__nad__namespace']}/{r['interface__nad__name']}" for r in rows}
            )
            network = scope[3:] if scope.startswith("wb:") else ""
            where = f"network {network!r}" if network else f"NAD {', '.join(nads)}"
            reason = f"{ip} is on {len(holders)} live pods of {where} at once: {', '.join(holders)}"
            reason += f"; suspect only: {whys[0]}" if whys else "; restart all but one of them"
            found.append(
                Candidate(
                    kind=Kind.DUPLICATE_ADDRESS,
                    identity=f"{Kind.DUPLICATE_ADDRESS}:pods:{scope}:{ip}",
                    reason=reason,
                    state=State.SUSPECT if whys else State.LEAKED,
                    ip=IPAddress(ip),
                    nad_id=rows[0]["interface__nad_id"],
                    podref=", ".join(holders)[:317],
                    node_name=", ".join(sorted({p.node_name for p in involved if p.node_name}))[
                        :253
                    ],
                    details={"pods": holders, "nads": nads},
                    changed_at=max((p.created_at for p in involved if p.created_at), default=None),
                )
            )
    # (b) one address allocated in two pools of the same network_name.
    # Addresses allocated more than once at all (no join), then their pools' networks.
    dup_ips = list(
        Allocation.objects.filter(cluster=cluster)
        .values("ip")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .values_list("ip", flat=True)
    )
    if dup_ips:
        members_p: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
        for chunk in _chunks(sorted(dup_ips, key=int)):
            for alloc in Allocation.objects.filter(cluster=cluster, ip__in=chunk).values(
                "pool__network_name",
                "ip",
                "pool_id",
                "pool__namespace",
                "pool__name",
                "key",
                "podref",
            ):
                members_p[(alloc["pool__network_name"], str(alloc["ip"]))].append(alloc)
        members_p = {k: v for k, v in members_p.items() if len({r["pool_id"] for r in v}) > 1}
        for (network, ip), rows in sorted(members_p.items()):
            where = ", ".join(
                f"{_pool_label(r['pool__namespace'], r['pool__name'])} (to {r['podref'] or '?'})"
                for r in rows
            )
            scope = f"network {network!r}" if network else "the unnamed network"
            found.append(
                Candidate(
                    kind=Kind.DUPLICATE_ADDRESS,
                    identity=f"{Kind.DUPLICATE_ADDRESS}:pools:{network}:{ip}",
                    reason=(
                        f"{ip} is allocated in {len(rows)} IPPools of {scope}: {where}; "
                        "their ranges overlap without enable_overlapping_ranges"
                    ),
                    ip=IPAddress(ip),
                    pool_id=rows[0]["pool_id"],
                    allocation_key=rows[0]["key"],
                    podref=", ".join(sorted({r["podref"] for r in rows}))[:317],
                    details={
                        "allocations": [
                            {
                                "pool": _pool_label(r["pool__namespace"], r["pool__name"]),
                                "key": r["key"],
                                "podref": r["podref"],
                            }
                            for r in rows
                        ]
                    },
                )
            )
    return found


def orphaned_reservations(ctx: Context) -> list[Candidate]:
    cluster = ctx.cluster
    found: list[Candidate] = []
    # (a) a reservation that no allocation backs (its pod gone, or never allocated).
    backed = Allocation.objects.filter(
        cluster=cluster, ip=OuterRef("ip"), podref=OuterRef("podref")
    )
    rows = [
        row
        for row in OverlappingRangeIPReservation.objects.filter(cluster=cluster, ip__isnull=False)
        .exclude(Exists(backed))
        .annotate(pod_id=_pod_id(cluster))
        .values(
            "id",
            "namespace",
            "name",
            "ip",
            "network_name",
            "podref",
            "created_at",
            "pod_id",
            "problems",
        )
        # A reservation whose name or spec whereabouts could not have written (its problems
        # say which) is never called orphaned: deleting it would rest on garbage.
        if not row["problems"]
    ]
    pods = ctx.pods(r["pod_id"] for r in rows if r["pod_id"])
    for row in rows:
        pod = pods.get(row["pod_id"]) if row["pod_id"] else None
        label = f"{row['namespace']}/{row['name']}"
        network = f" of network {row['network_name']!r}" if row["network_name"] else ""
        why = ""
        if pod is None:
            reason = (
                f"reservation {label} holds {row['ip']}{network} for {row['podref'] or 'no pod'}, "
                "which no longer exists, and no IPPool allocation backs it; it blocks the address and can be deleted"
            )
        else:
            why = ctx.suspicion(pod)
            reason = (
                f"reservation {label} holds {row['ip']}{network} for {pod.podref}, but no IPPool "
                f"allocates {row['ip']} to that pod ({_listing(pod)})"
            )
            reason += f"; suspect only: {why}" if why else "; it can be deleted"
        found.append(
            Candidate(
                kind=Kind.ORPHANED_RESERVATION,
                identity=f"{Kind.ORPHANED_RESERVATION}:{label}",
                reason=reason,
                state=State.SUSPECT if why else State.LEAKED,
                ip=row["ip"],
                reservation_id=row["id"],
                podref=row["podref"],
                node_name=pod.node_name if pod else "",
                details={"network_name": row["network_name"], "missing": "allocation"},
                changed_at=max(
                    (t for t in (row["created_at"], pod and pod.created_at) if t), default=None
                ),
            )
        )
    # (b) an allocation of a live pod whose reservation is missing, where overlapping
    # ranges are on: whereabouts then no longer protects the address across ranges.
    # (An allocation whose pod is gone is already an orphaned allocation.)
    overlapping = NADRange.objects.filter(
        pool_id=OuterRef("pool_id"), enable_overlapping_ranges=True
    )
    reserved = OverlappingRangeIPReservation.objects.filter(
        cluster=cluster, ip=OuterRef("ip"), podref=OuterRef("podref")
    )
    rows = list(
        Allocation.objects.filter(cluster=cluster)
        .filter(Exists(overlapping))
        .exclude(Exists(reserved))
        .annotate(pod_id=_pod_id(cluster))  # for the rows left only; None: orphaned instead
        .values(
            "key",
            "ip",
            "podref",
            "pool_id",
            "pool__namespace",
            "pool__name",
            "pool__network_name",
            "pod_id",
        )
        .order_by()
    )
    rows = [r for r in rows if r["pod_id"] is not None]
    pods = ctx.pods(r["pod_id"] for r in rows)
    for row in rows:
        pod = pods[row["pod_id"]]
        pool = _pool_label(row["pool__namespace"], row["pool__name"])
        why = ctx.suspicion(pod)
        reason = (
            f"{row['ip']} in {pool} is allocated to {pod.podref} but has no OverlappingRangeIPReservation, "
            "so an overlapping range of the same network can hand it out again"
        )
        reason += f"; suspect only: {why}" if why else "; restart the pod to re-reserve it"
        found.append(
            Candidate(
                kind=Kind.ORPHANED_RESERVATION,
                identity=f"{Kind.ORPHANED_RESERVATION}:missing:{pool}:{row['key']}",
                reason=reason,
                state=State.SUSPECT if why else State.LEAKED,
                ip=row["ip"],
                pool_id=row["pool_id"],
                allocation_key=row["key"],
                podref=pod.podref,
                node_name=pod.node_name,
                details={"network_name": row["pool__network_name"], "missing": "reservation"},
                changed_at=pod.created_at,
            )
        )
    return found


def overlapping_ranges(ctx: Context) -> list[Candidate]:
    # One query for the cluster's ranges (a few thousand at most), then a sweep in address
    # order: each range is compared only with the ranges still open at its start, instead
    # of the n² pairs a SQL self-join on interval bounds makes the database walk.
    ranges = list(
        NADRange.objects.filter(cluster=ctx.cluster, first_ip__isnull=False, last_ip__isnull=False)
        .order_by("first_ip", "id")
        .values(
            "id",
            "range",
            "network_name",
            "enable_overlapping_ranges",
            "pool_name",
            "first_ip",
            "last_ip",
            "nad_id",
            "nad__namespace",
            "nad__name",
            "nad__created_at",
        )
    )
    found = []
    open_: list[tuple[int, Mapping[str, Any]]] = []  # (last address as an ordinal, range)
    for rng in ranges:
        first = _ordinal(rng["first_ip"])
        open_ = [(last, o) for last, o in open_ if last >= first]
        for _, other in open_:
            # Never across families: an IPv6 range such as ::/64 spans the IPv4 ordinals
            # (mapped into ::ffff:0:0/96) but shares no address with an IPv4 range.
            if other["nad_id"] == rng["nad_id"] or _family(other) != _family(rng):
                continue
            a, b = sorted(
                (other, rng), key=lambda r: (r["nad__namespace"], r["nad__name"], r["id"])
            )
            verdict = overlap_verdict(_side(a), _side(b))
            if verdict.hazard:  # same scope with reservations on both sides: safe, no finding
                found.append(_overlap(a, b, verdict))
        open_.append((_ordinal(rng["last_ip"]), rng))
    return found


def _family(rng: Mapping[str, Any]) -> int:
    return 6 if ":" in rng["range"] else 4


def _side(rng: Mapping[str, Any]) -> OverlapSide:
    return OverlapSide(
        f"NAD {rng['nad__namespace']}/{rng['nad__name']} ({rng['range']})",
        rng["network_name"],
        rng["enable_overlapping_ranges"],
        rng["pool_name"],
    )


def _overlap(a: Mapping[str, Any], b: Mapping[str, Any], verdict: OverlapVerdict) -> Candidate:
    na, nb = f"{a['nad__namespace']}/{a['nad__name']}", f"{b['nad__namespace']}/{b['nad__name']}"
    first = a["first_ip"] if _ordinal(a["first_ip"]) >= _ordinal(b["first_ip"]) else b["first_ip"]
    created = [t for t in (a["nad__created_at"], b["nad__created_at"]) if t]
    return Candidate(
        kind=Kind.OVERLAPPING_RANGE,
        identity=f"{Kind.OVERLAPPING_RANGE}:{na}#{a['range']}:{nb}#{b['range']}",
        reason=verdict.sentence,
        ip=first,
        nad_id=a["nad_id"],
        details={
            "nads": [na, nb],
            "ranges": [a["range"], b["range"]],
            "network_names": [a["network_name"], b["network_name"]],
            "enable_overlapping_ranges": [
                a["enable_overlapping_ranges"],
                b["enable_overlapping_ranges"],
            ],
            "cause": "scope" if a["network_name"] != b["network_name"] else "reservations off",
        },
        changed_at=max(created, default=None),
    )


# The costliest rules first, so that a small pool of threads finishes together.
RULES = (
    unlisted_allocations,
    untracked_addresses,
    duplicate_addresses,
    orphaned_reservations,
    overlapping_ranges,
)
PARALLEL_RULES = 3


def _parallel_possible() -> bool:
    """Rules may run on their own connections only on PostgreSQL (its backends use the
    other cores; concurrent SQLite readers measured slower than one, bench/leaks_bench.py),
    and only outside a transaction, whose rows other connections cannot see."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


@contextlib.contextmanager
def _planner_settings() -> Iterator[None]:
    """PostgreSQL: no JIT for the rules. Their hash joins over 150k rows cost enough for
    the planner to JIT-compile them, which takes longer (2-3 s) than running them (< 1 s)."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
        yield


def _rule_on_own_connection(rule: Any, cluster_id: int, now: dt.datetime) -> list[Candidate]:
    try:
        with _planner_settings():
            return rule(Context(Cluster.objects.get(pk=cluster_id), now))
    finally:
        connections.close_all()  # this thread's connections only


def candidates_compute(
    *, cluster: Cluster, now: dt.datetime, parallel: bool | None = None
) -> list[Candidate]:
    """Every rule's candidates. The rules are independent read-only queries, each a full
    pass over a large table, so when possible they run concurrently on separate database
    connections: the database (PostgreSQL's backends, SQLite's WAL readers) then uses
    more than one core, which is what keeps detection within seconds at 150k allocations."""
    if parallel is None:
        parallel = PARALLEL_RULES > 1 and _parallel_possible()
    found: list[Candidate] = []
    if not parallel:
        ctx = Context(cluster, now)
        with _planner_settings():
            for rule in RULES:
                found.extend(rule(ctx))
        return found
    with ThreadPoolExecutor(max_workers=PARALLEL_RULES, thread_name_prefix="leak-rule") as pool:
        futures = [pool.submit(_rule_on_own_connection, rule, cluster.pk, now) for rule in RULES]
        for future in futures:
            found.extend(future.result())
    return found


__all__ = ["RECLAIMABLE_KINDS", "RULES", "Candidate", "candidates_compute"]


# --- node-slice mode (whereabouts >= 0.9, node_slice_size; see ippam/nodeslice.py) ---------


@dataclass
class _SliceNet:
    """A NodeSlicePool with the NADs that feed it."""

    id: int
    namespace: str
    name: str
    range: str
    allocations: list[tuple[str, str]]  # (nodeName, sliceRange); "" is a free slice
    created_at: dt.datetime | None
    nads: list[tuple[int, str]] = field(default_factory=list)  # (id, "ns/name")

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def free(self) -> int:
        return sum(1 for node, _ in self.allocations if not node)


def _slice_nets(ctx: Context) -> list[_SliceNet]:
    """The cluster's NodeSlicePools and their NADs. whereabouts names the pool after the
    NAD's network_name, or its CNI config name when unset (node-controller getSliceName)."""
    nets: dict[str, _SliceNet] = {}
    for pk, ns, name, rng, allocations, created in NodeSlicePool.objects.filter(
        cluster=ctx.cluster
    ).values_list("id", "namespace", "name", "range", "allocations", "created_at"):
        pairs = [
            (str(a.get("nodeName") or ""), str(a.get("sliceRange") or ""))
            for a in allocations or ()
            if isinstance(a, dict)
        ]
        nets.setdefault(name, _SliceNet(pk, ns, name, rng, pairs, created))
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
        for node, slice_range in net.allocations:
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
        if not net.allocations or net.free:
            continue
        gone = sorted(
            node for node, _ in net.allocations if ctx.node_ready and node not in ctx.node_ready
        )
        note = (
            f"; {len(gone)} of them belong to nodes that are gone ({', '.join(gone[:5])})"
            if gone
            else ""
        )
        found.append(
            Candidate(
                kind=Kind.SLICES_EXHAUSTED,
                identity=f"{Kind.SLICES_EXHAUSTED}:{net.label}",
                reason=(
                    f"all {len(net.allocations)} slices of NodeSlicePool {net.label} "
                    f"({net.range}) are assigned{note}: a node that joins gets no slice and "
                    "its pods on this network fail. Give the network a larger range or a "
                    "smaller node_slice_size before adding nodes"
                ),
                nad_id=net.nads[0][0] if net.nads else None,
                details={
                    "network": net.name,
                    "slices": len(net.allocations),
                    "gone_nodes": gone,
                    "nads": [n for _, n in net.nads],
                },
            )
        )
    return found


# Defined after RULES (added at the end of the module), so appended here.
RULES = (*RULES, stranded_slices, nodes_without_slice, exhausted_slices)  # type: ignore[assignment]
