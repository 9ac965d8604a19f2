"""Reclamation (DESIGN.md §5): plan, then free addresses without ever hurting a live pod.

The invariant: no address listed by a live pod is ever freed. The protocol, one function
per step:

1. plan (`reclaim_plan`): a dry run stored as a ReclaimRun with one ReclaimItem per chosen
   finding, recording the pod uid the plan believed in.
2. re-check (`_Item.read_allocation`, `_Item.holder`): trust nothing from the database. Just
   before freeing address X, read the IPPool and the podref's pod live, by name *and* uid
   (a StatefulSet pod re-created under the same name is another pod), and every live pod of
   the cluster that lists X in the same network scope (`Recheck`, from a paged list of all
   pods read after the run started). Whereabouts' reconciler only looks at the podref's
   pod; a pod that got X from an overlapping range, or by hand, would lose it.
   Any holder, or a pod still starting (CNI ADD in flight, whereabouts #162/#207): skipped,
   with a sentence that names it.
3. guarded write (`_Item.patch_guarded`, `_Item.release_reservation`): a JSON Patch that
   first tests the pool's resourceVersion and the allocation's podref, so a concurrent
   writer makes it fail (409/422) instead of removing someone else's address; then re-read,
   re-check and retry, a bounded number of times. The OverlappingRangeIPReservation is
   deleted only while its podref still names the same pod (resourceVersion precondition).
4. audit (`_item_record`): every item ends reclaimed, skipped, failed or noop (already
   gone) with a sentence and an AuditEntry. An item that raises fails alone; the run always
   ends; a run whose worker died is failed after a deadline (`reclaim_runs_expire`). A run
   executed twice frees nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from netaddr import IPAddress

from ippam.annotations import pod_network_status
from ippam.audit import Actor, acting_user, actor_name, audit_record
from ippam.kube.client import KubeError
from ippam.kube.writes import HolderIndex, KubeWrites, PodListing, json_pointer
from ippam.leaks.rules.registry import RECLAIMABLE_KINDS
from ippam.models import (
    Allocation,
    AuditEntry,
    Cluster,
    Finding,
    IPPool,
    NADRange,
    NetworkAttachmentDefinition,
    OverlappingRangeIPReservation,
    Pod,
    ReclaimItem,
    ReclaimRun,
)
from ippam.naming import split_podref

log = logging.getLogger(__name__)
Outcome = ReclaimItem.Outcome
ALLOCATION_KINDS = (Finding.Kind.ORPHANED_ALLOCATION, Finding.Kind.STALE_ALLOCATION)


class ReclaimError(Exception):
    """A reclamation request that cannot be planned or run, saying what to do instead."""


def max_attempts() -> int:
    return max(int(getattr(settings, "IPPAM_RECLAIM_MAX_ATTEMPTS", 3) or 1), 1)


def holders_max_age() -> float:
    """How old the index of live holders may be when an address is re-checked (seconds)."""
    return float(getattr(settings, "IPPAM_RECLAIM_HOLDERS_MAX_AGE_SECONDS", 30))


def deadline_seconds() -> float:
    """How long a RUNNING run's worker may stay silent before the run is failed."""
    return float(getattr(settings, "IPPAM_RECLAIM_DEADLINE_SECONDS", 600) or 600)


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
        _believed_pod_uids(cluster, items)
        ReclaimItem.objects.bulk_create(items)
    return run


def _believed_pod_uids(cluster: Cluster, items: list[ReclaimItem]) -> None:
    """Record the uid of each podref's pod as synced ("" when there was none): at execution
    a pod under that name with another uid is another pod."""
    names = {split_podref(i.podref) for i in items if i.podref}
    if not names:
        return
    uids = {
        (ns, name): uid
        for ns, name, uid in Pod.objects.filter(
            cluster=cluster,
            namespace__in={ns for ns, _ in names},
            name__in={name for _, name in names},
        ).values_list("namespace", "name", "uid")
    }
    for item in items:
        item.pod_uid = uids.get(split_podref(item.podref), "") if item.podref else ""


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


