"""Reservation rule: OverlappingRangeIPReservations that no allocation backs, or whose pod
is gone or no longer lists the address. Grace and suspicion: see ippam.leaks.rules.common."""

from __future__ import annotations

from django.db.models import Exists, OuterRef

from ippam.leaks.rules.common import Candidate, Context, Kind, State, _listing, _pod_id, _pool_label
from ippam.models import Allocation, NADRange, OverlappingRangeIPReservation


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
