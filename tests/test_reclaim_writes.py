"""ippam.kube.writes against the simulated API server: plain dicts, None for 404, and
KubeError with the HTTP status and the Kubernetes reason."""

from __future__ import annotations

import pytest

from ippam.kube.client import KubeError
from ippam.kube.writes import KubeWrites, json_pointer
from ippam.models import Cluster
from simcluster.builder import ClusterBuilder


@pytest.fixture
def writes(simcluster):
    b = ClusterBuilder(5)
    b.namespace("default")
    b.namespace("kube-system")
    b.node("node-1")
    b.whereabouts_nad("default", "net-a", "10.1.0.0/24", master="eth1")
    b.pod("default", "web-1", "node-1", [("default", "net-a")])
    simcluster.seed(b.objects())
    cluster = Cluster(name="w", kubeconfig=simcluster.kubeconfig)
    with KubeWrites(cluster) as w:
        yield w


def test_reads_return_dicts_or_none(writes):
    pod = writes.get_pod("default", "web-1")
    assert pod["metadata"]["name"] == "web-1" and "network-status" in str(
        pod["metadata"]["annotations"]
    )
    assert writes.get_pod("default", "nope") is None
    pool = writes.get_ippool("kube-system", "10.1.0.0-24")
    assert pool["spec"]["allocations"]["1"]["podref"] == "default/web-1"
    assert writes.get_reservation("kube-system", "10.1.0.1")["spec"]["podref"] == "default/web-1"
    assert writes.get_ippool("kube-system", "nope") is None


def test_a_failed_json_patch_test_is_a_422_kube_error(writes):
    ops = [{"op": "test", "path": "/spec/allocations/1/podref", "value": "default/other"}]
    with pytest.raises(KubeError) as err:
        writes.patch_ippool_json("kube-system", "10.1.0.0-24", ops)
    assert err.value.status == 422
    assert "IPPool kube-system/10.1.0.0-24" in str(err.value)


def test_json_patch_removes_the_key_when_the_tests_pass(writes):
    pool = writes.get_ippool("kube-system", "10.1.0.0-24")
    rv = pool["metadata"]["resourceVersion"]
    path = json_pointer("spec", "allocations", "1")
    after = writes.patch_ippool_json(
        "kube-system",
        "10.1.0.0-24",
        [
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
            {"op": "test", "path": f"{path}/podref", "value": "default/web-1"},
            {"op": "remove", "path": path},
        ],
    )
    assert "1" not in after["spec"].get("allocations", {})
    assert after["metadata"]["resourceVersion"] != rv


def test_delete_reservation_reports_whether_it_existed(writes):
    orip = writes.get_reservation("kube-system", "10.1.0.1")
    assert writes.delete_reservation(
        "kube-system", "10.1.0.1", resource_version=orip["metadata"]["resourceVersion"]
    )
    assert writes.delete_reservation("kube-system", "10.1.0.1") is False


def test_json_pointer_escapes():
    assert json_pointer("spec", "a/b", "c~d") == "/spec/a~1b/c~0d"


def test_delete_reservation_with_an_old_resource_version_is_refused(writes):
    with pytest.raises(KubeError) as err:
        writes.delete_reservation("kube-system", "10.1.0.1", resource_version="1")
    assert err.value.status == 409
    assert writes.get_reservation("kube-system", "10.1.0.1") is not None


# --- the live holders of an address: one paged list of every pod --------------------------


def test_holder_index_finds_every_live_pod_listing_an_address(writes, simcluster):
    from netaddr import IPAddress

    from simcluster.builder import NETWORK_STATUS

    b = ClusterBuilder(6)
    b.node("node-1")
    b.whereabouts_nad("default", "net-a", "10.1.0.0/24", master="eth1")
    wanted = IPAddress("10.1.0.50")
    for i in range(5):  # more pods than a page holds: the list is paged
        b.pod("default", f"other-{i}", "node-1", [("default", "net-a")])
    b.pod("default", "a", "node-1", [("default", "net-a")], ips=["10.1.0.50"], allocate=False)
    done = b.pod("default", "done", "node-1", [("default", "net-a")], ips=["10.1.0.50"])
    done["status"]["phase"] = "Succeeded"
    broken = b.pod("default", "broken", "node-1", [("default", "net-a")], ips=["10.1.0.51"])
    broken["metadata"]["annotations"][NETWORK_STATUS] = '[{"ips": 10.1.0.50/24 oops'
    for pod in b.objects()["pods"]:
        simcluster.create("pods", pod)
    simcluster.clear_requests()

    index = writes.holder_index({wanted, IPAddress("10.1.0.99")}, page_size=2)

    listings = {h.podref: h for h in index.holders(wanted)}
    assert set(listings) == {"default/a", "default/broken"}  # not the Succeeded pod
    assert listings["default/a"].describe(wanted) == (
        "pod default/a lists 10.1.0.50 on net1 of default/net-a"
    )
    assert listings["default/a"].nad == ("default", "net-a")
    assert not listings["default/broken"].parsed and "does not parse" in listings[
        "default/broken"
    ].describe(wanted)
    assert index.holders(IPAddress("10.1.0.99")) == []
    assert index.pods == 9 and index.requests == 5
    assert all("limit=2" in r["query"] for r in simcluster.requests), simcluster.requests


def test_holder_index_compares_ipv6_addresses_not_their_spelling(writes, simcluster):
    from netaddr import IPAddress

    b = ClusterBuilder(8)
    b.node("node-1")
    b.whereabouts_nad("default", "v6", "fd00::/64", master="eth1")
    pod = b.pod("default", "v6pod", "node-1", [("default", "v6")], ips=["fd00::5"], allocate=False)
    status = pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"]
    pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"] = status.replace(
        "fd00::5", "FD00:0:0:0::5/64"
    )
    simcluster.create("pods", pod)
    index = writes.holder_index({IPAddress("fd00::5")})
    assert [h.podref for h in index.holders(IPAddress("fd00::5"))] == ["default/v6pod"]
