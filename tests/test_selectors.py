"""Selectors: the reads behind the dashboard."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Count, Prefetch
from django.utils import timezone
from netaddr import IPAddress

from ippam.models import Alert, Cluster, FreedAddress, IPPool, NADRange, PodEvent
from ippam.pool_blocks import pool_blocks_refresh
from ippam.selectors.clusters import cluster_health
from ippam.selectors.failures import explain_cni_error
from ippam.selectors.overview import overview_totals
from ippam.selectors.pool_map import pool_address_plan, pool_allocation_map
from ippam.selectors.pools import allocation_rows, pool_allocations, pool_get, pool_list_with_usage
from ippam.selectors.search import search
from tests.factories import (
    make_alert,
    make_allocation,
    make_audit,
    make_cluster,
    make_demo,
    make_event,
    make_finding,
    make_nad,
    make_nad_range,
    make_node,
    make_orip,
    make_pod,
    make_pool,
)


@pytest.mark.parametrize(
    "message, words",
    [
        (
            "error at storage engine: Could not allocate IP in range: ip: 10.0.0.1 / - 10.0.0.254",
            "The pool is full",
        ),
        (
            'failed to find plugin "sriov" in path [/opt/cni/bin]',
            'The CNI plugin binary "sriov" is not installed',
        ),
        ('failed to lookup master "ens3f1": Link not found', 'The master interface "ens3f1"'),
        ("error getting IP from IPAM: context deadline exceeded", "timed out"),
        ("invalid character '#' looking for beginning of object key string", "not valid JSON"),
        ("some: nested: thing went sideways", "thing went sideways"),
        ("", "no message"),
    ],
)
def test_explain_cni_error(message, words):
    assert words in explain_cni_error(message)


@pytest.mark.django_db
def test_cluster_health_levels(settings):
    settings.IPPAM_STALE_AFTER_SECONDS = 60
    now = timezone.now()
    assert cluster_health(make_cluster("a")).level == "ok"
    assert cluster_health(make_cluster("b", synced=False)).level == "never"
    old = make_cluster("c", last_good_sync=now - timedelta(minutes=5))
    assert cluster_health(old).level == "stale"
    failed = make_cluster(
        "d", sync_state=Cluster.SyncState.FAILED, sync_error="403 Forbidden\nmore"
    )
    health = cluster_health(failed)
    assert health.level == "error" and health.message == "sync failed: 403 Forbidden"


@pytest.mark.django_db
def test_pool_address_plan_unions_nad_ranges():
    c = make_cluster("c")
    nad1 = make_nad(c, "a", range="10.0.0.0/24", range_end="10.0.0.99", gateway="10.0.0.1")
    nad2 = make_nad(c, "b", range=None)
    make_nad_range(nad2, "10.0.0.0/24", range_start="10.0.0.200", exclude=["10.0.0.250/31"])
    pool = make_pool(c, "10.0.0.0/24", nads=[nad1, nad2])
    plan = pool_address_plan(pool)
    assert plan.usable.count == 99 + (254 - 200 + 1 - 2)
    assert not plan.usable.is_usable(IPAddress("10.0.0.150"))
    assert plan.usable.is_usable(IPAddress("10.0.0.50"))
    assert plan.gateways == {IPAddress("10.0.0.1")}


@pytest.mark.django_db
def test_pool_without_nads_uses_the_whole_subnet():
    c = make_cluster("c")
    plan = pool_address_plan(make_pool(c, "10.0.0.0/30"))
    assert plan.usable.count == 2


@pytest.mark.django_db
def test_allocation_map_counts():
    demo = make_demo()
    amap = pool_allocation_map(demo["pools"][0])
    assert amap.counts == {
        "network": 1,
        "broadcast": 1,
        "gateway excluded": 1,  # inside an exclude entry: whereabouts never hands it out
        "excluded": 8 + 4,
        "allocated": 6,
        "leaked": 1,
        "suspect": 1,
        "free": 256 - 2 - 1 - 12 - 8,
    }


@pytest.mark.django_db
def test_heat_map_blocks_count_allocations_and_leaks():
    c = make_cluster("c")
    pool = make_pool(c, "10.8.0.0/20")
    for ip in ("10.8.0.1", "10.8.0.2", "10.8.15.3"):
        make_allocation(pool, ip)
    make_finding(c, allocation=make_allocation(pool, "10.8.15.4"))
    pool_blocks_refresh(cluster_id=c.pk)  # as the sync does after writing allocations
    amap = pool_allocation_map(pool)
    assert len(amap.blocks) == 16
    assert (amap.blocks[0].allocated, amap.blocks[15].allocated, amap.blocks[15].leaked) == (
        2,
        2,
        1,
    )
    assert amap.blocks[0].usable == 255 and amap.blocks[15].usable == 255
    zoom = pool_allocation_map(pool, block="10.8.15.0/24")
    assert zoom.zoomed and zoom.cells is not None and zoom.parent is None


@pytest.mark.django_db
def test_heat_map_block_edges_other_pools_and_coarse_blocks():
    """Each block counts the pool's allocations from its first to its last address, and
    only this pool's (another pool of the same range, in another cluster, is not counted)."""
    c, other = make_cluster("c"), make_cluster("other")
    pool = make_pool(c, "10.9.0.0/16")
    twin = make_pool(other, "10.9.0.0/16")
    for ip in ("10.9.3.0", "10.9.3.255", "10.9.4.0", "10.9.255.255"):
        make_allocation(pool, ip)
    make_allocation(twin, "10.9.3.7")
    pool_blocks_refresh(cluster_id=c.pk)
    pool_blocks_refresh(cluster_id=other.pk)
    counts = [b.allocated for b in pool_allocation_map(pool).blocks or []]
    assert len(counts) == 256 and sum(counts) == 4
    assert (counts[2], counts[3], counts[4], counts[255]) == (0, 2, 1, 1)
    # A /8: 256 blocks of a /16 each; zoomed into one /16, blocks of a /24.
    big = make_pool(c, "11.0.0.0/8")
    for ip in ("11.0.0.1", "11.1.2.3", "11.1.255.0", "11.255.255.254"):
        make_allocation(big, ip)
    pool_blocks_refresh(cluster_id=c.pk, pool_ids=[big.pk])
    blocks = pool_allocation_map(big).blocks or []
    assert [(str(b.network), b.allocated) for b in blocks if b.allocated] == [
        ("11.0.0.0/16", 1),
        ("11.1.0.0/16", 2),
        ("11.255.0.0/16", 1),
    ]
    zoom = pool_allocation_map(big, block="11.1.0.0/16").blocks or []
    assert [(str(b.network), b.allocated) for b in zoom if b.allocated] == [
        ("11.1.2.0/24", 1),
        ("11.1.255.0/24", 1),
    ]


