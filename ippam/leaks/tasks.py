"""Celery tasks for leaks: ids in, a lock, a service call, a small summary out.

Registered under ippam.tasks.* names so callers and beat schedules need not know that they
live here; dashboard.celery's autodiscovery lists ippam.leaks.
Tests call the task bodies directly (`reclaim_run(run_id)`), never in eager mode.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from ippam.locks import lock

log = logging.getLogger(__name__)


@shared_task(name="ippam.tasks.reclaim_run", acks_late=True)
def reclaim_run(run_id: int) -> dict[str, Any]:
    """Execute a planned ReclaimRun. Delivered twice, the second delivery frees nothing and
    reports `noop: true` (the run is finished, or another worker holds its lock)."""
    from ippam.leaks.reclaim.execute import reclaim_execute, reclaim_summary
    from ippam.models import ReclaimRun

    with lock(f"reclaim-run-{run_id}") as held:
        if not held:
            run = ReclaimRun.objects.select_related("cluster").get(pk=run_id)
            summary = reclaim_summary(run)
            summary.update(noop=True, message="another worker is executing this run")
            return summary
        run = reclaim_execute(run_id=run_id)
        return reclaim_summary(run)


@shared_task(name="ippam.tasks.detect_leaks")
def detect_leaks(cluster_id: int) -> dict[str, Any]:
    """Recompute findings and alerts for one cluster (also run after every full sync)."""
    from ippam.leaks.detect import leaks_detect
    from ippam.models import Cluster

    with lock(f"detect-leaks-{cluster_id}") as held:
        if not held:
            return {"cluster": cluster_id, "skipped": "detection already running"}
        result = leaks_detect(cluster=Cluster.objects.get(pk=cluster_id))
        return {
            "cluster": cluster_id,
            "counts": result.counts,
            "suspect": result.suspect,
            "held_in_grace": result.held_in_grace,
            "seconds": round(result.seconds, 3),
        }
