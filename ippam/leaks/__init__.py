"""Leaks: detection (rules over synced rows), alerts, and safe reclamation.

Detection runs after every successful full sync: ippam.apps connects
ippam.leaks.detect.detect_after_sync to ippam.signals.sync_finished.
"""

from __future__ import annotations

from ippam.leaks.alerts import AlertError, alert_acknowledge, alerts_refresh
from ippam.leaks.detect import DetectionResult, leaks_detect
from ippam.leaks.reclaim.common import ReclaimError
from ippam.leaks.reclaim.execute import reclaim_execute
from ippam.leaks.reclaim.plan import reclaim_plan
from ippam.leaks.reclaim.preview import Preview, reclaim_preview

__all__ = [
    "AlertError",
    "DetectionResult",
    "Preview",
    "ReclaimError",
    "alert_acknowledge",
    "alerts_refresh",
    "leaks_detect",
    "reclaim_execute",
    "reclaim_plan",
    "reclaim_preview",
]
