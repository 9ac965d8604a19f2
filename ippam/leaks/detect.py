"""leaks_detect: run the rules, hold what is still in its grace period, upsert Findings."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ippam.leaks.rules.common import Candidate
from ippam.leaks.rules.registry import candidates_compute
from ippam.models import Cluster, Finding

log = logging.getLogger(__name__)

UPDATED_FIELDS = [
    "kind",
    "state",
    "ip",
    "pool",
    "allocation_key",
    "reservation",
    "nad",
    "podref",
    "node_name",
    "reason",
    "details",
    "last_seen",
]


@dataclass
class DetectionResult:
    cluster_id: int
    at: dt.datetime
    counts: dict[str, int] = field(default_factory=dict)  # per kind, raised findings
    suspect: int = 0
    created: int = 0
    resolved: int = 0
    held_in_grace: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def grace_seconds() -> int:
    """settings.IPPAM_LEAK_GRACE_SECONDS, read at call time (tests override it)."""
    return max(int(getattr(settings, "IPPAM_LEAK_GRACE_SECONDS", 0) or 0), 0)


def _in_grace(candidate: Candidate, now: dt.datetime, grace: int) -> bool:
    if not grace or candidate.changed_at is None:
        return False
    return candidate.changed_at > now - dt.timedelta(seconds=grace)


def leaks_detect(*, cluster: Cluster, now: dt.datetime | None = None) -> DetectionResult:
    """Recompute the cluster's findings: upsert the current ones (first_seen kept), delete
    the ones that are gone, then refresh alerts."""
    from ippam.leaks.alerts import alerts_refresh

    started = time.monotonic()
    now = now or timezone.now()
    grace = grace_seconds()
    result = DetectionResult(cluster_id=cluster.pk, at=now)
    raised: dict[str, Candidate] = {}
    for candidate in candidates_compute(cluster=cluster, now=now):
        if _in_grace(candidate, now, grace):
            result.held_in_grace += 1
            continue
        raised.setdefault(candidate.identity, candidate)
    counts = Counter(str(c.kind) for c in raised.values())  # plain strings: logs, JSON
    result.counts = dict(sorted(counts.items()))
    result.suspect = sum(1 for c in raised.values() if c.state == Finding.State.SUSPECT)

    with transaction.atomic():
        existing = dict(Finding.objects.filter(cluster=cluster).values_list("identity", "id"))
        rows = [
            Finding(
                cluster=cluster,
                kind=c.kind,
                identity=c.identity,
                state=c.state,
                ip=c.ip,
                pool_id=c.pool_id,
                allocation_key=c.allocation_key,
                reservation_id=c.reservation_id,
                nad_id=c.nad_id,
                podref=c.podref,
                node_name=c.node_name,
                reason=c.reason,
                details=c.details,
                first_seen=now,
                last_seen=now,
            )
            for c in raised.values()
        ]
        # first_seen is only written on insert: it is when the leak was first raised.
        Finding.objects.bulk_create(
            rows,
            batch_size=500,
            update_conflicts=True,
            unique_fields=["cluster", "identity"],
            update_fields=UPDATED_FIELDS,
        )
        result.created = len(raised.keys() - existing.keys())
        gone = [pk for identity, pk in existing.items() if identity not in raised]
        for start in range(0, len(gone), 500):
            Finding.objects.filter(pk__in=gone[start : start + 500]).delete()
        result.resolved = len(gone)
        alerts_refresh(cluster=cluster, now=now)
    result.seconds = time.monotonic() - started
    log.info(
        "cluster %s: %d findings %s (%d suspect, %d new, %d gone, %d held in grace) in %.2fs",
        cluster.name,
        result.total,
        result.counts,
        result.suspect,
        result.created,
        result.resolved,
        result.held_in_grace,
        result.seconds,
    )
    return result


def detect_after_sync(sender: object, *, cluster: Cluster, **kwargs: object) -> None:
    """Receiver of ippam.signals.sync_finished: findings follow every full sync."""
    leaks_detect(cluster=cluster)