# --- re-check: who holds the address right now ---------------------------------------------


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


def _podref_verdict(
    pod: dict[str, Any] | None, item: ReclaimItem, ip: IPAddress, run: ReclaimRun
) -> str:
    """Why the pod the allocation names keeps the address, or "" when it may be freed.

    The pod is matched by name *and* uid: a pod found under the same name with another uid
    (a StatefulSet re-created it) is another pod. If it lists the address it holds it; if it
    is still starting, whereabouts hands it the podref's allocation back on CNI ADD (it looks
    allocations up by podref), so it is left alone whatever the plan's override says.
    """
    if pod is None:
        return ""
    podref = item.podref
    metadata = pod.get("metadata") or {}
    uid = str(metadata.get("uid") or "")
    other = bool(item.pod_uid) and uid != item.pod_uid
    who = f"pod {podref}, re-created under the same name (uid {uid}, the plan saw {item.pod_uid}),"
    who = who if other else f"pod {podref}"
    listed = _pod_listing(pod, ip)
    if listed:
        return f"{who} holds it ({listed} lists {ip} in its network-status)"
    phase = (pod.get("status") or {}).get("phase") or ""
    created = _parse_time(metadata.get("creationTimestamp"))
    if created is not None and created > run.created_at:
        return (
            f"{who} was created at {created:%H:%M:%S}, after this plan; "
            "its CNI ADD may be under way: plan again after the grace period"
        )
    new_pod = other or not item.pod_uid
    if new_pod and phase == "Pending":
        return (
            f"{who} is Pending: whereabouts gives a starting pod the allocation of its podref "
            "back on CNI ADD; plan again once it runs"
        )
    if run.include_suspect:
        return ""
    if metadata.get("deletionTimestamp"):
        return f"{who} is terminating; whereabouts frees the address itself on CNI DEL"
    if phase == "Pending":
        return f"{who} is Pending and Multus may not have written its network-status yet"
    return ""


NadScopes = dict[tuple[str, str], list[tuple[IPAddress, IPAddress, str]]]


def _nad_scopes(cluster: Cluster) -> NadScopes:
    """(namespace, name) of each synced NAD -> its whereabouts ranges and their network_name.

    A NAD attached with a network_name lands in that name's pools (and reservations); two
    NADs with different network_names hand out the same address independently. The synced
    config is the right one to judge by: the pod got its address with the config of its
    CNI ADD, and a NAD created since is unknown here, which counts as "same scope".
    """
    scopes: NadScopes = {}
    nads = NetworkAttachmentDefinition.objects.filter(cluster=cluster).values_list(
        "pk", "namespace", "name"
    )
    by_pk = {pk: (namespace, name) for pk, namespace, name in nads}
    for key in by_pk.values():
        scopes[key] = []
    ranges = NADRange.objects.filter(cluster=cluster).values_list(
        "nad_id", "first_ip", "last_ip", "network_name"
    )
    for nad_id, first, last, network_name in ranges:
        if nad_id in by_pk and first is not None and last is not None:
            scopes[by_pk[nad_id]].append((first, last, network_name))
    return scopes


def _listing_in_scope(
    listing: PodListing, ip: IPAddress, network_name: str | None, scopes: NadScopes
) -> bool:
    """Whether a pod's listing of `ip` is in the network scope `network_name` of the address
    being freed. Only a listing provably in *another* whereabouts network is out of scope: an
    unknown NAD, a NAD not managed by whereabouts (an address set by hand), a range that does
    not contain the address or an annotation that does not parse all count as the same
    scope, because skipping is safe and freeing is not."""
    if network_name is None or not listing.parsed or listing.nad is None:
        return True
    ranges = scopes.get(listing.nad)
    if not ranges:
        return True
    names = {name for first, last, name in ranges if first <= ip <= last}
    return not names or network_name in names