@pytest.mark.django_db
def test_heat_map_block_usable_counts_follow_the_ranges_and_excludes():
    """Each block's usable count is the plan's usable addresses inside it: ranges starting
    and ending mid-block, a hole inside one, one usable stretch across many blocks, a block
    excluded entirely (one walk along the usable intervals gives every block's count)."""
    c = make_cluster("c")
    nad1 = make_nad(c, "a", range=None)
    make_nad_range(
        nad1,
        "10.5.0.0/16",
        range_start="10.5.1.128",
        range_end="10.5.3.63",
        exclude=["10.5.2.0/25", "10.5.3.16/30"],
    )
    nad2 = make_nad(c, "b", range=None)
    make_nad_range(nad2, "10.5.0.0/16", range_start="10.5.200.10", exclude=["10.5.255.0/24"])
    pool = make_pool(c, "10.5.0.0/16", nads=[nad1, nad2])
    blocks = pool_allocation_map(pool).blocks or []
    assert len(blocks) == 256
    usable = {i: b.usable for i, b in enumerate(blocks) if b.usable}
    assert usable == {1: 128, 2: 128, 3: 64 - 4, 200: 256 - 10} | {i: 256 for i in range(201, 255)}
    assert sum(usable.values()) == pool_address_plan(pool).usable.count


