"""End to end: sync a simulated cluster over HTTP, then detect. Planted leaks are all found
with the right kind and state; a clean cluster reports nothing."""

from __future__ import annotations

import pytest
from netaddr import IPAddress

from ippam.leaks import leaks_detect
from ippam.models import Alert, Cluster, Finding
from ippam.sync import cluster_sync_full
from simcluster.builder import ClusterBuilder

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_grace(settings) -> None:
    settings.IPPAM_LEAK_GRACE_SECONDS = 0


def synced(simcluster, name: str = "sim") -> Cluster:
    cluster = Cluster.objects.create(name=name, kubeconfig=simcluster.kubeconfig, simulated=True)
    cluster_sync_full(cluster=cluster)
    return cluster


def matches(finding: Finding, truth: dict) -> bool:
    if finding.kind != truth["kind"]:
        return False
    if truth["kind"] == Finding.Kind.OVERLAPPING_RANGE:
        return sorted(finding.details.get("nads", [])) == sorted(truth["nads"])
    return finding.ip == IPAddress(truth["ip"])


def test_demo_planted_findings_are_all_found_with_kind_and_state(simcluster, no_grace):
    simcluster.load("demo", seed=1)
    cluster = synced(simcluster)
    leaks_detect(cluster=cluster)  # the after-sync hook ran it too; this is idempotent
    found = list(Finding.objects.filter(cluster=cluster))
    truth = simcluster.ground_truth["findings"]
    for expected in truth:
        hits = [f for f in found if matches(f, expected)]
        assert hits, f"not found: {expected}"
        assert any(f.state == expected["state"] for f in hits), (expected, [f.reason for f in hits])
    unexplained = [f.reason for f in found if not any(matches(f, t) for t in truth)]
    assert unexplained == []


def test_demo_exhausted_pool_raises_pool_alerts(simcluster, no_grace):
    simcluster.load("demo", seed=1)
    cluster = synced(simcluster)
    exhausted = set(simcluster.ground_truth["exhausted_pools"])
    alerts = Alert.objects.filter(cluster=cluster, kind=Alert.Kind.POOL_EXHAUSTED)
    assert {a.identity.removeprefix("pool_exhausted:") for a in alerts} == exhausted


def test_a_clean_built_cluster_reports_nothing(simcluster, no_grace):
    b = ClusterBuilder(seed=3)
    b.namespace("default")
    b.namespace("kube-system")
    for i in range(3):
        b.node(f"node-{i}")
    a = ("default", "net-a")
    v6 = ("default", "net-v6")
    solo = ("default", "solo")
    b.whereabouts_nad(*a, "10.1.0.0/24", master="eth1")
    b.whereabouts_nad(*v6, "fd00:1::/64", master="eth1", network_name="v6")
    b.whereabouts_nad(*solo, "10.2.0.0/28", master="eth1", enable_overlapping_ranges=False)
    for i in range(12):
        b.pod(
            "default",
            f"app-{i}",
            f"node-{i % 3}",
            [a, v6] if i % 2 else [a, solo][: 1 + i % 3 // 2],
        )
    simcluster.seed(b.objects())
    cluster = synced(simcluster, "clean")
    result = leaks_detect(cluster=cluster)
    assert result.total == 0, list(Finding.objects.values_list("reason", flat=True))


def test_a_small_scale_scenario_reports_exactly_its_planted_leaks(simcluster, no_grace):
    from simcluster.scenarios import load_scale

    truth = load_scale(simcluster.store, seed=2, nodes=40, pods=1500, nads=60, namespaces=12)
    cluster = synced(simcluster, "scale")
    found = list(Finding.objects.filter(cluster=cluster))
    for expected in truth["findings"]:
        assert any(matches(f, expected) and f.state == expected["state"] for f in found), expected
    assert [f.reason for f in found if not any(matches(f, t) for t in truth["findings"])] == []
    assert len(truth["findings"]) >= 3
