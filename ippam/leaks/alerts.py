"""Alerts: one per finding identity (open -> acknowledged -> resolved, re-opened when the
finding comes back), and one per pool when it crosses the utilization threshold or, in its
place, when it is exhausted."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from ippam.audit import audit_record
from ippam.models import Alert, AuditEntry, Cluster, Finding, IPPool
from ippam.notify import alert_changes_record
from ippam.poolnumbers import PoolNumbers, pool_alert_text

ACTIVE = (Alert.State.OPEN, Alert.State.ACKNOWLEDGED)


class AlertError(Exception):
    """An alert action that cannot be done, in words that say what to do instead."""


@dataclass(frozen=True)
class _Wanted:
    kind: str
    message: str
    finding_id: int | None = None
    pool_id: int | None = None


def pool_threshold() -> float:
    return float(getattr(settings, "IPPAM_POOL_ALERT_THRESHOLD", 0.9))


def _wanted_alerts(cluster: Cluster) -> dict[str, _Wanted]:
    wanted: dict[str, _Wanted] = {}
    for pk, identity, kind, state, reason in Finding.objects.filter(cluster=cluster).values_list(
        "id", "identity", "kind", "state", "reason"
    ):
        prefix = "Suspected leak: " if state == Finding.State.SUSPECT else ""
        wanted[identity] = _Wanted(kind=kind, message=f"{prefix}{reason}", finding_id=pk)
    threshold = pool_threshold()
    pools = IPPool.objects.filter(
        cluster=cluster, usable__gt=0, utilization__gte=min(threshold, 1.0)
    )
    for pk, ns, name, allocated, usable in pools.values_list(
        "id", "namespace", "name", "allocated", "usable"
    ):
        label = f"{ns}/{name}"
        numbers = PoolNumbers.of(usable, allocated)
        # The stored text is what a notification carries; pages render it again from the
        # pool's numbers at display time (Alert.text), so a watched change shows at once.
        # One alert per pool and condition: "exhausted" supersedes "above threshold" (the
        # threshold alert resolves as the exhausted one opens, and comes back with room).
        kind = Alert.Kind.POOL_EXHAUSTED if numbers.exhausted else Alert.Kind.POOL_THRESHOLD
        wanted[f"{kind.value}:{label}"] = _Wanted(
            kind=kind, message=pool_alert_text(kind, label, numbers, threshold), pool_id=pk
        )
    return wanted


def alerts_refresh(*, cluster: Cluster, now: dt.datetime | None = None) -> dict[str, int]:
    """Open, update, re-open and resolve the cluster's alerts to match findings and pools."""
    now = now or timezone.now()
    wanted = _wanted_alerts(cluster)
    stats = {"opened": 0, "reopened": 0, "resolved": 0, "updated": 0}
    with transaction.atomic():
        # Resolved alerts pile up over months: load the active ones, and of the resolved
        # only those whose finding is back (to re-open them).
        existing = {a.identity: a for a in Alert.objects.filter(cluster=cluster, state__in=ACTIVE)}
        returning = [identity for identity in wanted if identity not in existing]
        for start in range(0, len(returning), 500):
            for returned in Alert.objects.filter(
                cluster=cluster,
                state=Alert.State.RESOLVED,
                identity__in=returning[start : start + 500],
            ):
                existing[returned.identity] = returned
        create: list[Alert] = []
        update: list[Alert] = []
        changes: list[tuple[Alert, str]] = []  # (alert, AlertDelivery.Transition) to notify
        for identity, w in wanted.items():
            alert = existing.get(identity)
            if alert is None:
                create.append(
                    Alert(
                        cluster=cluster,
                        identity=identity,
                        kind=w.kind,
                        state=Alert.State.OPEN,
                        finding_id=w.finding_id,
                        pool_id=w.pool_id,
                        message=w.message,
                        opened_at=now,
                    )
                )
                changes.append((create[-1], "opened"))
                stats["opened"] += 1
                continue
            if alert.state == Alert.State.RESOLVED:
                alert.state = Alert.State.OPEN
                alert.opened_at = now
                alert.resolved_at = None
                alert.acknowledged_by = None
                alert.acknowledged_at = None
                alert.times_opened += 1
                changes.append((alert, "reopened"))
                stats["reopened"] += 1
            elif (alert.message, alert.finding_id, alert.pool_id, alert.kind) == (
                w.message,
                w.finding_id,
                w.pool_id,
                w.kind,
            ):
                continue
            else:
                stats["updated"] += 1
            alert.kind, alert.message = w.kind, w.message
            alert.finding_id, alert.pool_id = w.finding_id, w.pool_id
            update.append(alert)
        for identity, alert in existing.items():
            if identity not in wanted and alert.state in ACTIVE:
                alert.state = Alert.State.RESOLVED
                alert.resolved_at = now
                alert.finding_id = None
                update.append(alert)
                changes.append((alert, "resolved"))
                stats["resolved"] += 1
        Alert.objects.bulk_create(create, batch_size=500)
        Alert.objects.bulk_update(
            update,
            [
                "state",
                "kind",
                "message",
                "finding",
                "pool",
                "opened_at",
                "resolved_at",
                "acknowledged_by",
                "acknowledged_at",
                "times_opened",
            ],
            batch_size=500,
        )
        # One notification per change and channel, sent by a worker after commit.
        alert_changes_record(changes, now=now)
    return stats


def _alert_snapshot(alert: Alert) -> dict[str, Any]:
    return {
        "state": alert.state,
        "note": alert.note,
        "acknowledged_by": alert.acknowledged_by.get_username() if alert.acknowledged_by else None,
        "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
    }


def alert_acknowledge(*, alert: Alert, user: Any, note: str = "") -> Alert:
    """Mark an open alert as seen by `user` (with an optional note); audited.

    Acknowledging an acknowledged alert again replaces the note. A resolved alert cannot be
    acknowledged: there is nothing left to look at.
    """
    if (
        user is not None
        and hasattr(user, "has_perm")
        and not user.has_perm("ippam.acknowledge_alert")
    ):
        raise PermissionDenied(
            f"{user.get_username()} may not acknowledge alerts; ask an admin for the operator role"
        )
    with transaction.atomic():
        locked = Alert.objects.select_for_update().get(pk=alert.pk)
        if locked.state == Alert.State.RESOLVED:
            raise AlertError(
                f"alert {locked.identity} was resolved at {locked.resolved_at:%Y-%m-%d %H:%M:%S}; "
                "there is nothing to acknowledge"
            )
        before = _alert_snapshot(locked)
        Alert.objects.filter(pk=locked.pk).update(
            state=Alert.State.ACKNOWLEDGED,
            acknowledged_by=user if getattr(user, "pk", None) else None,
            acknowledged_at=timezone.now(),
            note=note.strip(),
        )
        locked.refresh_from_db()
        audit_record(
            actor=user,
            action=AuditEntry.Action.ALERT_ACKNOWLEDGE,
            cluster=locked.cluster,
            target=f"alert {locked.identity}",
            before=before,
            after=_alert_snapshot(locked),
            outcome="acknowledged",
            message=note.strip(),
        )
    alert.refresh_from_db()
    return alert
