"""Alert notifications: an Alertmanager-compatible webhook and e-mail, grouped as
Alertmanager groups them.

Every alert state change (opened, re-opened, resolved) gets one AlertDelivery row per
configured channel, written in the transaction that changes the alert, with its group key
(the values of the labels in IPPAM_ALERT_GROUP_BY: cluster and pool by default). The unique
(alert, transition, occurrence, channel) makes the rows once. A flush on the `notify` queue
(queued IPPAM_ALERT_GROUP_WAIT_SECONDS after the change, and by beat every
IPPAM_ALERT_FLUSH_SECONDS) sends each group's due rows in one POST of up to
IPPAM_ALERT_GROUP_MAX_ALERTS alerts (one e-mail digest), and holds a group that was sent less
than IPPAM_ALERT_GROUP_INTERVAL_SECONDS ago: a burst of 30,000 changes is a handful of POSTs,
not 30,000 tasks in front of the syncs.

Delivery is at least once: a row is claimed (pending/failed -> sending) under a row lock, so
two flushers never send it together, and a claim older than IPPAM_ALERT_CLAIM_TIMEOUT_SECONDS
(its worker was killed mid-send) is sent again. Each alert carries a `fingerprint` that is
the same on every re-send of the same change: a receiver dedupes on it (and the POST's
Idempotency-Key header). A redirect is not followed (a 302 to a POST may be re-sent as a GET
to another host): a 3xx is a failed delivery that says so.

The webhook body is a JSON list of alerts in Alertmanager's own format (the body of its
`POST /api/v2/alerts`: labels, annotations, startsAt, endsAt, generatorURL), so it can post
straight into an Alertmanager, or to any receiver that reads that shape.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Max, Q
from django.urls import reverse
from django.utils import timezone

from ippam.models import Alert, AlertDelivery, Finding

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 10.0
DELIVER_TASK = "ippam.tasks.deliver_alert_notification"
FLUSH_TASK = "ippam.tasks.notify_flush"
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


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def group_by() -> list[str]:
    return list(getattr(settings, "IPPAM_ALERT_GROUP_BY", ["cluster", "pool"]))


def group_key(labels: dict[str, Any]) -> str:
    """The group a notification is sent in: the values of the IPPAM_ALERT_GROUP_BY labels."""
    return "|".join(f"{name}={labels.get(name, '')}" for name in group_by())[:300]


def fingerprint(delivery: AlertDelivery) -> str:
    """The same for every send of one alert change: a receiver's idempotency key."""
    labels = delivery.payload.get("labels", {})
    text = (
        f"{labels.get('cluster', '')}|{labels.get('identity', '')}|"
        f"{delivery.transition}|{delivery.occurrence}"
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def alert_url(alert: Alert) -> str:
    base = str(getattr(settings, "IPPAM_BASE_URL", "http://127.0.0.1:8000")).rstrip("/")
    return f"{base}{reverse('alert_list')}?alert={alert.pk}"


def alertmanager_alert(alert: Alert, *, pool_label: str = "") -> dict[str, Any]:
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
    elif pool_label:
        labels["pool"] = pool_label
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
    pools = _finding_pools([alert.finding_id for alert, _ in changes if alert.finding_id])
    payloads = [
        alertmanager_alert(alert, pool_label=pools.get(alert.finding_id or 0, ""))
        for alert, _ in changes
    ]
    rows = [
        AlertDelivery(
            alert=alert,
            transition=transition,
            occurrence=alert.times_opened,
            channel=channel,
            group_key=group_key(payload["labels"]),
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
            payload=payload,
        )
        for (alert, transition), payload in zip(changes, payloads, strict=True)
        for channel in wanted
    ]
    started = timezone.now()
    AlertDelivery.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
    # The rows just written (a conflict wrote nothing: that change is queued already).
    pending = AlertDelivery.objects.filter(
        alert_id__in=[alert.pk for alert, _ in changes],
        status=AlertDelivery.Status.PENDING,
        created_at__gte=started,
    ).count()
    if pending:
        # One flush for the whole batch, after group_wait: the groups are sent together. By
        # name: ippam.tasks imports this module, and modules here do not import in a cycle.
        wait = _setting("IPPAM_ALERT_GROUP_WAIT_SECONDS", 30)
        transaction.on_commit(partial(current_app.send_task, FLUSH_TASK, countdown=wait))
    return pending


def _finding_pools(finding_ids: list[int]) -> dict[int, str]:
    """namespace/name of each finding's pool (a leaked address's alert has no pool of its own),
    one query for the batch."""
    rows = Finding.objects.filter(pk__in=finding_ids, pool__isnull=False).values_list(
        "pk", "pool__namespace", "pool__name"
    )
    return {pk: f"{namespace}/{name}" for pk, namespace, name in rows}


def _claimable(now: dt.datetime) -> Q:
    """Rows a sender may take: unsent, failed, or claimed by a sender that is gone (a claim
    older than its timeout: the worker was killed mid-send; the receiver dedupes)."""
    stale = now - dt.timedelta(seconds=_setting("IPPAM_ALERT_CLAIM_TIMEOUT_SECONDS", 120))
    return Q(status__in=[AlertDelivery.Status.PENDING, AlertDelivery.Status.FAILED]) | Q(
        status=AlertDelivery.Status.SENDING, claimed_at__lt=stale
    )


def delivery_claim(delivery_id: int, *, now: dt.datetime | None = None) -> bool:
    """Take the row for sending, atomically: True for exactly one caller while it is unsent."""
    now = now or timezone.now()
    return bool(
        AlertDelivery.objects.filter(_claimable(now), pk=delivery_id).update(
            status=AlertDelivery.Status.SENDING,
            attempts=F("attempts") + 1,
            claimed_at=now,
        )
    )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would follow a 3xx, turning the POST into a GET, perhaps to another host: refuse,
    so the 3xx reaches the caller as an HTTPError."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _send_webhook(deliveries: Sequence[AlertDelivery]) -> None:
    alerts = [{**d.payload, "fingerprint": fingerprint(d)} for d in deliveries]
    body = json.dumps(alerts).encode()
    key = hashlib.sha256("".join(sorted(a["fingerprint"] for a in alerts)).encode()).hexdigest()
    request = urllib.request.Request(
        _webhook_url(),
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "ippam",
            "Idempotency-Key": key[:32],
        },
    )
    try:
        with _OPENER.open(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            raise DeliveryError(
                f"the webhook {_webhook_url()} answered HTTP {exc.code}, a redirect to "
                f"{exc.headers.get('Location', '(no Location)')}; redirects are not followed: "
                "set IPPAM_ALERT_WEBHOOK_URL to the address that answers"
            ) from exc
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


def _email_part(delivery: AlertDelivery) -> list[str]:
    payload = delivery.payload
    labels, notes = payload.get("labels", {}), payload.get("annotations", {})
    return [
        f"{notes.get('description', '')}",
        "",
        f"State change: {delivery.transition}",
        f"Cluster: {labels.get('cluster', '')}",
        f"Severity: {labels.get('severity', '')}",
        f"Started: {payload.get('startsAt', '')}",
        *([f"Ended: {payload['endsAt']}"] if "endsAt" in payload else []),
        f"Details: {payload.get('generatorURL', '')}",
    ]


def _send_email(deliveries: Sequence[AlertDelivery]) -> None:
    """One message for the group: a digest when it holds several changes."""
    first = deliveries[0]
    if len(deliveries) == 1:
        notes = first.payload.get("annotations", {})
        subject = f"[ippam] {first.transition}: {notes.get('summary', '')}"
        body = "\n".join(_email_part(first))
    else:
        group = first.group_key.replace("|", ", ") or "all alerts"
        subject = f"[ippam] {len(deliveries)} alert changes ({group})"
        body = "\n\n---\n\n".join("\n".join(_email_part(d)) for d in deliveries)
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
    """Send one delivery alone if it is still unsent (tasks queued before grouping): "sent", "suppressed", "skipped" (sent or taken
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
            _send_webhook([delivery])
        else:
            _send_email([delivery])
    except DeliveryError as exc:
        AlertDelivery.objects.filter(pk=delivery_id).update(
            status=AlertDelivery.Status.FAILED, error=str(exc)
        )
        raise
    AlertDelivery.objects.filter(pk=delivery_id).update(
        status=AlertDelivery.Status.SENT, sent_at=timezone.now(), error=""
    )
    return "sent"


@dataclass
class Flushed:
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    posts: int = 0
    held: int = 0  # rows of groups inside their group_interval, sent by a later flush
    errors: list[str] = field(default_factory=list)


def deliveries_flush(*, now: dt.datetime | None = None) -> Flushed:
    """Send every due delivery, one POST (or e-mail) per group and chunk of up to
    IPPAM_ALERT_GROUP_MAX_ALERTS. A failed group is recorded and retried by a later flush."""
    now = now or timezone.now()
    wait = dt.timedelta(seconds=_setting("IPPAM_ALERT_GROUP_WAIT_SECONDS", 30))
    interval = dt.timedelta(seconds=_setting("IPPAM_ALERT_GROUP_INTERVAL_SECONDS", 300))
    largest = max(1, int(_setting("IPPAM_ALERT_GROUP_MAX_ALERTS", 1000)))
    due = _claimable(now) & ~Q(status=AlertDelivery.Status.PENDING, created_at__gt=now - wait)
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for pk, channel, key in (
        AlertDelivery.objects.filter(due).order_by("id").values_list("pk", "channel", "group_key")
    ):
        groups[(channel, key)].append(pk)
    result = Flushed()
    recent = {
        (channel, key)
        for channel, key, _ in AlertDelivery.objects.filter(
            status=AlertDelivery.Status.SENT,
            group_key__in={key for _, key in groups},
            sent_at__gt=now - interval,
        )
        .values_list("channel", "group_key")
        .annotate(last=Max("sent_at"))
    }
    for (channel, key), ids in groups.items():
        if (channel, key) in recent and not _retrying(ids):
            result.held += len(ids)  # Alertmanager's group_interval: sent again later
            continue
        claimed = _group_claim(ids, now)
        for start in range(0, len(claimed), largest):
            _group_send(channel, claimed[start : start + largest], now, result)
    return result


def _retrying(ids: list[int]) -> bool:
    """A group whose rows were all tried before (failed, or a stale claim) is not held: it is
    a retry of what the receiver has not had, not a new notification."""
    return not AlertDelivery.objects.filter(pk__in=ids, attempts=0).exists()


def _group_claim(ids: list[int], now: dt.datetime) -> list[int]:
    """Claim a whole group at once: a second flusher then gets all of it or none, never
    every other chunk (which would split the group into more, smaller POSTs)."""
    with transaction.atomic():
        # The row lock makes the claim one sender's: a second flusher skips these rows, and
        # the WHERE is re-checked under the lock for rows another sender claimed meanwhile.
        claimed = list(
            AlertDelivery.objects.select_for_update(skip_locked=True)
            .filter(_claimable(now), pk__in=ids)
            .order_by("id")
            .values_list("pk", flat=True)
        )
        AlertDelivery.objects.filter(pk__in=claimed).update(
            status=AlertDelivery.Status.SENDING, attempts=F("attempts") + 1, claimed_at=now
        )
    return claimed


def _group_send(channel: str, claimed: list[int], now: dt.datetime, result: Flushed) -> None:
    # The claim is renewed as each chunk goes out: a big group's last chunks must not look
    # abandoned (older than the claim timeout) while the first ones are being sent.
    AlertDelivery.objects.filter(pk__in=claimed, status=AlertDelivery.Status.SENDING).update(
        claimed_at=timezone.now()
    )
    rows = list(AlertDelivery.objects.filter(pk__in=claimed).select_related("alert").order_by("id"))
    snoozed = [d for d in rows if alert_is_snoozed(d.alert, now)]
    for d in snoozed:
        AlertDelivery.objects.filter(pk=d.pk).update(
            status=AlertDelivery.Status.SUPPRESSED,
            error=f"snoozed until {d.alert.snoozed_until:%Y-%m-%d %H:%M %Z}",
        )
    result.suppressed += len(snoozed)
    rows = [d for d in rows if not alert_is_snoozed(d.alert, now)]
    if not rows:
        return
    ids = [d.pk for d in rows]
    try:
        if channel == AlertDelivery.Channel.WEBHOOK:
            _send_webhook(rows)
        else:
            _send_email(rows)
    except DeliveryError as exc:
        AlertDelivery.objects.filter(pk__in=ids).update(
            status=AlertDelivery.Status.FAILED, error=str(exc)
        )
        result.failed += len(ids)
        result.errors.append(str(exc))
        logger.warning("notification of %d alert changes failed: %s", len(ids), exc)
        return
    AlertDelivery.objects.filter(pk__in=ids).update(
        status=AlertDelivery.Status.SENT, sent_at=timezone.now(), error=""
    )
    result.sent += len(ids)
    result.posts += 1


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
