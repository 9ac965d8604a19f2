"""Each leak rule on rows built in the database; grace and suspicion."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from netaddr import IPAddress

from ippam.leaks import leaks_detect
from ippam.models import Finding, Pod
from tests.leak_factories import Rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(db) -> Rows:
    return Rows()


@pytest.fixture
def no_grace(settings) -> None:
    settings.IPPAM_LEAK_GRACE_SECONDS = 0


K = Finding.Kind


def findings(rows: Rows, kind: str | None = None) -> list[Finding]:
    qs = Finding.objects.filter(cluster=rows.cluster)
    if kind:
        qs = qs.filter(kind=kind)
    return list(qs.order_by("identity"))


def healthy(rows: Rows) -> dict:
    """A clean network: two pods, each allocated the address its network-status lists."""
    rows.node("node-1")
    nad = rows.nad("default/net-a", "10.0.0.0/24")
    pool = rows.pool("10.0.0.0/24")
    rows.pod("default/web-1", [(nad, "net1", ["10.0.0.1"])])
    rows.pod("default/web-2", [(nad, "net1", ["10.0.0.2"])])
    rows.alloc(pool, "10.0.0.1", "default/web-1")
    rows.alloc(pool, "10.0.0.2", "default/web-2")
    return {"nad": nad, "pool": pool}


def test_a_clean_cluster_has_no_findings(rows, no_grace):
    healthy(rows)
    result = leaks_detect(cluster=rows.cluster)
    assert result.total == 0
    assert findings(rows) == []


def test_orphaned_allocation_names_the_gone_pod_and_pool(rows, no_grace):
    net = healthy(rows)
    rows.alloc(net["pool"], "10.0.0.7", "default/web-3")
    leaks_detect(cluster=rows.cluster)
    [finding] = findings(rows)
    assert finding.kind == K.ORPHANED_ALLOCATION
    assert finding.state == Finding.State.LEAKED
    assert finding.identity == "orphaned_allocation:kube-system/10.0.0.0-24:7"
    assert finding.ip == IPAddress("10.0.0.7")
    assert finding.pool == net["pool"] and finding.allocation_key == "7"
    assert finding.reason.startswith(
        "10.0.0.7 in kube-system/10.0.0.0-24 is allocated to default/web-3, which no longer exists"
    )


def test_allocation_without_podref_is_only_suspect(rows, no_grace):
    net = healthy(rows)
    rows.alloc(net["pool"], "10.0.0.8", "", reservation=False)
    leaks_detect(cluster=rows.cluster)
    [finding] = findings(rows)
    assert (finding.kind, finding.state) == (K.ORPHANED_ALLOCATION, Finding.State.SUSPECT)
    assert "no podref" in finding.reason


def test_stale_allocation_when_the_running_pod_does_not_list_the_address(rows, no_grace):
    net = healthy(rows)
    rows.alloc(net["pool"], "10.0.0.9", "default/web-1")  # web-1 lists only 10.0.0.1
    leaks_detect(cluster=rows.cluster)
    [finding] = findings(rows)
    assert (finding.kind, finding.state) == (K.STALE_ALLOCATION, Finding.State.LEAKED)
    assert finding.node_name == "node-1"
    assert "default/web-1" in finding.reason and "net1: 10.0.0.1" in finding.reason


@pytest.mark.parametrize(
    "pod_kwargs, ready, words",
    [
        ({"phase": "Pending"}, True, "Pending"),
        ({"deleting": timezone.now()}, True, "terminating"),
        ({}, False, "NotReady"),
        ({"default_attachment": True}, True, "default network"),
    ],
)
def test_stale_allocation_of_a_doubtful_pod_is_suspect(rows, no_grace, pod_kwargs, ready, words):
    rows.node("node-1", ready=ready)
    nad = rows.nad("default/net-a", "10.0.0.0/24")
    pool = rows.pool("10.0.0.0/24")
    rows.pod("default/web-1", [(nad, "net1", ["10.0.0.1"])], **pod_kwargs)
    rows.alloc(pool, "10.0.0.1", "default/web-1")
    rows.alloc(pool, "10.0.0.9", "default/web-1")
    leaks_detect(cluster=rows.cluster)
    stale = findings(rows, K.STALE_ALLOCATION)
    assert stale and all(f.state == Finding.State.SUSPECT for f in stale)
    assert words in stale[-1].reason


def test_completed_pods_are_not_stale(rows, no_grace):
    rows.node("node-1")
    nad = rows.nad("default/net-a")
    pool = rows.pool("10.0.0.0/24")
    rows.pod("default/job-1", [(nad, "net1", ["10.0.0.1"])], phase="Succeeded")
    rows.alloc(pool, "10.0.0.3", "default/job-1")
    leaks_detect(cluster=rows.cluster)
    assert findings(rows, K.STALE_ALLOCATION) == []


def test_untracked_address_on_a_whereabouts_nad(rows, no_grace):
    net = healthy(rows)
    rows.pod("default/db-1", [(net["nad"], "net1", ["10.0.0.50"])])
    static = rows.nad("default/static", None)  # not whereabouts-managed: never untracked
    rows.pod("default/db-2", [(static, "net1", ["192.168.9.9"])])
    leaks_detect(cluster=rows.cluster)
    [finding] = findings(rows)
    assert (finding.kind, finding.state) == (K.UNTRACKED_ADDRESS, Finding.State.LEAKED)
    assert finding.podref == "default/db-1" and finding.nad == net["nad"]
    assert finding.pool == net["pool"]
    assert "not allocated in any IPPool" in finding.reason


def test_address_allocated_in_a_pool_of_another_network_is_still_untracked(rows, no_grace):
    rows.node("node-1")
    nad_a = rows.nad("default/net-a", "10.0.0.0/24", network_name="a")
    nad_b = rows.nad("default/net-b", "10.0.0.0/24", network_name="b")
    rows.pod("default/web-1", [(nad_a, "net1", ["10.0.0.1"])])
    rows.alloc(rows.pool("10.0.0.0/24", "b"), "10.0.0.1", "default/web-1")
    leaks_detect(cluster=rows.cluster)
    kinds = {f.kind for f in findings(rows)}
    assert K.UNTRACKED_ADDRESS in kinds
    assert nad_b  # both NADs exist: also an overlapping range
    assert K.OVERLAPPING_RANGE in kinds


def test_duplicate_address_on_two_live_pods(rows, no_grace):
    net = healthy(rows)
    rows.pod("default/web-9", [(net["nad"], "net1", ["10.0.0.1"])])
    rows.alloc(net["pool"], "10.0.0.3", "default/web-9")
    leaks_detect(cluster=rows.cluster)
    [dup] = findings(rows, K.DUPLICATE_ADDRESS)
    assert dup.ip == IPAddress("10.0.0.1")
    assert dup.details["pods"] == ["default/web-1", "default/web-9"]
    assert "2 live pods" in dup.reason


def test_duplicate_address_allocated_in_two_pools_of_one_network(rows, no_grace):
    rows.node("node-1")
    nad16 = rows.nad("default/wide", "10.0.0.0/16", network_name="n", overlapping=False)
    nad24 = rows.nad("default/narrow", "10.0.0.0/24", network_name="n", overlapping=False)
    rows.pod("default/a", [(nad16, "net1", ["10.0.0.5"])])
    rows.pod("default/b", [(nad24, "net1", ["10.0.0.5"])])
    rows.alloc(rows.pool("10.0.0.0/16", "n"), "10.0.0.5", "default/a")
    rows.alloc(rows.pool("10.0.0.0/24", "n"), "10.0.0.5", "default/b")
    leaks_detect(cluster=rows.cluster)
    dups = findings(rows, K.DUPLICATE_ADDRESS)
    assert {f.identity for f in dups} == {
        "duplicate_address:pools:n:10.0.0.5",
        "duplicate_address:pods:wb:n:10.0.0.5",
    }
    # Same network_name, but neither keeps reservations: nothing keeps the pools apart.
    [overlap] = findings(rows, K.OVERLAPPING_RANGE)
    assert overlap.details["cause"] == "reservations off"


def test_orphaned_reservation_without_pod_or_allocation(rows, no_grace):
    healthy(rows)
    rows.orip("10.0.0.20", "default/gone")
    leaks_detect(cluster=rows.cluster)
    [finding] = findings(rows)
    assert (finding.kind, finding.state) == (K.ORPHANED_RESERVATION, Finding.State.LEAKED)
    assert finding.reservation.name == "10.0.0.20"
    assert "no longer exists" in finding.reason


def test_reservation_of_a_live_pod_without_allocation(rows, no_grace):
    healthy(rows)
    rows.orip("10.0.0.21", "default/web-1")
    leaks_detect(cluster=rows.cluster)
    [finding] = findings(rows)
    assert finding.kind == K.ORPHANED_RESERVATION and finding.podref == "default/web-1"
    assert "no IPPool allocates" in finding.reason


def test_allocation_missing_its_reservation_only_with_overlapping_ranges(rows, no_grace):
    rows.node("node-1")
    on = rows.nad("default/on", "10.0.0.0/24")
    off = rows.nad("default/off", "10.1.0.0/24", network_name="off", overlapping=False)
    rows.pod("default/a", [(on, "net1", ["10.0.0.1"])])
    rows.pod("default/b", [(off, "net1", ["10.1.0.1"])])
    rows.alloc(rows.pool("10.0.0.0/24"), "10.0.0.1", "default/a", reservation=False)
    rows.alloc(rows.pool("10.1.0.0/24", "off"), "10.1.0.1", "default/b", reservation=False)
    leaks_detect(cluster=rows.cluster)
    [finding] = findings(rows)
    assert finding.identity == "orphaned_reservation:missing:kube-system/10.0.0.0-24:1"


def test_overlapping_ranges_with_different_network_names(rows, no_grace):
    rows.nad("team-a/net", "10.10.0.0/16", network_name="a")
    rows.nad("team-b/net", "10.10.4.0/24", network_name="b")
    rows.nad("team-c/net", "10.11.0.0/24", network_name="c")  # disjoint
    rows.nad("team-d/net", "10.10.0.0/16", network_name="a")  # same scope: shares the pool
    leaks_detect(cluster=rows.cluster)
    overlaps = findings(rows, K.OVERLAPPING_RANGE)
    assert [f.details["nads"] for f in overlaps] == [
        ["team-a/net", "team-b/net"],
        ["team-b/net", "team-d/net"],
    ]
    assert "give them the same network_name or disjoint ranges" in overlaps[0].reason


def test_grace_holds_findings_about_a_just_created_pod(rows, settings):
    settings.IPPAM_LEAK_GRACE_SECONDS = 120
    now = timezone.now()
    rows.node("node-1")
    nad = rows.nad("default/net-a")
    pool = rows.pool("10.0.0.0/24")
    rows.pod("default/new", [(nad, "net1", [])], created_at=now - dt.timedelta(seconds=30))
    rows.alloc(pool, "10.0.0.4", "default/new")
    result = leaks_detect(cluster=rows.cluster, now=now)
    assert findings(rows) == [] and result.held_in_grace == 1
    later = now + dt.timedelta(seconds=100)
    leaks_detect(cluster=rows.cluster, now=later)
    assert [f.kind for f in findings(rows)] == [K.STALE_ALLOCATION]


def test_grace_holds_an_orphan_whose_reservation_is_new(rows, settings):
    settings.IPPAM_LEAK_GRACE_SECONDS = 120
    now = timezone.now()
    healthy(rows)
    pool = rows.pool("10.0.0.0/24")
    rows.alloc(pool, "10.0.0.30", "default/not-listed-yet", reservation=False)
    rows.orip("10.0.0.30", "default/not-listed-yet", created_at=now - dt.timedelta(seconds=5))
    rows.alloc(pool, "10.0.0.31", "default/long-gone")  # reservation from days ago
    leaks_detect(cluster=rows.cluster, now=now)
    assert [f.podref for f in findings(rows)] == ["default/long-gone"]


def test_grace_zero_turns_it_off(rows, settings):
    settings.IPPAM_LEAK_GRACE_SECONDS = 0
    rows.node("node-1")
    nad = rows.nad("default/net-a")
    rows.pod("default/new", [(nad, "net1", [])], created_at=timezone.now())
    rows.alloc(rows.pool("10.0.0.0/24"), "10.0.0.4", "default/new")
    leaks_detect(cluster=rows.cluster)
    assert len(findings(rows)) == 1


def test_upsert_keeps_first_seen_and_deletes_what_is_gone(rows, no_grace):
    net = healthy(rows)
    rows.alloc(net["pool"], "10.0.0.7", "default/web-3")
    t0 = timezone.now() - dt.timedelta(minutes=10)
    leaks_detect(cluster=rows.cluster, now=t0)
    first = findings(rows)[0]
    t1 = timezone.now()
    leaks_detect(cluster=rows.cluster, now=t1)
    again = findings(rows)[0]
    assert again.pk == first.pk and again.first_seen == t0 and again.last_seen == t1
    rows.pod("default/web-3", [(net["nad"], "net1", ["10.0.0.7"])])
    result = leaks_detect(cluster=rows.cluster)
    assert findings(rows) == [] and result.resolved == 1


def test_detection_query_count_does_not_grow_with_the_cluster(
    rows, no_grace, django_assert_max_num_queries
):
    net = healthy(rows)
    for i in range(40, 80):
        rows.alloc(net["pool"], f"10.0.0.{i}", f"default/gone-{i}")
        pod = rows.pod(f"default/stale-{i}", [(net["nad"], "net1", [])])
        rows.alloc(net["pool"], f"10.0.0.{i + 100}", pod.podref)
    rows.pod("default/dup", [(net["nad"], "net1", ["10.0.0.1"])])
    with django_assert_max_num_queries(40):
        result = leaks_detect(cluster=rows.cluster)
    assert result.counts[K.ORPHANED_ALLOCATION] == 40
    assert result.counts[K.STALE_ALLOCATION] == 40
    assert Pod.objects.count() == 43


@pytest.mark.django_db(transaction=True)
def test_rules_give_the_same_answer_on_parallel_connections():
    from ippam.leaks.rules.registry import _parallel_possible, candidates_compute

    if not _parallel_possible():
        pytest.skip("rules run concurrently on PostgreSQL only")
    rows = Rows("par")
    net = healthy(rows)
    rows.alloc(net["pool"], "10.0.0.7", "default/web-3")
    rows.alloc(net["pool"], "10.0.0.9", "default/web-1")
    rows.pod("default/db-1", [(net["nad"], "net1", ["10.0.0.50"])])
    now = timezone.now()
    sequential = candidates_compute(cluster=rows.cluster, now=now, parallel=False)
    parallel = candidates_compute(cluster=rows.cluster, now=now, parallel=True)
    assert sorted(c.identity for c in parallel) == sorted(c.identity for c in sequential)
    assert len(sequential) == 3


def test_an_address_outside_the_nads_ranges_is_not_whereabouts_business(rows, no_grace):
    net = healthy(rows)
    rows.pod("default/static-ip", [(net["nad"], "net1", ["192.168.50.5"])])
    leaks_detect(cluster=rows.cluster)
    assert findings(rows) == []
