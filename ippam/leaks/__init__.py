"""Leaks: detection (rules over synced rows), alerts, and safe reclamation.

Importing this package (ippam.apps.IppamConfig.ready does) registers detection as an
after-sync hook, so findings are recomputed after every successful full sync, and
registers the Celery tasks in ippam.leaks.tasks (autodiscovery only finds ippam.tasks).
"""

from __future__ import annotations

from typing import Any

from ippam.leaks.alerts import AlertError, alert_acknowledge, alerts_refresh
from ippam.leaks.detect import DetectionResult, leaks_detect
from ippam.leaks.reclaim import ReclaimError, reclaim_execute, reclaim_plan

__all__ = [
    "AlertError",
    "DetectionResult",
    "ReclaimError",
    "alert_acknowledge",
    "alerts_refresh",
    "leaks_detect",
    "reclaim_execute",
    "reclaim_plan",
    "register_after_sync_hook",
]


def detect_after_sync(cluster: Any) -> None:
    leaks_detect(cluster=cluster)


def register_after_sync_hook() -> bool:
    """Add detection to ippam.sync.AFTER_SYNC_HOOKS once; False if sync is not there."""
    try:
        from ippam.sync import AFTER_SYNC_HOOKS
    except ImportError:
        return False
    if detect_after_sync not in AFTER_SYNC_HOOKS:
        AFTER_SYNC_HOOKS.append(detect_after_sync)
    return True


register_after_sync_hook()

from ippam.leaks import tasks as _tasks  # noqa: E402, F401  (registers the Celery tasks)
