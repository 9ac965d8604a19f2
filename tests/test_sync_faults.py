"""Faults from the API server: a sync that cannot read everything deletes nothing."""

from __future__ import annotations

import socket

import pytest

from ippam.kube.client import KubeError
from ippam.models import Allocation, Cluster, IPPool, Pod, PodInterface, SyncRun
from ippam.sync import cluster_sync_full
from simcluster.runtime import write_kubeconfig
from tests.test_sync import assert_db_matches

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(simcluster):
    simcluster.load("demo")
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig)
    cluster_sync_full(cluster=cluster)
    cluster.refresh_from_db()
    return cluster


def counts(cluster):
    return {
        model.__name__: model.objects.filter(cluster=cluster).count()
        for model in (Pod, PodInterface, IPPool, Allocation)
    }


def delete_pods(simcluster, n):
    for obj in simcluster.list("pods")[:n]:
        simcluster.delete("pods", obj["metadata"]["namespace"], obj["metadata"]["name"])


def test_a_500_keeps_the_last_good_data_and_the_next_sync_repairs(simcluster, synced):
    before = counts(synced)
    last_good = synced.last_good_sync
    delete_pods(simcluster, 5)
    simcluster.fault(r"^/api/v1/pods$", status=500, count=1)

    with pytest.raises(KubeError, match="HTTP 500"):
        cluster_sync_full(cluster=synced)

    synced.refresh_from_db()
    assert counts(synced) == before
    assert synced.sync_state == Cluster.SyncState.FAILED
    assert "HTTP 500" in synced.sync_error
    assert synced.last_good_sync == last_good
    assert SyncRun.objects.filter(cluster=synced).first().outcome == SyncRun.Outcome.FAILED

    cluster_sync_full(cluster=synced)
    assert_db_matches(simcluster, synced)
    assert Pod.objects.filter(cluster=synced).count() == before["Pod"] - 5


def test_a_sync_cut_off_half_way_through_the_pods_deletes_nothing(simcluster, synced, settings):
    settings.IPPAM_LIST_PAGE_SIZE = 50
    before = counts(synced)
    delete_pods(simcluster, 40)
    pool = simcluster.list("ippools")[0]
    simcluster.patch(
        "ippools",
        pool["metadata"]["namespace"],
        pool["metadata"]["name"],
        {"spec": {"allocations": None}},
    )
    pages = []

    def progress(kind, phase, count):
        if kind == "pods" and phase == "listing":
            pages.append(count)
            if len(pages) == 1:
                # Pages are read ahead while one is processed: the next un-requested one fails.
                simcluster.fault(r"^/api/v1/pods$", status=500, count=5)

    with pytest.raises(KubeError):
        cluster_sync_full(cluster=synced, progress=progress)

    assert 1 <= len(pages) < 5 and pages[0] == 50  # 263 pods: 6 pages; it stopped half-way
    assert counts(synced) == before  # neither the pods nor the emptied pool changed

    simcluster.clear_faults()
    cluster_sync_full(cluster=synced)
    assert_db_matches(simcluster, synced)


def test_slow_answers_still_sync(simcluster, synced):
    delete_pods(simcluster, 3)
    simcluster.fault(r"^/api/v1/(pods|nodes)$", latency=0.4, count=3)
    run = cluster_sync_full(cluster=synced)
    assert run.outcome == SyncRun.Outcome.OK
    assert_db_matches(simcluster, synced)


def test_an_expired_continue_token_restarts_the_list_without_doubles(simcluster, synced, settings):
    settings.IPPAM_LIST_PAGE_SIZE = 40
    delete_pods(simcluster, 7)
    compacted = []

    def progress(kind, phase, count):
        if kind == "pods" and not compacted:
            compacted.append(count)
            simcluster.compact()  # the continue token of the next page is now too old: 410

    run = cluster_sync_full(cluster=synced, progress=progress)

    assert compacted == [40]
    assert run.counts["pods"] == len(simcluster.list("pods"))
    assert any(r["status"] == 410 for r in simcluster.requests)
    assert_db_matches(simcluster, synced)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_cluster_is_marked_and_keeps_its_data(simcluster, synced, tmp_path):
    before = counts(synced)
    synced.kubeconfig = write_kubeconfig(str(tmp_path / "kc"), f"http://127.0.0.1:{free_port()}")
    synced.save()

    with pytest.raises(KubeError, match="no answer"):
        cluster_sync_full(cluster=synced)

    synced.refresh_from_db()
    assert synced.sync_state == Cluster.SyncState.UNREACHABLE
    assert "no answer from the API server" in synced.sync_error
    assert synced.last_good_sync is not None
    assert counts(synced) == before
