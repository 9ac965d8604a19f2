"""ippam.ranges: one answer to "which addresses can whereabouts hand out", and every view
(sync counters, pool map, NAD form) gives the same one."""

from __future__ import annotations

import pytest
from netaddr import IPAddress, IPNetwork

from ippam.models import Cluster, IPPool
from ippam.ranges import merge_intervals, pool_usable, range_usable, stored_range_usable
from ippam.selectors.pool_map import MAP_MAX_CELLS, pool_address_plan, pool_allocation_map
from ippam.sync import cluster_sync_full
from simcluster.scenarios import SCENARIOS, load_scale
from tests.test_sync import usable_equal


def test_merge_intervals_joins_overlapping_and_adjacent():
    assert merge_intervals([(5, 9), (1, 2), (3, 4), (8, 12), (20, 20)]) == [(1, 12), (20, 20)]


def test_thousands_of_scattered_excludes_in_a_slash_16():
    excludes = [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(0, 10_000, 2)]
    u = range_usable(IPNetwork("10.0.0.0/16"), exclude=excludes)
    assert len(u.excluded) == 5000
    assert u.count == 65534 - 5000
    assert not u.is_usable(IPAddress("10.0.0.1")) and u.is_usable(IPAddress("10.0.0.2"))
    assert sum(hi - lo + 1 for lo, hi in u.free_blocks()) == u.count


def test_an_unparsable_exclude_makes_the_whole_range_unusable():
    u = range_usable(IPNetwork("10.0.0.0/24"), exclude=["10.0.0.5", "10.0.0.0/33"])
    assert u.count == 0 and "10.0.0.0/33" in u.error
    assert not u.is_usable(IPAddress("10.0.0.9"))
    assert list(u.free_blocks()) == []


def test_start_and_end_are_ignored_not_clamped():
    net = IPNetwork("10.0.0.0/24")
    assert range_usable(net, IPAddress("10.0.0.255")).first == int(IPAddress("10.0.0.1"))
    reversed_end = range_usable(net, IPAddress("10.0.0.100"), IPAddress("10.0.0.50"))
    assert reversed_end.count == 254 - 99


def test_a_stored_range_with_a_rejected_config_counts_nothing():
    verdict = "every allocation from this range fails: whereabouts rejects the config (x)"
    u = stored_range_usable("10.0.0.0/24", None, None, [], verdict)
    assert u is not None and u.count == 0 and u.error == verdict
    assert stored_range_usable("nope", None, None, [], "") is None


def test_pool_union_counts_overlaps_once():
    net = IPNetwork("10.0.0.0/24")
    a = range_usable(net, range_end=IPAddress("10.0.0.99"))
    b = range_usable(net, range_start=IPAddress("10.0.0.50"), exclude=["10.0.0.128/25"])
    pool = pool_usable(net, [a, b])
    assert pool.count == 127
    assert pool.count_in(int(IPAddress("10.0.0.0")), int(IPAddress("10.0.0.63"))) == 63
    assert pool_usable(net, None).count == 254


def _load(simcluster, scenario: str) -> None:
    if scenario == "scale":
        # The scale scenario's generator at a size the gate can afford.
        simcluster.load("empty")
        load_scale(simcluster.store, nodes=20, pods=400, nads=40, namespaces=5)
    else:
        simcluster.load(scenario)


@pytest.mark.django_db
@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s != "empty"])
def test_pool_map_and_counters_agree_on_every_pool(simcluster, scenario):
    _load(simcluster, scenario)
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig)
    cluster_sync_full(cluster=cluster, run_hooks=False)
    pools = list(IPPool.objects.filter(cluster=cluster).order_by("name"))
    assert pools
    for pool in pools:
        plan = pool_address_plan(pool)
        assert plan is not None, pool.name
        assert usable_equal(pool.usable, plan.usable.count), pool.name
        amap = pool_allocation_map(pool)
        if plan.network.size <= MAP_MAX_CELLS:
            assert amap.cells is not None
            assert sum(cell.usable for cell in amap.cells) == plan.usable.count, pool.name
            assert all(cell.usable for cell in amap.cells if cell.state == "free"), pool.name
            assert not any(cell.usable for cell in amap.cells if cell.state == "excluded")
        else:
            assert amap.blocks is not None
            assert sum(block.usable for block in amap.blocks) == plan.usable.count, pool.name


@pytest.mark.django_db
def test_an_unparsable_exclude_empties_the_counter_and_the_map_alike():
    from ippam.sync.store import pools_refresh_usage
    from tests.factories import make_cluster, make_nad, make_pool

    cluster = make_cluster("c")
    nad = make_nad(cluster, "bad", range="10.30.0.0/28", exclude=["10.30.0.2", "10.30.0.0/40"])
    pool = make_pool(cluster, "10.30.0.0/28", nads=[nad], usable=14)
    pools_refresh_usage(cluster.pk)
    pool.refresh_from_db()
    assert int(pool.usable) == 0
    cells = pool_allocation_map(pool).cells
    assert cells is not None and not any(c.usable or c.state == "free" for c in cells)
    excluded = [c for c in cells if c.state == "excluded"]
    assert excluded and all("10.30.0.0/40" in c.title for c in excluded)
