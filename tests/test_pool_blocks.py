"""Per-block allocation counts (ippam.pool_blocks): every writer of a pool's allocations
keeps them equal to the allocations, and the heat map drawn from them equals a count of
the allocations themselves."""

from __future__ import annotations

import importlib
from collections import Counter

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from netaddr import IPAddress, IPNetwork

from ippam.leaks.reclaim.execute import pools_recount
from ippam.models import Allocation, Cluster, Finding, IPPool, PoolBlock
from ippam.pool_blocks import pool_blocks_refresh
from ippam.selectors.pool_map import pool_allocation_map
from ippam.sync import cluster_sync_full
from ippam.sync.apply import objects_apply
from tests.factories import make_allocation, make_cluster, make_finding, make_pool

pytestmark = pytest.mark.django_db


def stored(pool_ids: list[int] | None = None) -> dict[tuple[int, str], int]:
    """(pool id, block's first address) -> count, as the table holds them."""
    rows = PoolBlock.objects.all()
    if pool_ids is not None:
        rows = rows.filter(pool_id__in=pool_ids)
    return {(b.pool_id, str(b.first_ip)): b.allocated for b in rows}


def counted(pool_ids: list[int] | None = None) -> dict[tuple[int, str], int]:
    """The same, counted here from the allocation rows: a block is the 256 addresses that
    share all but the last 8 bits."""
    rows = Allocation.objects.all()
    if pool_ids is not None:
        rows = rows.filter(pool_id__in=pool_ids)
    out: Counter[tuple[int, str]] = Counter()
    for pool_id, ip in rows.values_list("pool_id", "ip"):
        out[(pool_id, str(IPAddress(int(ip) & ~0xFF, ip.version)))] += 1
    return dict(out)


@pytest.fixture
def sim_cluster(simcluster):
    simcluster.load("demo")
    return Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig)


def test_full_sync_counts_every_pools_allocations_per_block(simcluster, sim_cluster):
    cluster_sync_full(cluster=sim_cluster)
    assert Allocation.objects.filter(cluster=sim_cluster).exists()
    assert stored() == counted()


def test_a_watched_pool_change_recounts_its_blocks(simcluster, sim_cluster):
    cluster_sync_full(cluster=sim_cluster)
    pool = max(simcluster.list("ippools"), key=lambda p: len(p["spec"].get("allocations") or {}))
    allocations = dict(pool["spec"]["allocations"])
    assert len(allocations) >= 2
    before = stored()
    # One pod lets its address go, and another takes a free one.
    gone = sorted(allocations, key=int)[0]
    taken = str(max(int(k) for k in allocations) + 1)
    allocations[taken] = allocations.pop(gone)
    pool["spec"]["allocations"] = allocations
    pool["metadata"]["resourceVersion"] = "999999"
    objects_apply(cluster_id=sim_cluster.pk, kind="ippools", events=[("MODIFIED", pool)])
    db_pool = IPPool.objects.get(cluster=sim_cluster, name=pool["metadata"]["name"])
    assert Allocation.objects.filter(pool=db_pool, key=taken).exists()
    assert not Allocation.objects.filter(pool=db_pool, key=gone).exists()
    assert stored() == counted()
    del allocations[taken]  # and goes: one fewer in the block
    objects_apply(cluster_id=sim_cluster.pk, kind="ippools", events=[("MODIFIED", pool)])
    block = next(k for k in before if k[0] == db_pool.pk)
    assert stored()[block] == before[block] - 1
    assert stored() == counted()


def test_a_deleted_pools_blocks_go_at_the_next_refresh(simcluster, sim_cluster):
    cluster_sync_full(cluster=sim_cluster)
    pool = next(p for p in simcluster.list("ippools") if p["spec"].get("allocations"))
    db_pool = IPPool.objects.get(cluster=sim_cluster, name=pool["metadata"]["name"])
    assert stored([db_pool.pk])
    simcluster.delete("ippools", pool["metadata"]["namespace"], pool["metadata"]["name"])
    cluster_sync_full(cluster=sim_cluster)
    assert not IPPool.objects.filter(pk=db_pool.pk).exists()
    assert stored([db_pool.pk]) == {}
    assert stored() == counted()


