"""Reclamation (DESIGN.md §5): plan, then free addresses without ever hurting a live pod.

The plan is a dry run stored as a ReclaimRun with one ReclaimItem per chosen finding.
Execution trusts nothing from the database: for each item it reads the pod and the IPPool
live, refuses when the pod is alive and its network-status lists the address (or it is
Pending or terminating: the CNI ADD/DEL is still in flight, whereabouts #162/#207), and
removes the allocation with a JSON Patch that first tests the pool's resourceVersion and
the allocation's podref. Any concurrent write (whereabouts allocating, its reconciler
freeing) makes the patch fail with 409/422 instead of removing someone else's address; we
then re-read, re-check and retry a bounded number of times. The matching
OverlappingRangeIPReservation is deleted only while its podref still names the same pod
(with a resourceVersion precondition). Every item ends reclaimed, skipped, failed or noop
(already gone) with an AuditEntry; a run executed twice frees nothing twice.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from netaddr import IPAddress

from ippam.annotations import pod_network_status
from ippam.audit import Actor, acting_user, actor_name, audit_record
from ippam.kube.client import KubeError
from ippam.kube.writes import KubeWrites, json_pointer
from ippam.leaks.rules import RECLAIMABLE_KINDS
from ippam.models import (
    Allocation,
    AuditEntry,
    Cluster,
    Finding,
    IPPool,
    OverlappingRangeIPReservation,
    ReclaimItem,
    ReclaimRun,
)
from ippam.naming import split_podref

Outcome = ReclaimItem.Outcome
ALLOCATION_KINDS = (Finding.Kind.ORPHANED_ALLOCATION, Finding.Kind.STALE_ALLOCATION)


class ReclaimError(Exception):
    """A reclamation request that cannot be planned or run, saying what to do instead."""


def max_attempts() -> int:
    return max(int(getattr(settings, "IPPAM_RECLAIM_MAX_ATTEMPTS", 3) or 1), 1)


# --- plan -----------------------------------------------------------------------------------


def _resolve_pool(cluster: Cluster, pool: IPPool | str) -> IPPool:
    if isinstance(pool, IPPool):
        return pool
    namespace, sep, name = pool.partition("/")
    if not sep:
        raise ReclaimError(f"pool {pool!r} must be NAMESPACE/NAME, e.g. kube-system/10.0.0.0-24")
    try:
        return IPPool.objects.get(cluster=cluster, namespace=namespace, name=name)
    except IPPool.DoesNotExist:
        raise ReclaimError(
            f"cluster {cluster.name} has no IPPool {pool}; list pools in the dashboard or sync first"
        ) from None


def reclaim_plan(
    *,
    cluster: Cluster,
    finding_ids: list[int] | None = None,
    pool: IPPool | str | None = None,
    include_suspect: bool = False,
    actor: Actor,
) -> ReclaimRun:
    """A dry run: one item per chosen finding (pool, key, IP, podref, why). Nothing is
    written to Kubernetes. Findings that cannot be reclaimed are kept as skipped items with
    the reason, so the person sees why they were left out."""
    findings = Finding.objects.filter(cluster=cluster).select_related("pool", "reservation")
    if finding_ids:
        wanted = {int(i) for i in finding_ids}
        findings = findings.filter(pk__in=wanted)
        missing = wanted - set(findings.values_list("pk", flat=True))
        if missing:
            raise ReclaimError(
                f"no finding {', '.join(map(str, sorted(missing)))} in cluster {cluster.name}; "
                "findings change with every sync: list them again with `manage.py leaks`"
            )
    else:
        findings = findings.filter(kind__in=RECLAIMABLE_KINDS)
    if pool is not None:
        findings = findings.filter(pool=_resolve_pool(cluster, pool))
    user = acting_user(actor)
    with transaction.atomic():
        run = ReclaimRun.objects.create(
            cluster=cluster,
            requested_by=user,
            actor=actor_name(actor),
            include_suspect=include_suspect,
        )
        items = [
            _plan_item(run, f, include_suspect)
            for f in findings.order_by("kind", "ip", "identity")
            if finding_ids or not _is_missing_reservation(f)
        ]
        ReclaimItem.objects.bulk_create(items)
    return run


def _is_missing_reservation(finding: Finding) -> bool:
    return finding.kind == Finding.Kind.ORPHANED_RESERVATION and finding.reservation_id is None


def _plan_item(run: ReclaimRun, finding: Finding, include_suspect: bool) -> ReclaimItem:
    item = ReclaimItem(
        run=run,
        finding_identity=finding.identity,
        kind=finding.kind,
        ip=finding.ip,
        podref=finding.podref,
        why=finding.reason,
        allocation_key=finding.allocation_key,
    )
    if finding.pool is not None:
        item.pool_namespace, item.pool_name = finding.pool.namespace, finding.pool.name
    if finding.kind in ALLOCATION_KINDS:
        orip = (
            OverlappingRangeIPReservation.objects.filter(
                cluster=run.cluster_id, ip=finding.ip, podref=finding.podref
            )
            .values_list("namespace", "name")
            .first()
        )
        if orip:
            item.reservation_namespace, item.reservation_name = orip
    elif finding.reservation is not None:
        item.reservation_namespace = finding.reservation.namespace
        item.reservation_name = finding.reservation.name

    if finding.kind not in RECLAIMABLE_KINDS:
        item.outcome = Outcome.SKIPPED
        item.message = (
            f"{finding.get_kind_display()} findings are not reclaimed: {_advice(finding)}"
        )
    elif _is_missing_reservation(finding):
        item.outcome = Outcome.SKIPPED
        item.message = "the reservation is missing, there is nothing to delete: restart the pod to re-reserve it"
    elif finding.kind in ALLOCATION_KINDS and (finding.pool is None or not finding.allocation_key):
        item.outcome = Outcome.SKIPPED
        item.message = "the finding names no IPPool allocation any more; sync and plan again"
    elif finding.state == Finding.State.SUSPECT and not include_suspect:
        item.outcome = Outcome.SKIPPED
        item.message = "suspect, not leaked; reclaim it only with --include-suspect once you have checked the pod"
    return item


def _advice(finding: Finding) -> str:
    if finding.kind == Finding.Kind.DUPLICATE_ADDRESS:
        return "restart all but one of the pods that share the address"
    if finding.kind == Finding.Kind.UNTRACKED_ADDRESS:
        return "restart the pod so whereabouts allocates it a tracked address"
    return "fix the NAD ranges or network_name"


# --- execute --------------------------------------------------------------------------------


def _parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    parsed = parse_datetime(str(value))
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def _pod_listing(pod: dict[str, Any], ip: IPAddress) -> str:
    """The network-status entry of `pod` that lists `ip` ("net1 of ns/nad"), or ""."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    entries, _ = pod_network_status(annotations)
    for entry in entries:
        if ip in entry.ips:
            return f"{entry.interface or 'an interface'} of {entry.name or 'the default network'}"
    return ""


