"""Alert notifications: an Alertmanager-compatible webhook and e-mail, once per state change.

Every alert state change (opened, re-opened, resolved) gets one AlertDelivery row per
configured channel, written in the transaction that changes the alert; after commit one
Celery task per row sends it. The unique (alert, transition, occurrence, channel) makes the
rows once; `delivery_claim` turns a row pending/failed -> sending in one UPDATE, so two
workers (or a redelivered task) can never both send it, and a retry re-sends only what did
not go out. A row left "sending" by a worker killed mid-send is NOT sent again (it might
have gone out): the deliveries page shows it, which is the honest answer to "never twice".

The webhook body is a JSON list of alerts in Alertmanager's own format (the body of its
`POST /api/v2/alerts`: labels, annotations, startsAt, endsAt, generatorURL), so it can post
straight into an Alertmanager, or to any receiver that reads that shape.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from functools import partial
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from ippam.models import Alert, AlertDelivery

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 10.0
DELIVER_TASK = "ippam.tasks.deliver_alert_notification"
_CRITICAL = {Alert.Kind.POOL_EXHAUSTED, Alert.Kind.DUPLICATE_ADDRESS}
_INFO = {Alert.Kind.OVERLAPPING_RANGE}


class DeliveryError(Exception):
    """A channel refused or did not answer; the task retries with backoff."""


def channels() -> list[str]:
    """The channels configured now (none: no rows, nothing to send)."""
    found: list[str] = []
    if _webhook_url():
        found.append(AlertDelivery.Channel.WEBHOOK)
    if _emails():
        found.append(AlertDelivery.Channel.EMAIL)
    return found


def _webhook_url() -> str:
    return str(getattr(settings, "IPPAM_ALERT_WEBHOOK_URL", ""))


def _emails() -> list[str]:
    return list(getattr(settings, "IPPAM_ALERT_EMAILS", []))


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def alert_url(alert: Alert) -> str:
    base = str(getattr(settings, "IPPAM_BASE_URL", "http://127.0.0.1:8000")).rstrip("/")
    return f"{base}{reverse('alert_list')}?alert={alert.pk}"


def alertmanager_alert(alert: Alert) -> dict[str, Any]:
    """The alert in Alertmanager's postable format; `endsAt` only once it is resolved."""
    kind = Alert.Kind(alert.kind)
    severity = "critical" if kind in _CRITICAL else "info" if kind in _INFO else "warning"
    labels = {
        "alertname": "Ippam" + "".join(w.capitalize() for w in kind.value.split("_")),
        "cluster": alert.cluster.name,
        "kind": kind.value,
        "severity": severity,
        "identity": alert.identity,
    }
    if alert.pool_id is not None and alert.pool is not None:
        labels["pool"] = f"{alert.pool.namespace}/{alert.pool.name}"
    payload: dict[str, Any] = {
        "labels": labels,
        "annotations": {
            "summary": f"{kind.label} in cluster {alert.cluster.name}",
            "description": alert.message,
        },
        "startsAt": _iso(alert.opened_at),
        "generatorURL": alert_url(alert),
    }
    if alert.state == Alert.State.RESOLVED and alert.resolved_at:
        payload["endsAt"] = _iso(alert.resolved_at)
    return payload


def alert_is_snoozed(alert: Alert, now: dt.datetime | None = None) -> bool:
    return alert.snoozed_until is not None and alert.snoozed_until > (now or timezone.now())


def alert_changes_record(
    changes: Sequence[tuple[Alert, str]], *, now: dt.datetime | None = None
) -> int:
    """Rows for each (alert, transition) just made, and their sends queued after commit.

    Call inside the transaction that changed the alerts. A snoozed alert's rows are written
    as suppressed (the page shows the change was not sent, and why) and queue nothing.
    """
    wanted = channels()
    if not changes or not wanted:
        return 0
    now = now or timezone.now()
    rows = [
        AlertDelivery(
            alert=alert,
            transition=transition,
            occurrence=alert.times_opened,
            channel=channel,
            status=(
                AlertDelivery.Status.SUPPRESSED
                if alert_is_snoozed(alert, now)
                else AlertDelivery.Status.PENDING
            ),
            error=(
                f"snoozed until {alert.snoozed_until:%Y-%m-%d %H:%M %Z}"
                if alert_is_snoozed(alert, now)
                else ""
            ),
            payload=alertmanager_alert(alert),
        )
        for alert, transition in changes
        for channel in wanted
    ]
    started = timezone.now()
    AlertDelivery.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
    # The rows just written (a conflict wrote nothing: that change is queued already).
    pending = list(
        AlertDelivery.objects.filter(
            alert_id__in=[alert.pk for alert, _ in changes],
            status=AlertDelivery.Status.PENDING,
            created_at__gte=started,
        ).values_list("pk", flat=True)
    )
    # By name: ippam.tasks imports this module, and modules here do not import in a cycle.
    for pk in pending:
        transaction.on_commit(partial(current_app.send_task, DELIVER_TASK, args=[pk]))
    return len(pending)


