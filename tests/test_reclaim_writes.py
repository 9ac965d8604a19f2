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
