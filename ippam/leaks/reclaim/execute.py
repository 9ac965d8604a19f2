"""Running a planned reclamation: every item through re-check and guarded
write, step 4's audit (each item ends with a sentence and an AuditEntry), the worker's
deadline (`reclaim_runs_expire`), the database follow-up and the run's summary."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from typing import Any

from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from ippam.audit import audit_record
from ippam.kube.client import KubeError
from ippam.kube.writes import KubeWrites
from ippam.leaks.reclaim.common import ALLOCATION_KINDS, Outcome, deadline_seconds
from ippam.leaks.reclaim.recheck import Recheck
from ippam.leaks.reclaim.write import _Item, _item_scopes, _unexpected
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

log = logging.getLogger(__name__)


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
            _audit_planned_skips(run)
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
    _audit_item(run, item, outcome, message, before=step.before, after=step.after)


def _audit_planned_skips(run: ReclaimRun) -> None:
    """Items the plan already skipped (not reclaimable, suspect, nothing to delete) are
    items of the run too: each leaves its audit entry when the run starts, once."""
    for item in run.items.filter(outcome=Outcome.SKIPPED).order_by("id"):
        _audit_item(run, item, item.outcome, item.message)


def _audit_item(
    run: ReclaimRun,
    item: ReclaimItem,
    outcome: str,
    message: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    audit_record(
        actor=run.requested_by or run.actor,
        action=AuditEntry.Action.RESERVATION_DELETE
        if item.kind == Finding.Kind.ORPHANED_RESERVATION
        else AuditEntry.Action.ALLOCATION_RECLAIM,
        cluster=run.cluster,
        target=_item_target(item),
        before=before or {"why": item.why, "podref": item.podref},
        after=after or None,
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
    if item.kind in ALLOCATION_KINDS or (item.pool_name and not item.reservation_name):
        return (
            f"IPPool {item.pool_namespace}/{item.pool_name} key {item.allocation_key or '-'} "
            f"({item.ip})"
        )
    if item.reservation_name:
        return f"OverlappingRangeIPReservation {item.reservation_namespace}/{item.reservation_name} ({item.ip})"
    return f"address {item.ip} ({item.kind})"


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
    """Recompute `allocated`, `utilization` and the block counts of these pools from their
    Allocation rows."""
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
    # And the per-block counts the pool page's heat map reads.
    from ippam.pool_blocks import pool_blocks_refresh

    by_cluster: dict[int, list[int]] = {}
    for pool in pools:
        by_cluster.setdefault(pool.cluster_id, []).append(pool.pk)
    for cluster_id, ids in by_cluster.items():
        pool_blocks_refresh(cluster_id=cluster_id, pool_ids=ids)


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
