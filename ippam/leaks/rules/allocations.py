"""Allocation rules: orphaned and stale allocations (one anti-join), addresses in use that
no allocation records, and addresses two holders share. Grace and suspicion: see
ippam.leaks.rules.common."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from django.db.models import CharField, Count, Exists, F, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, Concat
from netaddr import IPAddress

from ippam.leaks.rules.common import (
    DEAD_PHASES,
    Candidate,
    Context,
    Kind,
    State,
    _chunks,
    _listing,
    _ordinal,
    _pod_id,
    _pool_label,
    _when,
)
from ippam.models import (
    Allocation,
    InterfaceAddress,
    NADRange,
    OverlappingRangeIPReservation,
    PodEvent,
)


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