def delivery_claim(delivery_id: int, *, now: dt.datetime | None = None) -> bool:
    """Take the row for sending, atomically: True for exactly one caller while it is unsent."""
    return bool(
        AlertDelivery.objects.filter(
            pk=delivery_id,
            status__in=[AlertDelivery.Status.PENDING, AlertDelivery.Status.FAILED],
        ).update(
            status=AlertDelivery.Status.SENDING,
            attempts=F("attempts") + 1,
            claimed_at=now or timezone.now(),
        )
    )


def _send_webhook(payload: dict[str, Any]) -> None:
    body = json.dumps([payload]).encode()
    request = urllib.request.Request(
        _webhook_url(),
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "ippam"},
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read(500).decode(errors="replace").strip()
        raise DeliveryError(
            f"the webhook {_webhook_url()} answered HTTP {exc.code}"
            + (f": {detail}" if detail else "")
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(
            f"the webhook {_webhook_url()} did not answer ({reason}); "
            "check IPPAM_ALERT_WEBHOOK_URL and that the receiver is up"
        ) from exc


def _send_email(delivery: AlertDelivery) -> None:
    payload = delivery.payload
    labels, notes = payload.get("labels", {}), payload.get("annotations", {})
    subject = f"[ippam] {delivery.transition}: {notes.get('summary', '')}"
    body = "\n".join(
        [
            f"{notes.get('description', '')}",
            "",
            f"State change: {delivery.transition}",
            f"Cluster: {labels.get('cluster', '')}",
            f"Severity: {labels.get('severity', '')}",
            f"Started: {payload.get('startsAt', '')}",
            *([f"Ended: {payload['endsAt']}"] if "endsAt" in payload else []),
            f"Details: {payload.get('generatorURL', '')}",
        ]
    )
    try:
        send_mail(
            subject,
            body,
            settings.DEFAULT_FROM_EMAIL,
            _emails(),
            fail_silently=False,
        )
    except (OSError, Exception) as exc:  # smtplib errors are OSError or SMTPException
        raise DeliveryError(
            f"e-mail to {', '.join(_emails())} failed ({exc}); check EMAIL_HOST "
            "and the other mail settings"
        ) from exc


def delivery_send(*, delivery_id: int) -> str:
    """Send one delivery if it is still unsent: "sent", "suppressed", "skipped" (sent or taken
    by another worker), or DeliveryError (recorded on the row as failed) for a retry."""
    if not delivery_claim(delivery_id):
        return "skipped"
    delivery = AlertDelivery.objects.select_related("alert").get(pk=delivery_id)
    if alert_is_snoozed(delivery.alert):
        AlertDelivery.objects.filter(pk=delivery_id).update(
            status=AlertDelivery.Status.SUPPRESSED,
            error=f"snoozed until {delivery.alert.snoozed_until:%Y-%m-%d %H:%M %Z}",
        )
        return "suppressed"
    try:
        if delivery.channel == AlertDelivery.Channel.WEBHOOK:
            _send_webhook(delivery.payload)
        else:
            _send_email(delivery)
    except DeliveryError as exc:
        AlertDelivery.objects.filter(pk=delivery_id).update(
            status=AlertDelivery.Status.FAILED, error=str(exc)
        )
        raise
    AlertDelivery.objects.filter(pk=delivery_id).update(
        status=AlertDelivery.Status.SENT, sent_at=timezone.now(), error=""
    )
    return "sent"


def delivery_list() -> Any:
    """Every delivery, newest first, with its alert and cluster (the deliveries page)."""
    return AlertDelivery.objects.select_related("alert", "alert__cluster").order_by(
        "-created_at", "-id"
    )


def alert_snooze(*, alert: Alert, until: dt.datetime | None) -> Alert:
    """No notifications for the alert until `until` (None: wake it now)."""
    Alert.objects.filter(pk=alert.pk).update(snoozed_until=until)
    alert.refresh_from_db()
    return alert


def alert_assign(*, alert: Alert, user: Any) -> Alert:
    """Make `user` (None: nobody) the one who looks after the alert."""
    Alert.objects.filter(pk=alert.pk).update(assignee=user)
    alert.refresh_from_db()
    return alert