def _pod_verdict(pod: dict[str, Any] | None, ip: IPAddress, run: ReclaimRun, podref: str) -> str:
    """Why the address must stay with this pod, or "" when it may be freed."""
    if pod is None:
        return ""
    listed = _pod_listing(pod, ip)
    if listed:
        return f"pod {podref} holds it ({listed} lists {ip} in its network-status)"
    metadata = pod.get("metadata") or {}
    phase = (pod.get("status") or {}).get("phase") or ""
    created = _parse_time(metadata.get("creationTimestamp"))
    if created is not None and created > run.created_at:
        return (
            f"pod {podref} was created at {created:%H:%M:%S}, after this plan; "
            "its CNI ADD may be under way: plan again after the grace period"
        )
    if run.include_suspect:
        return ""
    if metadata.get("deletionTimestamp"):
        return f"pod {podref} is terminating; whereabouts frees the address itself on CNI DEL"
    if phase == "Pending":
        return f"pod {podref} is Pending and Multus may not have written its network-status yet"
    return ""


class _Item:
    """One item's execution: live reads, the guarded patch, and what happened."""

    def __init__(self, writes: KubeWrites, run: ReclaimRun, item: ReclaimItem) -> None:
        self.w = writes
        self.run = run
        self.item = item
        self.ip = IPAddress(item.ip) if item.ip is not None else None
        self.pool_label = f"{item.pool_namespace}/{item.pool_name}"
        self.before: dict[str, Any] = {}
        self.after: dict[str, Any] = {}
        self.freed_allocation = False
        self.deleted_reservation = False
        self.changed = False  # the pool changed under us at least once

    def _say(self, text: str) -> str:
        """`text` ("skipped: ...") as a sentence, prefixed with what happened to the pool."""
        if self.changed:
            return f"IPPool {self.pool_label} changed while reclaiming {self.ip}; re-checked and {text}"
        return text[:1].upper() + text[1:]

    # allocation items ------------------------------------------------------------------------

    def reclaim_allocation(self) -> tuple[str, str]:
        item = self.item
        pod_ns, pod_name = split_podref(item.podref)
        last_error: KubeError | None = None
        for attempt in range(1, max_attempts() + 1):
            item.attempts = attempt
            pool = self.w.get_ippool(item.pool_namespace, item.pool_name)
            if pool is None:
                return Outcome.NOOP, f"IPPool {self.pool_label} no longer exists; nothing to free"
            allocations = (pool.get("spec") or {}).get("allocations") or {}
            current = allocations.get(item.allocation_key)
            if current is None:
                return Outcome.NOOP, self._say(
                    f"found {self.ip} (key {item.allocation_key}) no longer allocated in IPPool "
                    f"{self.pool_label}; nothing to free."
                )
            holder = current.get("podref", "")
            if holder != item.podref:
                return Outcome.SKIPPED, self._say(
                    f"skipped: {holder or 'an allocation without podref'} now holds it "
                    f"(it was {item.podref}'s when planned)."
                )
            pod = self.w.get_pod(pod_ns, pod_name) if pod_name else None
            verdict = _pod_verdict(pod, self.ip, self.run, item.podref)
            if verdict:
                return Outcome.SKIPPED, self._say(f"skipped: {verdict}.")
            resource_version = (pool.get("metadata") or {}).get("resourceVersion", "")
            path = json_pointer("spec", "allocations", item.allocation_key)
            ops = [
                {"op": "test", "path": "/metadata/resourceVersion", "value": resource_version},
                {"op": "test", "path": f"{path}/podref", "value": item.podref},
                {"op": "remove", "path": path},
            ]
            try:
                self.w.patch_ippool_json(item.pool_namespace, item.pool_name, ops)
            except KubeError as exc:
                if exc.status in (409, 422):
                    self.changed = True
                    last_error = exc
                    continue
                if exc.status == 404:
                    return Outcome.NOOP, f"IPPool {self.pool_label} was deleted; nothing to free"
                raise
            self.before = {
                "pool": self.pool_label,
                "key": item.allocation_key,
                "allocation": current,
            }
            self.after = {"pool": self.pool_label, "key": item.allocation_key, "allocation": None}
            self.freed_allocation = True
            message = f"freed {self.ip} (key {item.allocation_key}) in IPPool {self.pool_label}, held by {item.podref}"
            if self.changed:
                message += f" after {attempt} attempts (the pool changed meanwhile)"
            return Outcome.RECLAIMED, message + self.release_reservation()
        return Outcome.FAILED, (
            f"IPPool {self.pool_label} kept changing while reclaiming {self.ip}: gave up after "
            f"{max_attempts()} attempts ({last_error}); run the reclaim again"
        )

    def release_reservation(self) -> str:
        """Delete the allocation's reservation if it still names the same pod."""
        item = self.item
        if not item.reservation_name:
            return ""
        label = f"{item.reservation_namespace}/{item.reservation_name}"
        for _ in range(max_attempts()):
            orip = self.w.get_reservation(item.reservation_namespace, item.reservation_name)
            if orip is None:
                return f"; reservation {label} was already gone"
            holder = (orip.get("spec") or {}).get("podref", "")
            if holder != item.podref:
                return (
                    f"; reservation {label} now belongs to {holder or 'no pod'} and was left alone"
                )
            try:
                self.w.delete_reservation(
                    item.reservation_namespace,
                    item.reservation_name,
                    resource_version=(orip.get("metadata") or {}).get("resourceVersion", ""),
                )
            except KubeError as exc:
                if exc.status in (409, 422):
                    continue
                return f"; could not delete reservation {label}: {exc}; delete it by hand if its pod is gone"
            self.deleted_reservation = True
            self.after["reservation_deleted"] = label
            audit_record(
                actor=self.run.actor,
                action=AuditEntry.Action.RESERVATION_DELETE,
                cluster=self.run.cluster,
                target=f"OverlappingRangeIPReservation {label}",
                before={"reservation": label, "spec": orip.get("spec")},
                after=None,
                outcome="deleted",
                message=f"reclaim run {self.run.pk}: reservation of {self.ip} for {item.podref}",
            )
            return f"; deleted reservation {label}"
        return f"; reservation {label} kept changing and was left alone"

    # reservation items -----------------------------------------------------------------------

    def reclaim_reservation(self) -> tuple[str, str]:
        item = self.item
        label = f"{item.reservation_namespace}/{item.reservation_name}"
        pod_ns, pod_name = split_podref(item.podref)
        for attempt in range(1, max_attempts() + 1):
            item.attempts = attempt
            orip = self.w.get_reservation(item.reservation_namespace, item.reservation_name)
            if orip is None:
                return Outcome.NOOP, f"reservation {label} is already gone; nothing to delete"
            holder = (orip.get("spec") or {}).get("podref", "")
            if holder != item.podref:
                return Outcome.SKIPPED, (
                    f"Skipped: reservation {label} now belongs to {holder or 'no pod'}, not {item.podref}."
                )
            pod = self.w.get_pod(pod_ns, pod_name) if pod_name else None
            verdict = _pod_verdict(pod, self.ip, self.run, item.podref)
            if verdict:
                return Outcome.SKIPPED, f"Skipped: {verdict}."
            backing = self._allocation_backing(item.podref)
            if backing:
                return Outcome.SKIPPED, f"Skipped: {backing} again, so the reservation is in use."
            try:
                self.w.delete_reservation(
                    item.reservation_namespace,
                    item.reservation_name,
                    resource_version=(orip.get("metadata") or {}).get("resourceVersion", ""),
                )
            except KubeError as exc:
                if exc.status in (409, 422):
                    continue
                raise
            self.before = {"reservation": label, "spec": orip.get("spec")}
            self.after = {"reservation": None}
            self.deleted_reservation = True
            return (
                Outcome.RECLAIMED,
                f"deleted reservation {label} of {self.ip}, held for {item.podref}",
            )
        return (
            Outcome.FAILED,
            f"reservation {label} kept changing; gave up after {max_attempts()} attempts; run the reclaim again",
        )

    def _allocation_backing(self, podref: str) -> str:
        """A live IPPool that allocates this address to this pod (read from the API)."""
        if self.ip is None:
            return ""
        pools = IPPool.objects.filter(
            cluster=self.run.cluster, first_ip__lte=self.ip, last_ip__gte=self.ip
        ).values_list("namespace", "name", "first_ip")
        for namespace, name, first in pools:
            pool = self.w.get_ippool(namespace, name)
            if pool is None or first is None:
                continue
            key = str(int(self.ip) - int(first))
            current = ((pool.get("spec") or {}).get("allocations") or {}).get(key)
            if current and current.get("podref") == podref:
                return f"IPPool {namespace}/{name} allocates {self.ip} to {podref}"
        return ""


