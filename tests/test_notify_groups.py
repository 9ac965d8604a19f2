"""Grouped, at-least-once notifications (issue 21, items 1, 2 and 8): a burst of leaked
addresses reaches a real local webhook receiver in a handful of POSTs, every address named
once; a claim left by a killed worker is sent again; a redirect is a failure said plainly."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.utils import timezone

from ippam.leaks.alerts import alerts_refresh
from ippam.models import AlertDelivery, Finding
from ippam.notify import deliveries_flush
from tests.factories import make_cluster, make_pool

pytestmark = pytest.mark.django_db


class Receiver:
    """A real HTTP server on a free port: records each POST (body and headers), or answers
    every request with `redirect_to` as a 302."""

    def __init__(self, redirect_to: str = "") -> None:
        self.posts: list[list[dict]] = []
        self.keys: list[str] = []
        self.gets = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if redirect_to:
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                    self.end_headers()
                    return
                receiver.posts.append(json.loads(body))
                receiver.keys.append(self.headers.get("Idempotency-Key", ""))
                self.send_response(200)
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802
                receiver.gets += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def grouping(settings, receiver):
    settings.IPPAM_ALERT_WEBHOOK_URL = receiver.url
    settings.IPPAM_ALERT_GROUP_WAIT_SECONDS = 0
    settings.IPPAM_ALERT_GROUP_INTERVAL_SECONDS = 300
    return settings


def leaked(pool, count: int, *, first: int = 0) -> list[str]:
    """`count` leaked-address findings in `pool` (orphaned allocations); their addresses."""
    now = timezone.now()
    ips = [
        f"10.{(first + i) // 65536 % 256}.{(first + i) // 256 % 256}.{(first + i) % 256}"
        for i in range(count)
    ]
    Finding.objects.bulk_create(
        Finding(
            cluster=pool.cluster,
            kind=Finding.Kind.ORPHANED_ALLOCATION,
            identity=f"orphaned_allocation:{pool.name}:{ip}",
            state=Finding.State.LEAKED,
            ip=ip,
            pool=pool,
            podref=f"default/gone-{ip}",
            reason=f"allocation of {ip} names pod default/gone-{ip}, which does not exist",
            first_seen=now,
            last_seen=now,
        )
        for ip in ips
    )
    return ips


def named(receiver: Receiver) -> list[str]:
    return [
        alert["annotations"]["description"].split()[2] for post in receiver.posts for alert in post
    ]


def test_3000_leaked_addresses_reach_the_webhook_in_at_most_100_posts(grouping, receiver):
    cluster = make_cluster("burst")
    pools = [make_pool(cluster, f"10.{n}.0.0/16", name=f"pool-{n}") for n in range(3)]
    ips = [ip for n, pool in enumerate(pools) for ip in leaked(pool, 1000, first=n * 65536)]
    alerts_refresh(cluster=cluster)
    assert AlertDelivery.objects.count() == 3000

    result = deliveries_flush()

    assert result.sent == 3000 and result.failed == 0
    assert 1 <= len(receiver.posts) <= 100
    # Every address named, none twice.
    assert sorted(named(receiver)) == sorted(ips)
    # One group a POST: all of a post's alerts share cluster and pool.
    for post in receiver.posts:
        assert len({(a["labels"]["cluster"], a["labels"]["pool"]) for a in post}) == 1
    fingerprints = [a["fingerprint"] for post in receiver.posts for a in post]
    assert len(set(fingerprints)) == 3000
    assert all(receiver.keys)
    assert deliveries_flush().sent == 0  # nothing is sent twice
    assert len(receiver.posts) == len(pools)


def test_group_wait_and_group_interval_batch_later_changes(grouping, receiver):
    grouping.IPPAM_ALERT_GROUP_WAIT_SECONDS = 30
    cluster = make_cluster("batching")
    pool = make_pool(cluster, "10.0.0.0/16", name="p")
    leaked(pool, 5)
    alerts_refresh(cluster=cluster)
    assert deliveries_flush().sent == 0  # inside group_wait: held to gather the group
    later = timezone.now() + dt.timedelta(seconds=31)
    assert deliveries_flush(now=later).sent == 5 and len(receiver.posts) == 1

    leaked(pool, 3, first=100)
    alerts_refresh(cluster=cluster)
    flushed = deliveries_flush(now=timezone.now() + dt.timedelta(seconds=60))
    assert (flushed.sent, flushed.held) == (0, 3)  # inside group_interval of the first send
    flushed = deliveries_flush(now=timezone.now() + dt.timedelta(seconds=301))
    assert flushed.sent == 3 and len(receiver.posts) == 2


def test_the_group_key_is_configurable(grouping, receiver):
    grouping.IPPAM_ALERT_GROUP_BY = ["cluster"]
    cluster = make_cluster("bycluster")
    for n in range(3):
        leaked(make_pool(cluster, f"10.{n}.0.0/16", name=f"p{n}"), 4, first=n * 65536)
    alerts_refresh(cluster=cluster)
    assert deliveries_flush().sent == 12
    assert [len(post) for post in receiver.posts] == [12]


def test_a_claim_left_by_a_killed_worker_is_sent_again(grouping, receiver):
    cluster = make_cluster("killed")
    pool = make_pool(cluster, "10.0.0.0/16", name="p")
    leaked(pool, 2)
    alerts_refresh(cluster=cluster)
    # A worker claimed the rows and was killed before it recorded the send.
    AlertDelivery.objects.update(
        status=AlertDelivery.Status.SENDING, attempts=1, claimed_at=timezone.now()
    )
    assert deliveries_flush().sent == 0  # a fresh claim: its sender may still be at it
    grouping.IPPAM_ALERT_CLAIM_TIMEOUT_SECONDS = 60
    result = deliveries_flush(now=timezone.now() + dt.timedelta(seconds=61))
    assert result.sent == 2 and len(receiver.posts) == 1
    assert set(AlertDelivery.objects.values_list("status", "attempts")) == {("sent", 2)}


def test_a_webhook_redirect_is_a_failure_and_is_not_followed(settings, receiver):
    redirecting = Receiver(redirect_to=receiver.url)
    try:
        settings.IPPAM_ALERT_WEBHOOK_URL = redirecting.url
        settings.IPPAM_ALERT_GROUP_WAIT_SECONDS = 0
        cluster = make_cluster("redirect")
        leaked(make_pool(cluster, "10.0.0.0/16", name="p"), 1)
        alerts_refresh(cluster=cluster)
        result = deliveries_flush()
    finally:
        redirecting.close()
    assert (result.sent, result.failed) == (0, 1)
    assert receiver.posts == [] and receiver.gets == 0  # never followed, as POST or GET
    delivery = AlertDelivery.objects.get()
    assert delivery.status == "failed"
    assert "HTTP 302" in delivery.error and "redirects are not followed" in delivery.error


def test_email_is_a_digest_per_group(settings):
    settings.IPPAM_ALERT_EMAILS = ["ops@example.org"]
    settings.IPPAM_ALERT_GROUP_WAIT_SECONDS = 0
    cluster = make_cluster("mail")
    ips = leaked(make_pool(cluster, "10.0.0.0/16", name="p"), 7)
    alerts_refresh(cluster=cluster)
    assert deliveries_flush().sent == 7
    (message,) = mail.outbox
    assert "7 alert changes" in message.subject
    assert all(ip in message.body for ip in ips)