@pytest.mark.django_db
def test_heat_map_ipv6():
    c = make_cluster("c")
    pool = make_pool(c, "fd00:30::/112")
    for ip in ("fd00:30::1", "fd00:30::ff", "fd00:30::100", "fd00:30::ffff"):
        make_allocation(pool, ip)
    pool_blocks_refresh(cluster_id=c.pk)
    blocks = pool_allocation_map(pool).blocks or []
    assert len(blocks) == 256
    assert [(str(b.network), b.allocated) for b in blocks if b.allocated] == [
        ("fd00:30::/120", 2),
        ("fd00:30::100/120", 1),
        ("fd00:30::ff00/120", 1),
    ]


@pytest.mark.django_db
def test_overview_totals_sum_the_pool_counters():
    a, b = make_cluster("a"), make_cluster("b")
    make_pool(a, "10.1.0.0/24", allocated=5)
    make_pool(b, "10.2.0.0/24", allocated=7)
    assert overview_totals().allocations == 12
    assert overview_totals(cluster=a).allocations == 5
    assert overview_totals(cluster=make_cluster("empty")).allocations == 0


@pytest.mark.django_db
def test_overview_totals_and_open_alerts_by_kind_per_cluster():
    """One statement gives every total and the open alerts per kind; each scoped alike."""
    a, b = make_cluster("a"), make_cluster("b")
    make_pool(a, "10.1.0.0/24", allocated=5)
    make_pool(b, "10.2.0.0/24", allocated=7)
    make_nad(a, "net-a")
    make_finding(a, ip="10.1.0.9")
    for cluster, kind, state in [
        (a, Alert.Kind.POOL_EXHAUSTED, Alert.State.OPEN),
        (a, Alert.Kind.POOL_THRESHOLD, Alert.State.OPEN),
        (a, Alert.Kind.POOL_THRESHOLD, Alert.State.OPEN),
        (a, Alert.Kind.POOL_THRESHOLD, Alert.State.RESOLVED),
        (b, Alert.Kind.POOL_THRESHOLD, Alert.State.OPEN),
        (b, Alert.Kind.POOL_EXHAUSTED, Alert.State.ACKNOWLEDGED),
    ]:
        make_alert(cluster, kind=kind, state=state)
    everything = overview_totals()
    assert (everything.pools, everything.allocations, everything.nads, everything.findings) == (
        2,
        12,
        1,
        1,
    )
    assert everything.alerts_by_kind == [
        ("pool_exhausted", "pool exhausted", 1),
        ("pool_threshold", "pool above threshold", 3),
    ]
    assert everything.open_alerts == 4
    only_b = overview_totals(cluster=b)
    assert (only_b.pools, only_b.allocations, only_b.nads, only_b.findings) == (1, 7, 0, 0)
    assert only_b.alerts_by_kind == [("pool_threshold", "pool above threshold", 1)]
    none = overview_totals(cluster=make_cluster("empty"))
    assert (none.pools, none.open_alerts, none.alerts_by_kind) == (0, 0, [])


@pytest.mark.django_db
def test_pool_list_with_usage_annotations():
    demo = make_demo()
    pools, sort = pool_list_with_usage(sort="-leaks")
    first = list(pools)[0]
    assert sort == "-leaks" and first.pk == demo["pools"][0].pk and first.leak_count == 2
    assert [r.nad.name for r in first.nad_ranges.all()] == ["macvlan-a"]
    _, sort = pool_list_with_usage(sort="drop table")
    assert sort == "-utilization"


@pytest.mark.django_db
def test_search_kinds():
    make_demo()
    assert search("10.10.0.12").kind == "ip"
    assert search("10.10.0.0/24").kind == "cidr"
    assert search("0a:58:0a:0a:00:0a").kind == "mac"
    assert search("web").kind == "text"
    assert search("  ").kind == "empty"


@pytest.mark.django_db
def test_search_scoped_to_cluster():
    demo = make_demo()
    other = make_cluster("other")
    assert search("10.10.0.12", cluster=other).empty
    assert not search("10.10.0.12", cluster=demo["cluster"]).empty