class Recheck:
    """The live state one run re-checks each address against, just before freeing it.

    The index of live holders comes from one paged list of every pod, read after the run
    started (so after the plan) and before the first write, and read again whenever it is
    older than IPPAM_RECLAIM_HOLDERS_MAX_AGE_SECONDS (a long run re-reads between items).
    """

    def __init__(self, writes: KubeWrites, run: ReclaimRun, items: list[ReclaimItem]) -> None:
        self.w = writes
        self.run = run
        self.addresses = {IPAddress(i.ip) for i in items if i.ip is not None}
        self.scopes = _nad_scopes(run.cluster)
        self.index: HolderIndex | None = None
        self.reads = 0

    def holders(self) -> HolderIndex:
        if self.index is None or time.monotonic() - self.index.read_at > holders_max_age():
            self.index = self.w.holder_index(self.addresses)
            self.reads += 1
        return self.index

    def live_holder(self, ip: IPAddress, network_name: str | None) -> str:
        """A sentence naming a live pod that lists `ip` in the same network, or ""."""
        for listing in self.holders().holders(ip):
            if _listing_in_scope(listing, ip, network_name, self.scopes):
                return listing.describe(ip)
        return ""


def _odd(value: Any) -> str:
    if value is None:
        return "null"
    return {
        str: "a string",
        list: "a list",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


# --- execute: one item -----------------------------------------------------------------------


class _Item:
    """One item's execution: read, re-check, guarded write, and what happened."""

    def __init__(self, recheck: Recheck, item: ReclaimItem, network_name: str | None) -> None:
        self.w = recheck.w
        self.recheck = recheck
        self.run = recheck.run
        self.item = item
        self.network_name = network_name
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

    def run_step(self) -> tuple[str, str]:
        if self.ip is None:
            return (
                Outcome.SKIPPED,
                "Skipped: the plan names no address for this item; nothing was freed.",
            )
        if self.item.kind in ALLOCATION_KINDS:
            return self.reclaim_allocation()
        return self.reclaim_reservation()

    def holder(self, pod: dict[str, Any] | None) -> str:
        """Step 2, the re-check: the podref's pod (name and uid), then every live pod."""
        assert self.ip is not None
        verdict = _podref_verdict(pod, self.item, self.ip, self.run)
        if verdict:
            return verdict
        return self.recheck.live_holder(self.ip, self.network_name)

    # allocation items ------------------------------------------------------------------------

    def read_allocation(self, pool: dict[str, Any]) -> tuple[str, str] | dict[str, Any]:
        """Step 1: the allocation as it is now, or the outcome when it cannot be freed.
        Values the CRD schema would refuse (an older or missing schema lets them in) never
        raise: an allocation ippam cannot read is one it does not free."""
        item = self.item
        where = f"key {item.allocation_key} of IPPool {self.pool_label}"
        spec = pool.get("spec")
        allocations = spec.get("allocations") if isinstance(spec, dict) else None
        if allocations is None:
            allocations = {}
        if not isinstance(allocations, dict):
            return Outcome.SKIPPED, (
                f"Skipped: spec.allocations of IPPool {self.pool_label} is {_odd(allocations)}, "
                f"not a map; ippam frees nothing it cannot read: fix the pool by hand."
            )
        if item.allocation_key not in allocations:
            return Outcome.NOOP, self._say(
                f"found {self.ip} (key {item.allocation_key}) no longer allocated in IPPool "
                f"{self.pool_label}; nothing to free."
            )
        current = allocations[item.allocation_key]
        if not isinstance(current, dict):
            # whereabouts decodes a null into an empty allocation: the key stays taken
            return Outcome.SKIPPED, self._say(
                f"skipped: {where} is {_odd(current)}, not an allocation object; ippam frees "
                f"nothing it cannot read: check that no pod uses {self.ip}, then remove the key by hand."
            )
        holder = current.get("podref")
        if holder is None or not isinstance(holder, str) or not holder:
            what = (
                "has no podref" if holder in (None, "") else f"has a podref that is {_odd(holder)}"
            )
            return Outcome.SKIPPED, self._say(
                f"skipped: {where} {what}; ippam cannot tell whose it is: check that no pod uses "
                f"{self.ip}, then remove the key by hand."
            )
        if holder != item.podref:
            return Outcome.SKIPPED, self._say(
                f"skipped: {holder} now holds it (it was {item.podref}'s when planned)."
            )
        return current

    def reclaim_allocation(self) -> tuple[str, str]:
        item = self.item
        pod_ns, pod_name = split_podref(item.podref)
        last_error: KubeError | None = None
        for attempt in range(1, max_attempts() + 1):
            item.attempts = attempt
            pool = self.w.get_ippool(item.pool_namespace, item.pool_name)
            if pool is None:
                return Outcome.NOOP, f"IPPool {self.pool_label} no longer exists; nothing to free."
            current = self.read_allocation(pool)
            if isinstance(current, tuple):
                return current
            pod = self.w.get_pod(pod_ns, pod_name) if pod_name else None
            holder = self.holder(pod)
            if holder:
                return Outcome.SKIPPED, self._say(f"skipped: {holder}.")
            try:
                self.patch_guarded(pool)
            except KubeError as exc:
                if exc.status in (409, 422):
                    self.changed = True
                    last_error = exc
                    continue
                if exc.status == 404:
                    return Outcome.NOOP, f"IPPool {self.pool_label} was deleted; nothing to free."
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
            return Outcome.RECLAIMED, message + self.release_reservation() + "."
        return Outcome.FAILED, (
            f"IPPool {self.pool_label} kept changing while reclaiming {self.ip}: gave up after "
            f"{max_attempts()} attempts ({last_error}); run the reclaim again."
        )

    def patch_guarded(self, pool: dict[str, Any]) -> None:
        """Step 3: remove the allocation only if neither the pool nor its podref changed since
        it was read; any concurrent writer (whereabouts allocating, its reconciler freeing)
        makes the API server refuse the patch (409/422) instead of removing its address."""
        item = self.item
        resource_version = (pool.get("metadata") or {}).get("resourceVersion", "")
        path = json_pointer("spec", "allocations", item.allocation_key)
        ops = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": resource_version},
            {"op": "test", "path": f"{path}/podref", "value": item.podref},
            {"op": "remove", "path": path},
        ]
        self.w.patch_ippool_json(item.pool_namespace, item.pool_name, ops)

    def release_reservation(self) -> str:
        """Delete the freed allocation's reservation if it still names the same pod (the
        holders were re-checked just before the pool was patched)."""
        item = self.item
        if not item.reservation_name:
            return ""
        label = f"{item.reservation_namespace}/{item.reservation_name}"
        for _ in range(max_attempts()):
            orip = self.w.get_reservation(item.reservation_namespace, item.reservation_name)
            if orip is None:
                return f"; reservation {label} was already gone"
            holder = _reservation_podref(orip)
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
                return Outcome.NOOP, f"Reservation {label} is already gone; nothing to delete."
            holder = _reservation_podref(orip)
            if holder != item.podref:
                return Outcome.SKIPPED, (
                    f"Skipped: reservation {label} now belongs to {holder or 'no pod'}, not {item.podref}."
                )
            pod = self.w.get_pod(pod_ns, pod_name) if pod_name else None
            verdict = self.holder(pod)
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
                f"deleted reservation {label} of {self.ip}, held for {item.podref}.",
            )
        return (
            Outcome.FAILED,
            f"Reservation {label} kept changing; gave up after {max_attempts()} attempts; run the reclaim again.",
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
            spec = pool.get("spec")
            allocations = spec.get("allocations") if isinstance(spec, dict) else None
            current = allocations.get(key) if isinstance(allocations, dict) else None
            if isinstance(current, dict) and current.get("podref") == podref:
                return f"IPPool {namespace}/{name} allocates {self.ip} to {podref}"
        return ""


def _reservation_podref(orip: dict[str, Any]) -> str:
    spec = orip.get("spec")
    podref = spec.get("podref") if isinstance(spec, dict) else None
    return podref if isinstance(podref, str) else ""


def _item_scopes(cluster: Cluster, items: list[ReclaimItem]) -> dict[int, str | None]:
    """Each item's network scope (whereabouts network_name): of its pool for an allocation,
    of its reservation for a reservation; None when ippam no longer knows the object (then
    every listing counts as the same scope)."""
    pools = {
        (ns, name): network
        for ns, name, network in IPPool.objects.filter(cluster=cluster).values_list(
            "namespace", "name", "network_name"
        )
    }
    orips = {
        (ns, name): network
        for ns, name, network in OverlappingRangeIPReservation.objects.filter(
            cluster=cluster, name__in={i.reservation_name for i in items if i.reservation_name}
        ).values_list("namespace", "name", "network_name")
    }
    scopes: dict[int, str | None] = {}
    for item in items:
        if item.kind in ALLOCATION_KINDS:
            scopes[item.pk] = pools.get((item.pool_namespace, item.pool_name))
        else:
            scopes[item.pk] = orips.get((item.reservation_namespace, item.reservation_name))
    return scopes


def _unexpected(step: _Item, exc: BaseException) -> str:
    error = f"{exc.__class__.__name__}: {exc}"
    if step.freed_allocation or step.deleted_reservation:
        done = (
            f"freed {step.ip} in IPPool {step.pool_label}"
            if step.freed_allocation
            else f"deleted reservation {step.item.reservation_namespace}/{step.item.reservation_name}"
        )
        return f"{done}, then an unexpected error stopped this item ({error}); check its reservation and the audit log."
    return f"An unexpected error stopped this item ({error}); nothing was freed for it: run the reclaim again, and report the error if it repeats."


# --- execute: the run ------------------------------------------------------------------------


def reclaim_execute(*, run_id: int) -> ReclaimRun:
    """Execute a planned run (the body of the `ippam.tasks.reclaim_run` task).

    Idempotent: a finished run is returned untouched with `noop = True`; a run interrupted
    midway resumes with its pending items. Every item ends reclaimed, skipped, noop or failed
    with a sentence, and the run always ends (DONE, or FAILED when it could not run at all).
    Afterwards the database is brought in line (freed allocations and deleted reservations
    removed, pool counts recomputed) and detection is re-run for the cluster.
    """
    with transaction.atomic():
        run = ReclaimRun.objects.select_for_update().select_related("cluster").get(pk=run_id)
        if run.state in (ReclaimRun.State.DONE, ReclaimRun.State.FAILED):
            run.noop = True  # type: ignore[attr-defined]
            return run
        if run.state == ReclaimRun.State.PLANNED:
            run.state = ReclaimRun.State.RUNNING
            run.started_at = timezone.now()
        run.heartbeat_at = timezone.now()
        run.save(update_fields=["state", "started_at", "heartbeat_at"])
    cluster = run.cluster
    pending = list(run.items.filter(outcome=Outcome.PENDING).order_by("id"))
    freed: list[tuple[str, str, str]] = []
    deleted: list[tuple[str, str]] = []
    try:
        writes = KubeWrites(cluster)
    except KubeError as exc:
        _fail_run(
            run, pending, f"{exc}; fix the cluster's connection settings and run the reclaim again."
        )
        return run
    stopped = ""
    try:
        recheck = Recheck(writes, run, pending)
        scopes = _item_scopes(cluster, pending)
        for item in pending:
            if not _heartbeat(run):
                stopped = "the run was marked failed (its worker had been silent past the deadline)"
                break
            step = _Item(recheck, item, scopes.get(item.pk))
            try:
                outcome, message = step.run_step()
            except KubeError as exc:
                outcome = Outcome.FAILED
                message = (
                    f"{exc}; nothing was freed for this item: check the cluster and run the reclaim again."
                    if not (step.freed_allocation or step.deleted_reservation)
                    else _unexpected(step, exc)
                )
            except Exception as exc:  # one item's bug must not leave the run RUNNING
                log.exception("reclaim run %s: item %s failed", run.pk, item.pk)
                outcome, message = Outcome.FAILED, _unexpected(step, exc)
            _item_record(run, item, step, outcome, message)
            if step.freed_allocation:
                freed.append((item.pool_namespace, item.pool_name, item.allocation_key))
            if step.deleted_reservation:
                deleted.append((item.reservation_namespace, item.reservation_name))
    except Exception as exc:
        log.exception("reclaim run %s stopped", run.pk)
        stopped = f"the run stopped on an unexpected error ({exc.__class__.__name__}: {exc})"
    finally:
        writes.close()
    _run_finish(run, stopped)
    try:
        _apply_to_database(cluster, freed, deleted)
    except Exception:  # the next sync brings the database in line anyway
        log.exception("reclaim run %s: updating the database after the run failed", run.pk)
    run.noop = not freed and not deleted  # type: ignore[attr-defined]
    from ippam.leaks.detect import leaks_detect

    leaks_detect(cluster=cluster)
    return run


def _heartbeat(run: ReclaimRun) -> bool:
    """Say the worker is alive; False when a reader has meanwhile failed the run."""
    return bool(
        ReclaimRun.objects.filter(pk=run.pk, state=ReclaimRun.State.RUNNING).update(
            heartbeat_at=timezone.now()
        )
    )


def _item_record(
    run: ReclaimRun, item: ReclaimItem, step: _Item, outcome: str, message: str
) -> None:
    """Step 4: the item's outcome and one audit entry (actor, before, after, outcome)."""
    item.outcome, item.message = outcome, message
    item.save(update_fields=["outcome", "message", "attempts"])
    audit_record(
        actor=run.requested_by or run.actor,
        action=AuditEntry.Action.RESERVATION_DELETE
        if item.kind == Finding.Kind.ORPHANED_RESERVATION
        else AuditEntry.Action.ALLOCATION_RECLAIM,
        cluster=run.cluster,
        target=_item_target(item),
        before=step.before or {"why": item.why, "podref": item.podref},
        after=step.after or None,
        outcome=outcome,
        message=f"reclaim run {run.pk}: {message}",
    )


def _run_finish(run: ReclaimRun, stopped: str) -> None:
    """End the run: DONE when every item ran, else FAILED with the rest failed and why."""
    now = timezone.now()
    if stopped:
        ReclaimItem.objects.filter(run=run, outcome=Outcome.PENDING).update(
            outcome=Outcome.FAILED,
            message=f"Not run: {stopped}; nothing was freed for this item (check the audit log).",
        )
    state = ReclaimRun.State.FAILED if stopped else ReclaimRun.State.DONE
    ReclaimRun.objects.filter(pk=run.pk, state=ReclaimRun.State.RUNNING).update(
        state=state, finished_at=now
    )
    run.refresh_from_db(fields=["state", "finished_at", "heartbeat_at"])


WORKER_GONE = (
    "The worker stopped before this item ran; nothing was freed for it (check the audit log)."
)


def reclaim_runs_expire(*, run: ReclaimRun | None = None) -> int:
    """Fail RUNNING runs whose worker has been silent past IPPAM_RECLAIM_DEADLINE_SECONDS
    (a worker killed mid-run never ends its run): their pending items fail with a sentence,
    so no page polls forever. Called lazily when a run is read, and by the CLI. Returns how
    many runs were failed."""
    deadline = timezone.now() - dt.timedelta(seconds=deadline_seconds())
    runs = ReclaimRun.objects.filter(state=ReclaimRun.State.RUNNING)
    if run is not None:
        runs = runs.filter(pk=run.pk)
    silent = runs.annotate(last_sign=Coalesce("heartbeat_at", "started_at", "created_at")).filter(
        last_sign__lt=deadline
    )
    expired = 0
    for run_id in list(silent.values_list("pk", flat=True)):
        with transaction.atomic():
            if not ReclaimRun.objects.filter(pk=run_id, state=ReclaimRun.State.RUNNING).update(
                state=ReclaimRun.State.FAILED, finished_at=timezone.now()
            ):
                continue
            ReclaimItem.objects.filter(run_id=run_id, outcome=Outcome.PENDING).update(
                outcome=Outcome.FAILED, message=WORKER_GONE
            )
        log.warning("reclaim run %s: its worker went silent; marked failed", run_id)
        expired += 1
    if run is not None and expired:
        run.refresh_from_db()
    return expired


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