def test_refreshing_some_pools_recounts_those_and_drops_gone_pools():
    c = make_cluster("c")
    a, b, gone = (make_pool(c, f"10.{i}.0.0/16") for i in (1, 2, 3))
    for pool in (a, b, gone):
        make_allocation(pool, pool.range.replace("0.0/16", "0.7"))
    pool_blocks_refresh(cluster_id=c.pk)
    assert stored() == counted()
    make_allocation(a, "10.1.9.1")
    make_allocation(b, "10.2.9.1")
    # Bulk SQL, as store.objects_delete removes pools: no ORM cascade to the blocks.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM ippam_allocation WHERE pool_id = %s", [gone.pk])
        cursor.execute("DELETE FROM ippam_ippool WHERE id = %s", [gone.pk])
    pool_blocks_refresh(cluster_id=c.pk, pool_ids=[a.pk])
    assert stored([a.pk]) == counted([a.pk])
    assert stored([b.pk]) == {(b.pk, "10.2.0.0"): 1}  # not asked for: left as it was
    assert stored([gone.pk]) == {}


def test_reclaim_recount_refreshes_the_blocks():
    c = make_cluster("c")
    pool = make_pool(c, "10.4.0.0/16")
    kept, freed = make_allocation(pool, "10.4.1.1"), make_allocation(pool, "10.4.2.1")
    pool_blocks_refresh(cluster_id=c.pk)
    freed.delete()
    pools_recount(pool_ids={pool.pk})
    assert stored() == {(pool.pk, "10.4.1.0"): 1}
    assert kept.pk and IPPool.objects.get(pk=pool.pk).allocated == 1


def test_the_migration_fills_what_the_refresh_writes():
    c, d = make_cluster("c"), make_cluster("d")
    pool = make_pool(c, "10.5.0.0/16")
    six = make_pool(d, "fd00:5::/112")
    for ip in ("10.5.0.1", "10.5.0.2", "10.5.200.9"):
        make_allocation(pool, ip)
    for ip in ("fd00:5::1", "fd00:5::1:2"):
        make_allocation(six, ip)
    migration = importlib.import_module("ippam.migrations.0011_pool_blocks")
    with connection.cursor() as cursor:
        cursor.execute(migration.FILL)
    filled = stored()
    PoolBlock.objects.all().delete()
    pool_blocks_refresh(cluster_id=c.pk)
    pool_blocks_refresh(cluster_id=d.pk)
    assert filled == stored() == counted()
    assert filled[(six.pk, "fd00:5::1:0")] == 1


@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    cidr=st.sampled_from(["10.20.0.0/16", "10.20.0.0/20", "10.0.0.0/8", "fd00:20::/104"]),
    offsets=st.lists(st.integers(min_value=0, max_value=2**24 - 1), max_size=40, unique=True),
    zoom=st.booleans(),
)
def test_heat_map_from_blocks_equals_counting_the_allocations(cidr, offsets, zoom):
    """Whatever the pool's size and family, and zoomed into a block or not: each heat-map
    block's count is the number of the pool's allocations inside it, and its leaked and
    suspect counts those of the pool's findings inside it (the same statement reads both)."""
    Cluster.objects.all().delete()
    c = make_cluster("c")
    network = IPNetwork(cidr)
    pool = make_pool(c, cidr)
    ips = sorted({IPAddress(network.first + o % network.size, network.version) for o in offsets})
    leaked, suspect = set(), set()
    for i, ip in enumerate(ips):
        allocation = make_allocation(pool, str(ip))
        if i % 3 == 1:
            make_finding(c, allocation=allocation)
            leaked.add(ip)
        elif i % 5 == 2:
            make_finding(c, allocation=allocation, state=Finding.State.SUSPECT)
            suspect.add(ip)
    pool_blocks_refresh(cluster_id=c.pk)
    block = None
    if zoom and ips:
        top = pool_allocation_map(pool).blocks or []
        block = str(next(b.network for b in top if b.first <= int(ips[0]) <= b.first + b.size - 1))
    amap = pool_allocation_map(pool, block=block)
    if amap.cells is not None:  # zoomed into a block small enough for one cell an address
        return
    assert amap.blocks
    for b in amap.blocks:
        assert b.allocated == sum(1 for ip in ips if ip in b.network), b.cidr
        assert b.leaked == sum(1 for ip in leaked if ip in b.network), b.cidr
        assert b.suspect == sum(1 for ip in suspect if ip in b.network), b.cidr
        assert b.cidr == str(b.network)
    assert sum(b.allocated for b in amap.blocks) == sum(1 for ip in ips if ip in amap.region)
