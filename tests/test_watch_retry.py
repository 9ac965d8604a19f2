"""The watcher never gives up silently (issue 21, item 3): a batch the database refuses (it
went away) is kept and retried with backoff until it lands, the cluster's later batches wait
behind it, and the wait shows on the sync bar and in /metrics."""

from __future__ import annotations

import socket
import threading

import pytest
from django.db import connection, connections
from django.utils import timezone

from ippam.kube.resources import RESOURCES
from ippam.metrics import metrics_text
from ippam.models import Cluster, WatcherLease
from ippam.selectors.clusters import cluster_health_list
from ippam.sync import cluster_sync_full
from ippam.watch import Watcher
from tests.factories import make_cluster
from tests.test_faults_suite import change_everything, differences
from tests.test_watch import eventually


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def watching(simcluster, transactional_db):
    """simcluster's demo, synced, and the Watcher following it."""
    simcluster.load("demo")
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig)
    cluster_sync_full(cluster=cluster)
    watcher = Watcher(batch_seconds=0.1)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    simcluster.wait_for_watches(len(RESOURCES))
    yield cluster, watcher
    watcher.stop()
    thread.join(10)


def test_a_batch_the_database_refuses_is_retried_until_it_lands(
    postgres_required, simcluster, watching
):
    cluster, watcher = watching
    # Every thread's connection shares this settings dict: new connections go nowhere, and
    # the watcher's open ones are ended, as when PostgreSQL goes down.
    shared = connections["default"].settings_dict
    port = shared["PORT"]
    shared["PORT"] = str(closed_port())
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        change_everything(simcluster)  # made while the database is away
        eventually(lambda: cluster.pk in watcher.retrying, timeout=15)
        state = watcher.retrying[cluster.pk]
        assert state.error and state.attempts >= 1
    finally:
        shared["PORT"] = port
    # Back: the waiting batches land, in order, and the database equals the cluster.
    eventually(lambda: differences(simcluster, cluster) == [], timeout=30)
    eventually(lambda: cluster.pk not in watcher.retrying, timeout=10)
    eventually(
        lambda: not WatcherLease.objects.filter(retrying_since__isnull=False).exists(),
        timeout=10,
    )


@pytest.mark.django_db
def test_the_wait_shows_on_the_sync_bar_and_in_metrics(viewer_client):
    cluster = make_cluster("slow")
    make_cluster("fine")
    since = timezone.now()
    WatcherLease.objects.create(
        cluster=cluster,
        holder="watcher-1",
        retrying_since=since,
        retrying_events=12,
        retrying_error="connection refused",
    )
    health = {h.cluster.name: h for h in cluster_health_list()}
    assert "retrying 12 events" in health["slow"].message
    assert "connection refused" in health["slow"].message
    assert "retrying" not in health["fine"].message
    page = viewer_client.get("/")
    assert "retrying 12 events" in page.content.decode()
    text = metrics_text().decode()
    assert 'ippam_watch_retrying_events{cluster="slow"} 12.0' in text
    assert 'ippam_watch_retrying_events{cluster="fine"} 0.0' in text
    (line,) = [
        x
        for x in text.splitlines()
        if x.startswith('ippam_watch_retrying_since_seconds{cluster="slow"}')
    ]
    assert float(line.split()[-1]) == pytest.approx(since.timestamp())