@pytest.mark.django_db
def test_search_ip_every_part_from_one_statement(settings):
    """Search by address reads its holders, findings, frees, events and audit in one plain
    SQL statement: each part as the ORM read it (links, order, limits, window, cluster)."""
    c = make_cluster("c")
    other = make_cluster("other")
    node = make_node(c, "w1")
    pool = make_pool(c, "10.9.0.0/24")
    alloc_pod = make_pod(c, "web-1", node=node)
    make_allocation(pool, "10.9.0.7", pod=alloc_pod, ifname="net1", container_id="c" * 64)
    make_pod(c, "web-2", node="no-such-node", default_ip="10.9.0.7")
    make_orip(c, "10.9.0.7", podref="default/gone", ifname="net1")
    make_finding(c, ip="10.9.0.7", pool=pool, reason="two holders")
    now = timezone.now()
    window = settings.IPPAM_FREED_RETENTION_SECONDS
    for i, (cluster, age) in enumerate([(c, 60), (c, 600), (c, window + 60), (other, 60)]):
        FreedAddress.objects.create(
            cluster=cluster,
            pool_namespace="kube-system",
            pool_name="10.9.0.0-24",
            key="7",
            ip="10.9.0.7",
            podref=f"default/freed-{i}",
            freed_at=now - timedelta(seconds=age),
        )
    never = make_event(c, pod_name="never-seen", reason="AddedInterface", ip="10.9.0.7")
    PodEvent.objects.filter(pk=never.pk).update(last_seen=None)
    make_event(c, pod_name="ev-old", ip="10.9.0.7", last_seen=now - timedelta(hours=2))
    make_event(other, pod_name="ev-other", ip="10.9.0.7", last_seen=now)
    make_audit(cluster=c, target="kube-system/10.9.0.0-24 10.9.0.7", before={"podref": "a/b"})
    make_audit(cluster=None, target="x", message="freed 10.9.0.7 by hand", actor_name="ops")
    make_audit(cluster=c, target="kube-system/10.9.0.0-24 10.9.0.77")  # another address

    res = search("10.9.0.7", cluster=c)
    assert [(h.source, h.podref, h.interface) for h in res.holders] == [
        ("IPPool allocation", "default/web-1", "net1"),
        ("network-status", "default/web-2", "eth0"),
        ("reservation", "default/gone", "net1"),
    ]
    alloc, address, reservation = res.holders
    assert alloc.pool is not None and (alloc.pool.pk, alloc.pool.range) == (pool.pk, pool.range)
    assert alloc.pod is not None and alloc.pod.pk == alloc_pod.pk
    assert alloc.node is not None and (alloc.node.pk, alloc.node.name) == (node.pk, "w1")
    assert alloc.container_id == "c" * 64
    assert address.pod is not None and address.pod.node_name == "no-such-node"
    assert address.node is None and address.pool is None
    assert reservation.pod is None and reservation.node is None
    assert [(f.state, f.get_kind_display(), f.reason, f.ip) for f in res.findings] == [
        ("leaked", "orphaned allocation", "two holders", IPAddress("10.9.0.7"))
    ]
    assert [f.freed.podref for f in res.freed] == ["default/freed-0", "default/freed-1"]
    assert res.freed[0].freed.cluster.name == "c" and "from IPPool kube-system/" in (
        res.freed[0].phrase
    )
    assert (
        res.freed[0].freed.freed_at == FreedAddress.objects.get(podref="default/freed-0").freed_at
    )
    # newest first, an event never seen last; the other address's audit entry is not shown
    assert [h["who"] for h in res.history] == ["a/b", "default/ev-old", "default/never-seen"]
    assert res.history[0]["what"] == "allocation reclaimed"

    everywhere = search("10.9.0.7")
    assert len(everywhere.freed) == 3 and everywhere.freed[0].freed.cluster.name in {"c", "other"}
    assert [h["who"] for h in everywhere.history][:3] == ["ops", "a/b", "default/ev-other"]


