"""NAD creation (a write service) and the overlap look-up the NAD form warns with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from netaddr import IPAddress, IPNetwork

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


def _actor_name(actor: AbstractBaseUser | AnonymousUser | None) -> str:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return "anonymous"
    return actor.get_username()


def _audit(*, actor, cluster: Cluster, target: str, after: Any, outcome: str, message: str) -> None:
    try:
        from ippam.audit import audit_record
    except ImportError:
        audit_record = None
    if audit_record is not None:
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
        return
    AuditEntry.objects.create(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        actor_name=_actor_name(actor),
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
    with transaction.atomic():
        nad = _nad_sync_one(cluster, created)
        _audit(
            actor=actor,
            cluster=cluster,
            target=target,
            after=manifest,
            outcome="created",
            message=f"uid {nad.uid}",
        )
    return nad


def _nad_sync_one(cluster: Cluster, obj: dict[str, Any]) -> NetworkAttachmentDefinition:
    """Upsert the one NAD the API just returned, so its page exists before the next sync."""
    try:
        from ippam import sync
    except ImportError:
        sync = None
    upsert = getattr(sync, "nad_upsert", None)
    if upsert is not None:
        return upsert(cluster=cluster, obj=obj)
    return _nad_upsert_fallback(cluster, obj)


def _nad_upsert_fallback(cluster: Cluster, obj: dict[str, Any]) -> NetworkAttachmentDefinition:
    from ippam.cniconfig import parse_cni_config
    from ippam.whereabouts import parse_whereabouts_ipam

    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    raw = (obj.get("spec") or {}).get("config") or ""
    parsed = parse_cni_config(raw)
    problems = list(parsed.problems)
    wb = None
    if parsed.is_whereabouts and parsed.ipam is not None:
        wb = parse_whereabouts_ipam(parsed.ipam)
        problems.extend(wb.problems)
    nad, _ = NetworkAttachmentDefinition.objects.update_or_create(
        cluster=cluster,
        namespace=meta.get("namespace", "default"),
        name=meta.get("name", ""),
        defaults={
            "uid": meta.get("uid", ""),
            "resource_version": meta.get("resourceVersion", ""),
            "annotations": annotations,
            "config_raw": raw,
            "config": parsed.config,
            "config_on_node": parsed.on_node,
            "is_conflist": parsed.is_conflist,
            "cni_version": parsed.cni_version,
            "cni_type": parsed.cni_type,
            "ipam_type": parsed.ipam_type,
            "master": parsed.master,
            "mode": parsed.mode,
            "resource_name": annotations.get("k8s.v1.cni.cncf.io/resourceName", ""),
            "node_selector": annotations.get("k8s.v1.cni.cncf.io/nodeSelector", ""),
            "problems": problems,
            "sync_generation": cluster.sync_generation,
        },
    )
    nad.ranges.all().delete()
    if wb is not None:
        for position, r in enumerate(wb.ranges):
            NADRange.objects.create(
                nad=nad,
                cluster=cluster,
                position=position,
                range=r.cidr,
                range_start=r.range_start,
                range_end=r.range_end,
                first_ip=IPAddress(r.network.first, r.network.version),
                last_ip=IPAddress(r.network.last, r.network.version),
                exclude=[str(e) for e in r.exclude],
                gateway=wb.gateway,
                network_name=wb.network_name,
                enable_overlapping_ranges=wb.enable_overlapping_ranges,
                usable=r.usable_count(),
                pool_name=pool_name(r.cidr, wb.network_name),
            )
    return nad


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
