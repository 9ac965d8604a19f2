"""Step 3 of reclamation, the guarded write of one item: read, re-check, a JSON
Patch that tests the pool's resourceVersion and the allocation's podref, retry a bounded
number of times; the reservation is deleted under a resourceVersion precondition."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netaddr import IPAddress

from ippam.audit import audit_record
from ippam.kube.client import KubeError
from ippam.kube.writes import json_pointer
from ippam.leaks.reclaim.common import ALLOCATION_KINDS, Outcome, max_attempts
from ippam.leaks.reclaim.recheck import Recheck, _odd, _podref_verdict
from ippam.models import AuditEntry, Cluster, IPPool, OverlappingRangeIPReservation, ReclaimItem
from ippam.naming import split_podref


@dataclass(frozen=True)
class Freeable:
    """What the re-check read live for an allocation no live pod holds: the patch's base."""

    pool: dict[str, Any]
    allocation: dict[str, Any]


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

    def recheck_allocation(self) -> tuple[str, str] | Freeable:
        """Step 2 for an allocation, shared by the dry run and the run: the pool and the
        allocation read live when no one holds the address, else the outcome and sentence."""
        item = self.item
        pod_ns, pod_name = split_podref(item.podref)
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
        return Freeable(pool, current)

    def preview(self) -> tuple[str, str]:
        """The dry run of this item: the run's own re-check, nothing written. PENDING with
        what the run will free, or the outcome it would end with now."""
        if self.ip is None:
            return self.run_step()
        item = self.item
        if item.kind in ALLOCATION_KINDS:
            checked = self.recheck_allocation()
            if not isinstance(checked, Freeable):
                return checked
            return Outcome.PENDING, (
                f"Will free {self.ip} (key {item.allocation_key}) in IPPool {self.pool_label}, "
                f"allocated to {item.podref}: no live pod lists it."
            )
        checked_orip = self.recheck_reservation()
        if isinstance(checked_orip, tuple):
            return checked_orip
        return Outcome.PENDING, (
            f"Will delete reservation {item.reservation_namespace}/{item.reservation_name} of "
            f"{self.ip}, held for {item.podref}: no live pod lists it."
        )

    def reclaim_allocation(self) -> tuple[str, str]:
        item = self.item
        last_error: KubeError | None = None
        for attempt in range(1, max_attempts() + 1):
            item.attempts = attempt
            checked = self.recheck_allocation()
            if not isinstance(checked, Freeable):
                return checked
            pool, current = checked.pool, checked.allocation
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

    def recheck_reservation(self) -> tuple[str, str] | dict[str, Any]:
        """Step 2 for a reservation, shared by the dry run and the run: the reservation read
        live when no one holds the address, else the item's outcome and sentence."""
        item = self.item
        label = f"{item.reservation_namespace}/{item.reservation_name}"
        pod_ns, pod_name = split_podref(item.podref)
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
        return orip

    def reclaim_reservation(self) -> tuple[str, str]:
        item = self.item
        label = f"{item.reservation_namespace}/{item.reservation_name}"
        for attempt in range(1, max_attempts() + 1):
            item.attempts = attempt
            orip = self.recheck_reservation()
            if isinstance(orip, tuple):
                return orip
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
