"""NAD creation (a write service) and the overlap look-up the NAD form warns with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netaddr import IPAddress, IPNetwork

from ippam.audit import audit_record
from ippam.kube.client import KubeError
from ippam.kube.nads import create_nad
from ippam.models import AuditEntry, Cluster, IPPool, NADRange, NetworkAttachmentDefinition
from ippam.naming import pool_name

__all__ = ["NADCreateError", "RangeOverlap", "nad_create", "nad_range_overlaps"]


class NADCreateError(Exception):
    """The API refused the NAD (or did not answer); ``message`` says why in its words."""

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason

    @property
    def name_taken(self) -> bool:
        return self.status == 409


def _audit(*, actor, cluster: Cluster, target: str, after: Any, outcome: str, message: str) -> None:
    audit_record(
        actor=actor,
        action=AuditEntry.Action.NAD_CREATE,
        cluster=cluster,
        target=target,
        before=None,
        after=after,
        outcome=outcome,
        message=message,
    )


def nad_create(*, cluster: Cluster, manifest: dict[str, Any], actor) -> NetworkAttachmentDefinition:
    """Create the NAD through the API, record it in the audit log, and sync it into the DB.

    A refusal (409 name taken, 422 invalid, no answer) is audited too and raised as
    NADCreateError with the API server's own message.
    """
    metadata = manifest.get("metadata") or {}
    target = f"{metadata.get('namespace', 'default')}/{metadata.get('name', '')}"
    try:
        created = create_nad(cluster, manifest)
    except KubeError as exc:
        _audit(
            actor=actor,
            cluster=cluster,
            target=target,
            after=manifest,
            outcome="refused" if exc.status else "failed",
            message=exc.message,
        )
        raise NADCreateError(exc.message, status=exc.status, reason=exc.reason) from exc
    # The audit entry first, on its own: the NAD exists in the cluster from here on, even if
    # writing its row fails (the next sync or watch event would then bring it in).
    _audit(
        actor=actor,
        cluster=cluster,
        target=target,
        after=manifest,
        outcome="created",
        message=f"uid {(created.get('metadata') or {}).get('uid', '?')}",
    )
    nad = _nad_sync_one(cluster, created)
    return nad


def _nad_sync_one(cluster: Cluster, obj: dict[str, Any]) -> NetworkAttachmentDefinition:
    """Upsert the one NAD the API just returned, as a watch event would, so that its page
    exists now rather than after the next sync (the watch applies the same event again,
    harmlessly)."""
    from ippam.sync import objects_apply

    objects_apply(cluster_id=cluster.pk, kind="nads", events=[("ADDED", obj)])
    meta = obj.get("metadata") or {}
    return NetworkAttachmentDefinition.objects.get(
        cluster=cluster, namespace=meta.get("namespace", "default"), name=meta.get("name", "")
    )


# --- reads for the form -------------------------------------------------------------------


@dataclass(frozen=True)
class RangeOverlap:
    """An existing NAD range or IPPool whose addresses intersect a proposed range."""

    what: str  # "NAD default/foo" or "IPPool kube-system/10.0.0.0-24"
    range: str
    network_name: str
    same_scope: bool
    same_pool: bool

    @property
    def message(self) -> str:
        scope = f"network_name '{self.network_name}'" if self.network_name else "no network_name"
        if self.same_pool:
            return (
                f"{self.what} already uses {self.range} ({scope}): both will draw addresses from "
                f"the same IPPool. Fine if the two are meant to share the network."
            )
        if self.same_scope:
            return (
                f"Overlaps {self.what} ({self.range}, {scope}): two IPPools hand out the same "
                f"addresses; only overlapping-range reservations keep them apart."
            )
        return (
            f"Overlaps {self.what} ({self.range}, {scope}) in a different network_name scope: "
            f"whereabouts will hand out the same addresses twice."
        )


def nad_range_overlaps(
    *, cluster: Cluster, range_cidr: str, network_name: str
) -> list[RangeOverlap]:
    """NAD ranges and IPPools of ``cluster`` that intersect ``range_cidr`` (one query each)."""
    net = IPNetwork(range_cidr).cidr
    first = IPAddress(net.first, net.version)
    last = IPAddress(net.last, net.version)
    wanted_pool = pool_name(str(net), network_name)
    found: list[RangeOverlap] = []
    seen_pools: set[str] = set()
    ranges = (
        NADRange.objects.filter(cluster=cluster, first_ip__lte=last, last_ip__gte=first)
        .select_related("nad")
        .order_by("nad__namespace", "nad__name", "position")[:20]
    )
    for r in ranges:
        seen_pools.add(r.pool_name)
        found.append(
            RangeOverlap(
                what=f"NAD {r.nad.namespace}/{r.nad.name}",
                range=r.range,
                network_name=r.network_name,
                same_scope=r.network_name == network_name,
                same_pool=r.pool_name == wanted_pool,
            )
        )
    pools = IPPool.objects.filter(cluster=cluster, first_ip__lte=last, last_ip__gte=first).exclude(
        name__in=seen_pools
    )[:20]
    for p in pools:
        found.append(
            RangeOverlap(
                what=f"IPPool {p.namespace}/{p.name}",
                range=p.range,
                network_name=p.network_name,
                same_scope=p.network_name == network_name,
                same_pool=p.name == wanted_pool,
            )
        )
    return found
