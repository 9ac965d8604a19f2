"""Celery task bodies, called directly: lock, idempotence, unreachable clusters, fan-out."""

from __future__ import annotations

import socket
from unittest import mock

import pytest

from ippam import tasks
from ippam.locks import cluster_sync_lock
from ippam.models import Cluster, Pod, SyncRun
from simcluster.runtime import write_kubeconfig

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster(simcluster):
    simcluster.load("demo")
    return Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig)


def test_sync_cluster_syncs_and_a_second_delivery_is_harmless(simcluster, cluster):
    first = tasks.sync_cluster(cluster.pk)
    second = tasks.sync_cluster(cluster.pk)
    assert first["status"] == second["status"] == "ok"
    assert Pod.objects.filter(cluster=cluster).count() == len(simcluster.list("pods"))
    assert second["counts"]["written"]["pods"] == 0


def test_sync_cluster_skips_while_another_sync_holds_the_lock(cluster):
    with cluster_sync_lock(cluster) as held:
        assert held
        with cluster_sync_lock(cluster) as again:
            assert not again
        assert tasks.sync_cluster(cluster.pk) == {"status": "locked", "cluster": "sim"}
    assert not SyncRun.objects.filter(cluster=cluster).exists()
    assert tasks.sync_cluster(cluster.pk)["status"] == "ok"


def test_redis_lock_is_used_when_redis_is_configured(cluster, redis_url, settings):
    settings.REDIS_URL = redis_url
    with cluster_sync_lock(cluster) as held:
        assert held
        assert tasks.sync_cluster(cluster.pk)["status"] == "locked"
    assert tasks.sync_cluster(cluster.pk)["status"] == "ok"


def test_an_unreachable_cluster_is_marked_with_the_error(cluster, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cluster.kubeconfig = write_kubeconfig(str(tmp_path / "kc"), f"http://127.0.0.1:{port}")
    cluster.save()
    result = tasks.sync_cluster(cluster.pk)
    assert result["status"] == "failed"
    cluster.refresh_from_db()
    assert cluster.sync_state == Cluster.SyncState.UNREACHABLE
    assert "no answer" in cluster.sync_error


def test_a_worker_retries_api_errors_with_backoff(cluster):
    from ippam.kube.client import KubeError

    task = tasks.sync_cluster._get_current_object()
    task.push_request(called_directly=False, retries=1)
    try:
        with (
            mock.patch(
                "ippam.sync.cluster_sync_full",
                side_effect=KubeError("listing pods: boom (HTTP 500)", 500),
            ),
            mock.patch.object(task, "retry", side_effect=RuntimeError("retry")) as retry,
            pytest.raises(RuntimeError, match="retry"),
        ):
            task.run(cluster.pk)
    finally:
        task.pop_request()
    assert 16 <= retry.call_args.kwargs["countdown"] <= 24


def test_sync_of_a_removed_or_disabled_cluster_does_nothing(cluster):
    assert tasks.sync_cluster(999999)["status"] == "gone"
    cluster.enabled = False
    cluster.save()
    assert tasks.sync_cluster(cluster.pk)["status"] == "disabled"


def test_sync_all_clusters_enqueues_each_enabled_cluster_after_commit(
    cluster, django_capture_on_commit_callbacks
):
    other = Cluster.objects.create(name="off", kubeconfig="/nowhere", enabled=False)
    with (
        mock.patch.object(tasks.sync_cluster, "delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        ids = tasks.sync_all_clusters()
    assert ids == [cluster.pk]
    delay.assert_called_once_with(cluster.pk)
    assert other.pk not in ids