def reclaim_execute(*, run_id: int) -> ReclaimRun:
    """Execute a planned run (the body of the `ippam.tasks.reclaim_run` task).

    Idempotent: a finished run is returned untouched with `noop = True`; a run interrupted
    midway resumes with its pending items. Afterwards the database is brought in line (freed
    allocations and deleted reservations removed, pool counts recomputed) and detection is
    re-run for the cluster.
    """
    with transaction.atomic():
        run = ReclaimRun.objects.select_for_update().select_related("cluster").get(pk=run_id)
        if run.state in (ReclaimRun.State.DONE, ReclaimRun.State.FAILED):
            run.noop = True  # type: ignore[attr-defined]
            return run
        if run.state == ReclaimRun.State.PLANNED:
            run.state = ReclaimRun.State.RUNNING
            run.started_at = timezone.now()
            run.save(update_fields=["state", "started_at"])
    cluster = run.cluster
    pending = list(run.items.filter(outcome=Outcome.PENDING).order_by("id"))
    freed: list[tuple[str, str, str]] = []
    deleted: list[tuple[str, str]] = []
    try:
        writes = KubeWrites(cluster)
    except KubeError as exc:
        _fail_run(
            run, pending, f"{exc}; fix the cluster's connection settings and run the reclaim again"
        )
        return run
    try:
        for item in pending:
            step = _Item(writes, run, item)
            try:
                if item.kind in ALLOCATION_KINDS:
                    outcome, message = step.reclaim_allocation()
                else:
                    outcome, message = step.reclaim_reservation()
            except KubeError as exc:
                outcome = Outcome.FAILED
                message = f"{exc}; nothing was freed for this item: check the cluster and run the reclaim again"
            item.outcome, item.message = outcome, message
            item.save(update_fields=["outcome", "message", "attempts"])
            if step.freed_allocation:
                freed.append((item.pool_namespace, item.pool_name, item.allocation_key))
            if step.deleted_reservation:
                deleted.append((item.reservation_namespace, item.reservation_name))
            audit_record(
                actor=run.requested_by or run.actor,
                action=AuditEntry.Action.RESERVATION_DELETE
                if item.kind == Finding.Kind.ORPHANED_RESERVATION
                else AuditEntry.Action.ALLOCATION_RECLAIM,
                cluster=cluster,
                target=_item_target(item),
                before=step.before or {"why": item.why, "podref": item.podref},
                after=step.after or None,
                outcome=outcome,
                message=f"reclaim run {run.pk}: {message}",
            )
    finally:
        writes.close()
    _apply_to_database(cluster, freed, deleted)
    run.state = ReclaimRun.State.DONE
    run.finished_at = timezone.now()
    run.save(update_fields=["state", "finished_at"])
    run.noop = not freed and not deleted  # type: ignore[attr-defined]
    from ippam.leaks.detect import leaks_detect

    leaks_detect(cluster=cluster)
    return run