@pytest.mark.django_db
def test_pool_get_reads_pool_ranges_and_leaks_in_one_statement(django_assert_num_queries):
    """pool_get's plain SQL gives what the ORM gave: every field of the pool and of each
    feeding NAD range (converted: addresses, JSON, decimals), their NADs, the ORM's order."""
    c = make_cluster("c")
    pool = make_pool(c, "10.30.0.0/24", network_name="blue")
    other = make_pool(c, "10.31.0.0/24")
    zeta, alpha = make_nad(c, "zeta"), make_nad(c, "alpha")
    make_nad_range(zeta, "10.30.0.0/24", pool=pool, range_start="10.30.0.10", exclude=["x/32"])
    make_nad_range(alpha, "10.31.0.0/24", pool=other)
    make_nad_range(alpha, "10.30.0.0/24", pool=pool, range_end="10.30.0.99", gateway="10.30.0.1")
    for ip in ("10.30.0.5", "10.30.0.6"):
        make_finding(c, ip=ip, pool=pool)
    make_finding(c, ip="10.31.0.5", pool=other)
    expected = (
        IPPool.objects.select_related("cluster")
        .prefetch_related(
            Prefetch(
                "nad_ranges",
                queryset=NADRange.objects.select_related("nad").order_by(
                    "nad__namespace", "nad__name", "position"
                ),
            )
        )
        .annotate(leak_count=Count("findings", distinct=True))
        .get(pk=pool.pk)
    )
    with django_assert_num_queries(1):
        got = pool_get(pool_id=pool.pk, clusters=[c])
        assert got.cluster.name == "c"
        ranges = list(got.nad_ranges.all())
    fields = [f.attname for f in IPPool._meta.concrete_fields]
    assert [getattr(got, f) for f in fields] == [getattr(expected, f) for f in fields]
    assert got.leak_count == expected.leak_count == 2
    range_fields = [f.attname for f in NADRange._meta.concrete_fields]
    want = list(expected.nad_ranges.all())
    assert [[getattr(r, f) for f in range_fields] for r in ranges] == [
        [getattr(r, f) for f in range_fields] for r in want
    ]
    assert (
        [str(r.nad) for r in ranges]
        == [str(r.nad) for r in want]
        == ["default/alpha", "default/zeta"]
    )
    assert ranges[0].gateway == IPAddress("10.30.0.1") and ranges[1].exclude == ["x/32"]

    lone = make_pool(c, "10.32.0.0/24")
    got = pool_get(pool_id=lone.pk)
    assert list(got.nad_ranges.all()) == [] and got.leak_count == 0 and got.cluster == c
    with pytest.raises(IPPool.DoesNotExist):
        pool_get(pool_id=lone.pk + 1000)


@pytest.mark.django_db
def test_allocation_rows_one_statement_states(django_assert_num_queries):
    """A page's rows come with pod, node and findings in one statement; a key's leaked
    finding wins over its suspect one, with its own reason; another pool's findings and a
    finding of another key do not leak into a row."""
    c = make_cluster("c")
    node = make_node(c, "w1")
    pool = make_pool(c, "10.40.0.0/24")
    other = make_pool(c, "10.41.0.0/24")
    live = make_pod(c, "live", node=node)
    dying = make_pod(c, "dying", node="w-gone", deletion_timestamp=timezone.now())
    both = make_allocation(pool, "10.40.0.1", pod=live)
    make_finding(c, allocation=both, kind="stale_allocation", state="suspect", reason="maybe")
    make_finding(c, allocation=both, state="leaked", reason="surely")
    make_allocation(pool, "10.40.0.2", pod=live)
    make_allocation(pool, "10.40.0.3", pod=dying)
    make_allocation(pool, "10.40.0.4", podref="default/nobody")
    elsewhere = make_allocation(other, "10.41.0.2", pod=live)  # same key as 10.40.0.2
    make_finding(c, allocation=elsewhere, reason="other pool")
    page = pool_allocations(pool=pool)[:10]
    with django_assert_num_queries(1):
        rows = allocation_rows(page, pool=pool)
    assert [(str(r.allocation.ip), r.state, r.reason) for r in rows] == [
        ("10.40.0.1", "leaked", "surely"),
        ("10.40.0.2", "allocated", ""),
        ("10.40.0.3", "terminating", "pod is terminating"),
        ("10.40.0.4", "no pod", "no synced pod has this name"),
    ]
    assert rows[0].node is not None and (rows[0].node.pk, rows[0].node.name) == (node.pk, "w1")
    assert rows[0].pod is not None and rows[0].pod.pk == live.pk
    assert rows[2].node is None and rows[2].pod is not None and rows[2].pod.node_name == "w-gone"
    assert [r.allocation.key for r in rows] == ["1", "2", "3", "4"]
    assert rows[0].allocation.container_id == both.container_id
