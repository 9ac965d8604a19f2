"""Alert notifications: Alertmanager-compatible webhook, e-mail, once per state change."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from ippam.leaks.alerts import alerts_refresh
from ippam.models import Alert, AlertDelivery
from ippam.notify import alert_snooze, delivery_send
from ippam.tasks import deliver_alert_notification
from tests.factories import make_cluster, make_pool

ROOT = Path(__file__).resolve().parent.parent


class Receiver:
    """A real HTTP server on a free port that records what is POSTed to it."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[object] = []
        self.status = status
        self.got = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append(json.loads(body))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"receiver says no" if receiver.status >= 400 else b"{}")
                receiver.got.set()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/v2/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def full_pool(db):
    cluster = make_cluster("alerting")
    make_pool(cluster, "10.9.1.0/28", allocated=14, usable=14)  # a second alert, left as it is
    return make_pool(cluster, "10.9.0.0/28", allocated=14, usable=14)  # exhausted


def _refresh(pool, django_capture_on_commit_callbacks, *, allocated=None):
    if allocated is not None:
        pool.allocated, pool.utilization = allocated, allocated / float(pool.usable)
        pool.save()
    with django_capture_on_commit_callbacks(execute=False) as queued:
        alerts_refresh(cluster=pool.cluster)
    return queued


def test_each_state_change_gets_one_row_per_channel_queued_after_commit(
    full_pool, settings, django_capture_on_commit_callbacks
):
    settings.IPPAM_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/"
    settings.IPPAM_ALERT_EMAILS = ["ops@example.org"]
    queued = _refresh(full_pool, django_capture_on_commit_callbacks)
    # two exhausted pools (exhausted supersedes above threshold): 2 alerts x 2 channels,
    # sent by one grouped flush
    assert len(queued) == 1
    assert AlertDelivery.objects.count() == 4
    assert set(AlertDelivery.objects.values_list("transition", "channel", "status")) == {
        ("opened", "webhook", "pending"),
        ("opened", "email", "pending"),
    }
    assert _refresh(full_pool, django_capture_on_commit_callbacks) == []  # no change: nothing
    _refresh(full_pool, django_capture_on_commit_callbacks, allocated=1)
    _refresh(full_pool, django_capture_on_commit_callbacks, allocated=14)
    counts = {
        t: AlertDelivery.objects.filter(transition=t).count() for t in AlertDelivery.Transition
    }
    assert counts == {"opened": 4, "resolved": 2, "reopened": 2}  # only full_pool changed


def test_no_channel_configured_writes_nothing(full_pool, django_capture_on_commit_callbacks):
    assert _refresh(full_pool, django_capture_on_commit_callbacks) == []
    assert not AlertDelivery.objects.exists()


def test_webhook_is_alertmanager_compatible_and_resolved_sets_ends_at(
    full_pool, settings, receiver, django_capture_on_commit_callbacks
):
    settings.IPPAM_ALERT_WEBHOOK_URL = receiver.url
    settings.IPPAM_BASE_URL = "https://ippam.example.org"
    _refresh(full_pool, django_capture_on_commit_callbacks)
    _refresh(full_pool, django_capture_on_commit_callbacks, allocated=0)
    for pk in AlertDelivery.objects.order_by("pk").values_list("pk", flat=True):
        assert deliver_alert_notification(pk)["outcome"] == "sent"
    assert all(isinstance(body, list) and len(body) == 1 for body in receiver.bodies)
    alerts = [body[0] for body in receiver.bodies]
    opened, resolved = alerts[0], alerts[-1]
    assert set(opened) == {"labels", "annotations", "startsAt", "generatorURL", "fingerprint"}
    assert {"alertname", "cluster", "kind", "severity"} <= set(opened["labels"])
    assert opened["labels"]["cluster"] == "alerting"
    assert set(opened["annotations"]) == {"summary", "description"}
    alert = Alert.objects.get(identity=resolved["labels"]["identity"])
    assert resolved["endsAt"] == alert.resolved_at.astimezone(dt.UTC).isoformat().replace(
        "+00:00", "Z"
    )
    assert resolved["generatorURL"] == f"https://ippam.example.org/alerts/?alert={alert.pk}"


