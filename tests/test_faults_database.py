"""PostgreSQL going away under a full sync (issue 21, fault suite): the sync's connection is
ended by the server mid-write, as a restart ends it. Nothing half-written, nothing stuck: the
failure is recorded, and the next sync makes the database equal the cluster."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from ippam.models import Cluster, SyncRun
from ippam.sync import cluster_sync_full
from tests.test_faults_suite import change_everything, differences

pytestmark = pytest.mark.django_db(transaction=True)


def end_backend(pid: int) -> None:
    """End one server process from a connection of its own (what a restart does to all)."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_a_sync_whose_connection_dies_mid_write_is_recorded_and_repaired(
    postgres_required, simcluster
):
    simcluster.load("demo")
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig)
    cluster_sync_full(cluster=cluster)
    change_everything(simcluster)
    before = differences(simcluster, cluster)
    assert before

    def kill_when_writing(kind: str, phase: str, count: int) -> None:
        if phase == "writing":
            end_backend(connection.connection.info.backend_pid)

    with pytest.raises(Exception):  # noqa: B017,PT011 - whatever the driver raises
        cluster_sync_full(cluster=cluster, progress=kill_when_writing)

    connection.close()
    cluster.refresh_from_db()
    assert cluster.sync_state == Cluster.SyncState.FAILED  # not "syncing" forever
    run = SyncRun.objects.filter(cluster=cluster).order_by("-started_at").first()
    assert run.outcome == SyncRun.Outcome.FAILED and run.error
    assert differences(simcluster, cluster) == before  # nothing of it was written

    cluster_sync_full(cluster=cluster)
    assert differences(simcluster, cluster) == []