def _item_target(item: ReclaimItem) -> str:
    if item.kind in ALLOCATION_KINDS:
        return (
            f"IPPool {item.pool_namespace}/{item.pool_name} key {item.allocation_key} ({item.ip})"
        )
    return f"OverlappingRangeIPReservation {item.reservation_namespace}/{item.reservation_name} ({item.ip})"


def _fail_run(run: ReclaimRun, items: list[ReclaimItem], message: str) -> None:
    for item in items:
        item.outcome, item.message = Outcome.FAILED, message
    ReclaimItem.objects.bulk_update(items, ["outcome", "message"])
    run.state = ReclaimRun.State.FAILED
    run.finished_at = timezone.now()
    run.save(update_fields=["state", "finished_at"])
    run.noop = False  # type: ignore[attr-defined]


def _apply_to_database(
    cluster: Cluster, freed: list[tuple[str, str, str]], deleted: list[tuple[str, str]]
) -> None:
    """Mirror what was done in the API, so pages are right before the next sync."""
    touched: set[int] = set()
    with transaction.atomic():
        for namespace, name, key in freed:
            pool_id = (
                IPPool.objects.filter(cluster=cluster, namespace=namespace, name=name)
                .values_list("pk", flat=True)
                .first()
            )
            if pool_id is None:
                continue
            Allocation.objects.filter(pool_id=pool_id, key=key).delete()
            touched.add(pool_id)
        for namespace, name in deleted:
            OverlappingRangeIPReservation.objects.filter(
                cluster=cluster, namespace=namespace, name=name
            ).delete()
        if touched:
            pools_recount(pool_ids=touched)


def pools_recount(*, pool_ids: set[int]) -> None:
    """Recompute `allocated` and `utilization` of these pools from their Allocation rows."""
    counts = Subquery(
        Allocation.objects.filter(pool_id=OuterRef("pk"))
        .values("pool_id")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )
    pools = list(IPPool.objects.filter(pk__in=pool_ids).annotate(n=counts))
    for pool in pools:
        pool.allocated = pool.n or 0
        usable = int(pool.usable)
        pool.utilization = pool.allocated / usable if usable else 0.0
    IPPool.objects.bulk_update(pools, ["allocated", "utilization"])


def reclaim_summary(run: ReclaimRun) -> dict[str, Any]:
    """What a run did, for the task result, the CLI and the UI."""
    counts = Counter(run.items.values_list("outcome", flat=True))
    return {
        "run": run.pk,
        "cluster": run.cluster.name,
        "state": run.state,
        "noop": bool(getattr(run, "noop", False)),
        "counts": {outcome: counts.get(outcome, 0) for outcome in Outcome.values},
    }
