"""Recently freed addresses (issue 13): recorded from watch events and the full sync, shown
on the pool page, its map and in search, re-allocation included, pruned after the window."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from ippam.models import Allocation, Cluster, FreedAddress, IPPool
from ippam.sync import cluster_sync_full
from ippam.watch import Watcher
from simcluster.builder import ClusterBuilder
from tests.html import select, select_one, text
from tests.test_watch import eventually


def _seed(simcluster) -> ClusterBuilder:
    b = ClusterBuilder(seed=13)
    b.node("n1")
    b.whereabouts_nad("lab", "net-a", "10.6.0.0/24")
    for i in range(3):
        b.pod("lab", f"p{i}", "n1", [("lab", "net-a")])
    simcluster.seed(b.objects())
    return b


def _pool(simcluster) -> dict:
    return simcluster.list("ippools")[0]


@pytest.fixture
def watched(simcluster, transactional_db):
    """A synced cluster and a running watcher; call the second item to stop it (pages are read
    with the watcher stopped: SQLite's shared test database locks tables under its writes)."""
    _seed(simcluster)
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig)
    cluster_sync_full(cluster=cluster)
    watcher = Watcher(batch_seconds=0.1)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    eventually(
        lambda: (
            watcher.watches.get(cluster.pk)
            and all(t.is_alive() for t in watcher.watches[cluster.pk])
        )
    )
    simcluster.wait_for_watches(len(watcher.watches[cluster.pk]))

    def stop() -> None:
        watcher.stop()
        thread.join(10)

    yield cluster, stop
    stop()


def test_freed_and_reused_addresses_show_their_old_holder_on_map_and_search(
    simcluster, watched, viewer_client, settings
):
    cluster, stop_watcher = watched
    assert not FreedAddress.objects.exists()  # the first sync frees nothing
    pool = _pool(simcluster)
    name = pool["metadata"]["name"]
    allocations = pool["spec"]["allocations"]
    reused, freed_key, swapped_key = sorted(allocations, key=int)[:3]
    # A free older than the window: the next batch that records frees prunes it.
    ancient = FreedAddress.objects.create(
        cluster=cluster,
        pool_namespace="kube-system",
        pool_name=name,
        key="200",
        ip="10.6.0.200",
        podref="lab/ancient",
        freed_at=timezone.now() - timedelta(seconds=settings.IPPAM_FREED_RETENTION_SECONDS + 60),
    )

    # Two pods' DEL: whereabouts removes their allocations from the IPPool.
    simcluster.patch(
        "ippools",
        "kube-system",
        name,
        {"spec": {"allocations": {reused: None, freed_key: None}}},
    )
    eventually(lambda: FreedAddress.objects.filter(cluster=cluster).count() == 2)
    rows = {f.key: f for f in FreedAddress.objects.filter(cluster=cluster)}
    assert set(rows) == {reused, freed_key}  # the others the event rewrote are not freed
    assert not FreedAddress.objects.filter(pk=ancient.pk).exists()  # pruned by that batch
    for key, f in rows.items():
        assert f.podref == allocations[key]["podref"]
        assert f.ifname == allocations[key].get("ifname", "")
        assert (f.pool_namespace, f.pool_name) == ("kube-system", name)

    # Whereabouts hands the first out again at once, to another pod; and another offset
    # changes hands between two events (freed and re-allocated unseen by ippam).
    simcluster.patch(
        "ippools",
        "kube-system",
        name,
        {
            "spec": {
                "allocations": {
                    reused: {"id": "c-new", "podref": "lab/newcomer", "ifname": "net1"},
                    swapped_key: {"id": "c-2", "podref": "lab/second", "ifname": "net1"},
                }
            }
        },
    )
    swapped = eventually(
        lambda: FreedAddress.objects.filter(cluster=cluster, key=swapped_key).first()
    )
    assert swapped.podref == allocations[swapped_key]["podref"]
    db_pool = IPPool.objects.get(cluster=cluster, name=name)
    eventually(lambda: Allocation.objects.filter(pool=db_pool, podref="lab/newcomer").exists())
    assert FreedAddress.objects.filter(cluster=cluster, key=reused).count() == 1
    stop_watcher()

    page = viewer_client.get(f"/pools/{db_pool.pk}/").content.decode()
    free_ip, reused_ip = str(rows[freed_key].ip), str(rows[reused].ip)
    cell = select_one(page, f'.alloc-map .cell[data-ip="{free_ip}"]')
    assert "freed" in cell.classes
    assert " ago (" in cell.attrs["title"]
    assert f"held by {allocations[freed_key]['podref']}" in cell.attrs["title"]
    cell = select_one(page, f'.alloc-map .cell[data-ip="{reused_ip}"]')
    assert {"allocated", "reused"} <= set(cell.classes)
    assert "lab/newcomer" in cell.attrs["title"]
    assert f"held by {allocations[reused]['podref']}" in cell.attrs["title"]
    assert select(page, ".legend .cell.freed") and select(page, ".legend .cell.reused")
    table = text(select_one(page, "#pool-freed-table"))
    assert allocations[freed_key]["podref"] in table and "lab/ancient" not in table

    found = viewer_client.get("/search/", {"q": reused_ip}).content.decode()
    line = text(select_one(found, "#search-freed li"))
    assert f"{reused_ip}: freed" in line and f"from IPPool kube-system/{name}" in line
    assert f"held by {allocations[reused]['podref']}" in line
    assert select_one(found, "#search-freed time").attrs["title"].endswith("UTC")
    assert "lab/newcomer" in text(select_one(found, "#search-holders"))


def test_the_full_sync_records_what_it_finds_gone(simcluster, db):
    _seed(simcluster)
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig)
    cluster_sync_full(cluster=cluster)
    pool = _pool(simcluster)
    name = pool["metadata"]["name"]
    key = sorted(pool["spec"]["allocations"], key=int)[0]
    podref = pool["spec"]["allocations"][key]["podref"]
    simcluster.patch("ippools", "kube-system", name, {"spec": {"allocations": {key: None}}})
    cluster_sync_full(cluster=cluster)
    assert list(FreedAddress.objects.values_list("key", "podref")) == [(key, podref)]

    # A deleted pool frees every address it held.
    left = {k: a["podref"] for k, a in _pool(simcluster)["spec"]["allocations"].items()}
    simcluster.delete("ippools", "kube-system", name)
    cluster_sync_full(cluster=cluster)
    assert set(FreedAddress.objects.exclude(key=key).values_list("key", "podref")) == set(
        left.items()
    )
