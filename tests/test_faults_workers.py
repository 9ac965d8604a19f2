"""The fault suite over a real Celery worker and a real Redis (issue 21): a worker killed
mid-send, a burst of leaked addresses while a sync is asked for, Redis restarted under the
worker. After each, nothing lost and nothing stuck."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from ippam.leaks.alerts import alerts_refresh
from ippam.models import AlertDelivery, Cluster, SyncRun
from tests.test_notify_groups import leaked
from tests.test_watch import eventually

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


class Receiver:
    """A real webhook receiver. `hold` makes the first POST hang after its body was read (a
    worker killed then has sent it, but never heard the answer); `delay` slows every answer."""

    def __init__(self, *, hold: bool = False, delay: float = 0.0) -> None:
        self.posts: list[list[dict]] = []
        self.first = threading.Event()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.posts.append(body)
                if hold and not receiver.first.is_set():
                    receiver.first.set()
                    receiver.release.wait(30)
                time.sleep(delay)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def database_url() -> str:
    db = connection.settings_dict
    return (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )


def start_worker(redis_url: str, queues: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "dashboard", "worker", "--pool", "threads"]
        + ["-c", "2", "-Q", queues, "--loglevel", "WARNING", "--without-heartbeat"]
        + ["--without-gossip", "--without-mingle"],
        cwd=ROOT,
        env={
            **os.environ,
            "REDIS_URL": redis_url,
            "DEBUG": "true",
            "DATABASE_URL": database_url(),
            "PYTHONPATH": str(ROOT),
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=open(os.environ.get("IPPAM_TEST_WORKER_LOG", os.devnull), "a"),  # noqa: SIM115
    )


def stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def purge(app, *queues: str) -> None:
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for name in queues:
            channel.queue_purge(name)


@pytest.fixture
def receiver():
    r = Receiver(hold=True)
    yield r
    r.close()


def test_a_delivery_left_sending_by_a_killed_worker_is_sent_when_it_is_back(
    postgres_required, redis_url, celery_conf, receiver
):
    from dashboard.celery import app

    env = {
        "IPPAM_ALERT_WEBHOOK_URL": receiver.url,
        "IPPAM_ALERT_GROUP_WAIT_SECONDS": "0",
        "IPPAM_ALERT_CLAIM_TIMEOUT_SECONDS": "3",
    }
    queue = f"notify-killed-{os.getpid()}"
    celery_conf(broker_url=redis_url, result_backend=redis_url)
    cluster = Cluster.objects.create(name="killed", kubeconfig="/nonexistent")
    from tests.factories import make_pool

    ips = leaked(make_pool(cluster, "10.0.0.0/16", name="p"), 3)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("django.conf.settings.IPPAM_ALERT_WEBHOOK_URL", receiver.url, raising=False)
        alerts_refresh(cluster=cluster)
    worker = start_worker(redis_url, queue, **env)
    try:
        app.send_task("ippam.tasks.notify_flush", queue=queue)
        assert receiver.first.wait(60), "the worker never sent"
        os.kill(worker.pid, signal.SIGKILL)  # mid-send: the POST went out, no answer yet
        worker.wait(10)
    finally:
        stop(worker)
    assert set(AlertDelivery.objects.values_list("status", flat=True)) == {"sending"}

    worker = start_worker(redis_url, queue, **env)
    try:
        receiver.release.set()
        time.sleep(3.5)  # the claim's timeout
        result = app.send_task("ippam.tasks.notify_flush", queue=queue).get(timeout=60)
    finally:
        stop(worker)
    assert result["sent"] == 3, result
    assert set(AlertDelivery.objects.values_list("status", flat=True)) == {"sent"}
    # At least once: the receiver had it twice, with the same fingerprints to dedupe on.
    first, again = receiver.posts
    assert sorted(a["fingerprint"] for a in first) == sorted(a["fingerprint"] for a in again)
    named = {a["annotations"]["description"].split()[2] for a in again}
    assert named == set(ips)


def test_a_sync_asked_for_during_a_burst_starts_within_30s(
    postgres_required, redis_url, celery_conf, simcluster, client, make_user
):
    """3,000 leaked addresses reach the webhook in at most 100 POSTs, each named once, while
    the notify queue also holds a backlog of 2,000 tasks; a sync asked for through the API
    meanwhile starts within 30 s (its own queue)."""
    from rest_framework.authtoken.models import Token

    from dashboard.celery import app
    from tests.factories import make_pool

    slow = Receiver(delay=0.2)
    celery_conf(broker_url=redis_url, result_backend=redis_url)
    purge(app, "sync", "notify")
    simcluster.load("demo")
    # The burst comes from one cluster and the sync is asked for another: a sync of the
    # burst's own cluster would resolve its alerts (its pools are not in the simulated one),
    # and the resolutions are a second, legitimate wave of notifications.
    cluster = Cluster.objects.create(name="burst", kubeconfig="/nonexistent")
    synced = Cluster.objects.create(name="demo", kubeconfig=simcluster.kubeconfig)
    pools = [make_pool(cluster, f"10.{n}.0.0/16", name=f"burst-{n}") for n in range(3)]
    ips = [ip for n, pool in enumerate(pools) for ip in leaked(pool, 1000, first=n * 65536)]
    env = {
        "IPPAM_ALERT_WEBHOOK_URL": slow.url,
        "IPPAM_ALERT_GROUP_WAIT_SECONDS": "0",
        "IPPAM_ALERT_GROUP_MAX_ALERTS": "40",
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("django.conf.settings.IPPAM_ALERT_WEBHOOK_URL", slow.url, raising=False)
        alerts_refresh(cluster=cluster)
    assert AlertDelivery.objects.count() == 3000
    # The backlog: tasks in front of anything else on the notify queue.
    for _ in range(2000):
        app.send_task("ippam.tasks.ping", args=["backlog"], queue="notify")
    app.send_task("ippam.tasks.notify_flush", queue="notify")
    token = Token.objects.create(user=make_user("op", "operator")).key
    worker = start_worker(redis_url, "sync,notify", **env)
    try:
        eventually(lambda: len(slow.posts) >= 1, timeout=60)  # the burst is being sent
        asked = time.monotonic()
        since = timezone.now()
        response = client.post(
            f"/api/v1/clusters/{synced.pk}/sync/", HTTP_AUTHORIZATION=f"Token {token}"
        )
        assert response.status_code == 202, response.content
        eventually(
            lambda: SyncRun.objects.filter(cluster=synced, started_at__gte=since).exists(),
            timeout=30,
        )
        started_after = time.monotonic() - asked
        eventually(lambda: not AlertDelivery.objects.exclude(status="sent").exists(), timeout=120)
    finally:
        stop(worker)
        slow.close()
        purge(app, "sync", "notify")
    print(f"sync started {started_after:.1f}s after it was asked for; {len(slow.posts)} POSTs")
    assert started_after <= 30
    # The synced cluster's own findings are notified too, in groups of their own.
    burst = [p for p in slow.posts if all(a["labels"]["cluster"] == "burst" for a in p)]
    assert len(burst) <= 100
    named = [a["annotations"]["description"].split()[2] for post in burst for a in post]
    assert sorted(named) == sorted(ips)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_a_redis_restart_loses_no_notification(postgres_required, celery_conf, tmp_path):
    """A private Redis (the broker) restarted with the flush queued: the worker reconnects,
    and beat's next flush (sent here by hand) sends every change once."""
    from celery import Celery

    from tests.factories import make_pool

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"

    def redis_start() -> subprocess.Popen:
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"]
            + ["--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL,
        )
        eventually(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, timeout=10)
        return proc

    server = Receiver()
    redis = redis_start()
    celery_conf(broker_url=url, result_backend=url)  # the flush alerts_refresh queues
    # The test's own sends go through an app of their own: the process-wide one keeps pools
    # and result consumers from earlier tests' brokers.
    app = Celery("fault-suite", broker=url, backend=url, set_as_current=False)
    app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
    env = {"IPPAM_ALERT_WEBHOOK_URL": server.url, "IPPAM_ALERT_GROUP_WAIT_SECONDS": "0"}
    cluster = Cluster.objects.create(name="redis", kubeconfig="/nonexistent")
    ips = leaked(make_pool(cluster, "10.0.0.0/16", name="p"), 50)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("django.conf.settings.IPPAM_ALERT_WEBHOOK_URL", server.url, raising=False)
        alerts_refresh(cluster=cluster)
    worker = start_worker(url, "notify", **env)
    try:
        assert app.send_task("ippam.tasks.ping", args=["up"], queue="notify").get(timeout=60)
        redis.terminate()
        redis.wait(10)
        redis = redis_start()  # empty: whatever the old one queued is gone

        def flushed() -> bool:
            """All sent; else queue another flush, as beat does every 30 s. A worker that
            exited (kombu's Redis transport may, when Redis refuses its reconnect) is started
            again, as compose's `restart: unless-stopped` and the Deployment do."""
            nonlocal worker
            if not AlertDelivery.objects.exclude(status="sent").exists():
                return True
            if worker.poll() is not None:
                worker = start_worker(url, "notify", **env)
            app.send_task("ippam.tasks.notify_flush", queue="notify", retry=True)
            time.sleep(2)
            return False

        eventually(flushed, timeout=90)
    finally:
        stop(worker)
        app.close()
        redis.terminate()
        redis.wait(10)
        server.close()
    named = [a["annotations"]["description"].split()[2] for post in server.posts for a in post]
    assert sorted(named) == sorted(ips)