def test_email_goes_through_djangos_mail_settings_once(
    full_pool, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.IPPAM_ALERT_EMAILS = ["ops@example.org", "noc@example.org"]
    _refresh(full_pool, django_capture_on_commit_callbacks)
    delivery = AlertDelivery.objects.get(alert__pool=full_pool)
    assert deliver_alert_notification(delivery.pk)["outcome"] == "sent"
    assert deliver_alert_notification(delivery.pk)["outcome"] == "skipped"  # never twice
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@example.org", "noc@example.org"]
    assert message.subject.startswith("[ippam] opened:") and "exhausted" in message.body
    delivery.refresh_from_db()
    assert delivery.status == "sent" and delivery.attempts == 1 and delivery.sent_at


def test_a_failed_send_is_recorded_and_a_retry_sends_only_it(
    full_pool, settings, django_capture_on_commit_callbacks
):
    bad = Receiver(status=503)
    try:
        settings.IPPAM_ALERT_WEBHOOK_URL = bad.url
        _refresh(full_pool, django_capture_on_commit_callbacks)
        first, second = AlertDelivery.objects.order_by("pk")
        assert deliver_alert_notification(first.pk)["outcome"] == "failed"
        first.refresh_from_db()
        assert first.status == "failed" and first.attempts == 1
        assert "HTTP 503" in first.error and "receiver says no" in first.error
        bad.status = 200
        assert [deliver_alert_notification(d.pk)["outcome"] for d in (first, second)] == [
            "sent",
            "sent",
        ]
        assert deliver_alert_notification(first.pk)["outcome"] == "skipped"
        first.refresh_from_db()
        assert first.status == "sent" and first.attempts == 2 and first.error == ""
        assert len(bad.bodies) == 3  # the refused one, then each once
    finally:
        bad.close()


def test_snooze_suppresses_notifications(full_pool, settings, django_capture_on_commit_callbacks):
    settings.IPPAM_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/"
    _refresh(full_pool, django_capture_on_commit_callbacks)
    later = timezone.now() + dt.timedelta(hours=4)
    for alert in Alert.objects.all():
        alert_snooze(alert=alert, until=later)
    # queued before the snooze: the worker finds it snoozed and sends nothing
    pending = AlertDelivery.objects.first()
    assert delivery_send(delivery_id=pending.pk) == "suppressed"
    queued = _refresh(full_pool, django_capture_on_commit_callbacks, allocated=0)  # resolved
    assert queued == []
    resolved = AlertDelivery.objects.filter(transition="resolved")
    assert resolved.count() == 1 and {d.status for d in resolved} == {"suppressed"}
    assert "snoozed until" in resolved[0].error


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_webhook_delivery_by_a_real_worker_never_twice(
    postgres_required, redis_url, celery_conf, settings, receiver
):
    """A worker process (Redis broker, the test database, three threads) posts to a local
    receiver; the same delivery sent three times at once reaches it once."""
    settings.IPPAM_ALERT_WEBHOOK_URL = receiver.url
    pool = make_pool(make_cluster("worker"), "10.8.0.0/28", allocated=14, usable=14)
    alerts_refresh(cluster=pool.cluster)  # on_commit enqueues to the default queue: unused here
    delivery = AlertDelivery.objects.filter(alert__kind=Alert.Kind.POOL_EXHAUSTED).get()
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )
    env = dict(
        os.environ,
        REDIS_URL=redis_url,
        DEBUG="true",
        DATABASE_URL=database_url,
        IPPAM_ALERT_WEBHOOK_URL=receiver.url,
    )
    queue = f"notify-{os.getpid()}"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "dashboard",
            "worker",
            "--pool",
            "threads",
            "-c",
            "3",
        ]
        + ["-Q", queue, "--loglevel", "WARNING"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        from dashboard.celery import app

        celery_conf(broker_url=redis_url, result_backend=redis_url)
        results = [
            app.send_task("ippam.tasks.deliver_alert_notification", args=[delivery.pk], queue=queue)
            for _ in range(3)
        ]
        outcomes = sorted(r.get(timeout=60)["outcome"] for r in results)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert outcomes == ["sent", "skipped", "skipped"]
    assert len(receiver.bodies) == 1
    assert receiver.bodies[0][0]["labels"]["kind"] == "pool_exhausted"
    delivery.refresh_from_db()
    assert delivery.status == "sent" and delivery.attempts == 1


# --- the pages -------------------------------------------------------------------------------


def test_snooze_assign_and_the_mine_filter(operator_client, full_pool, make_user):
    from tests.html import select

    alerts_refresh(cluster=full_pool.cluster)
    mine, other = Alert.objects.order_by("pk")
    me = make_user("operator2", "operator")
    operator = type(me).objects.get(username="operator1")
    response = operator_client.post(
        f"/alerts/{mine.pk}/assign/", {"assignee": operator.pk, "next": "/alerts/"}
    )
    assert response.status_code == 302
    operator_client.post(f"/alerts/{other.pk}/assign/", {"assignee": me.pk})
    operator_client.post(f"/alerts/{mine.pk}/snooze/", {"until": "2099-01-01T08:00"})
    mine.refresh_from_db()
    assert mine.assignee == operator and mine.is_snoozed

    html = operator_client.get("/alerts/?mine=1").content.decode()
    rows = select(html, "#alerts tbody tr")
    assert [r.get("id") for r in rows] == [f"alert-{mine.pk}"]
    assert "snoozed until" in html and "2099-01-01 08:00" in html
    one = operator_client.get(f"/alerts/?alert={other.pk}").content.decode()
    assert [r.get("id") for r in select(one, "#alerts tbody tr")] == [f"alert-{other.pk}"]

    operator_client.post(f"/alerts/{mine.pk}/snooze/", {"until": ""})  # wake it
    mine.refresh_from_db()
    assert mine.snoozed_until is None


def test_viewers_cannot_snooze_or_see_deliveries(viewer_client, full_pool):
    alerts_refresh(cluster=full_pool.cluster)
    alert = Alert.objects.first()
    assert viewer_client.post(f"/alerts/{alert.pk}/snooze/", {"until": ""}).status_code == 403
    assert viewer_client.get("/alerts/notifications/").status_code == 403


def test_deliveries_page_shows_each_outcome(
    operator_client, full_pool, settings, django_assert_max_num_queries
):
    from tests.html import select

    settings.IPPAM_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/"  # nothing listens on port 9
    alerts_refresh(cluster=full_pool.cluster)
    first = AlertDelivery.objects.order_by("pk").first()
    deliver_alert_notification(first.pk)
    with django_assert_max_num_queries(8):
        html = operator_client.get("/alerts/notifications/").content.decode()
    statuses = {r.get("data-status") for r in select(html, "#deliveries tbody tr")}
    assert statuses == {"failed", "pending"}
    assert "did not answer" in html and "IPPAM_ALERT_WEBHOOK_URL" in html
