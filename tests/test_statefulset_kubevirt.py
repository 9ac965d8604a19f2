"""StatefulSets, KubeVirt and pods stuck Terminating (issue 13), through a real sync of the
simcluster `workloads` scenario and leak detection."""

from __future__ import annotations

import pytest
from netaddr import IPAddress

from ippam.leaks import leaks_detect
from ippam.models import Allocation, Cluster, Finding, PodInterface
from ippam.sync import cluster_sync_full

pytestmark = pytest.mark.django_db
K, S = Finding.Kind, Finding.State


@pytest.fixture
def detected(simcluster, settings) -> tuple[Cluster, list[Finding], list[dict]]:
    settings.IPPAM_LEAK_GRACE_SECONDS = 0
    simcluster.load("workloads", seed=1)
    cluster = Cluster.objects.create(name="wl", kubeconfig=simcluster.kubeconfig, simulated=True)
    cluster_sync_full(cluster=cluster, run_hooks=False)
    leaks_detect(cluster=cluster)
    return (
        cluster,
        list(Finding.objects.filter(cluster=cluster)),
        simcluster.ground_truth["findings"],
    )


def by_podref(findings: list[Finding], podref: str) -> list[Finding]:
    return [f for f in findings if f.podref == podref]


def test_exactly_the_planted_findings_with_their_states(detected):
    _, found, truth = detected
    got = sorted((f.kind, str(f.ip), f.state) for f in found)
    want = sorted((t["kind"], t["ip"], t["state"]) for t in truth)
    assert got == want, [f.reason for f in found]


def test_statefulset_pod_recreated_with_a_new_address(detected):
    cluster, found, truth = detected
    old_ip = next(t["ip"] for t in truth if t["podref"] == "db/postgres-0")
    (stale,) = by_podref(found, "db/postgres-0")
    assert (stale.kind, stale.state, stale.ip) == (K.STALE_ALLOCATION, S.LEAKED, IPAddress(old_ip))
    new_ip = (
        Allocation.objects.filter(cluster=cluster, podref="db/postgres-0")
        .exclude(ip=IPAddress(old_ip))
        .get()
        .ip
    )
    assert f"re-created under the same name, as StatefulSet pods are, and now holds {new_ip}" in (
        stale.reason
    )


def test_kubevirt_default_network_allocation_is_not_a_leak(detected):
    cluster, found, _ = detected
    podref = "vms/virt-launcher-vm1-x7k2p"
    allocation = Allocation.objects.get(cluster=cluster, podref=podref)
    # The only listing of its address is the default:true entry whereabouts' reconciler skips.
    iface = PodInterface.objects.get(pod__name="virt-launcher-vm1-x7k2p", pod__cluster=cluster)
    assert iface.default and iface.nad is not None and iface.nad.name == "vm-pod-net"
    assert allocation.ip is not None
    assert by_podref(found, podref) == []


def test_pods_stuck_terminating_on_dead_nodes_are_suspect_never_leaked(detected):
    _, found, _ = detected
    for podref, node_words in (
        ("batch/cruncher-0", "worker-dead, which is NotReady"),
        ("batch/cruncher-1", "worker-gone, which no longer exists"),
    ):
        (finding,) = by_podref(found, podref)
        assert finding.state == S.SUSPECT
        assert "stuck terminating" in finding.reason and node_words in finding.reason
