"""ippam.kube: paged raw lists and watches through the official client over a real socket."""

from __future__ import annotations

import threading

import pytest

from ippam.kube.client import KubeError, api_client_for
from ippam.kube.resources import (
    NODES,
    NODESLICEPOOLS,
    PODS,
    WatchExpired,
    objects_list,
    objects_watch,
)
from ippam.models import Cluster
from simcluster.builder import ClusterBuilder


@pytest.fixture
def api(simcluster):
    client = api_client_for(Cluster(name="sim", kubeconfig=simcluster.kubeconfig))
    yield client
    client.close()


def test_lists_page_with_limit_and_continue_and_return_plain_dicts(simcluster, api):
    simcluster.load("demo")
    simcluster.clear_requests()
    listing = objects_list(api, PODS, page_size=100)
    pages = list(listing.pages())

    total = len(simcluster.list("pods"))
    assert [len(p.items) for p in pages] == [100, 100, 100, total - 300]
    assert all(isinstance(item, dict) for p in pages for item in p.items)
    assert listing.count == total and listing.resource_version.isdigit() and not listing.absent
    queries = [r["query"] for r in simcluster.requests if r["path"] == "/api/v1/pods"]
    assert len(queries) == 4 and all("limit=100" in q for q in queries)
    assert sum("continue=" in q for q in queries) == 3


def test_a_missing_optional_crd_is_absent_not_an_error(simcluster, api):
    simcluster.remove_crd("nodeslicepools")
    listing = objects_list(api, NODESLICEPOOLS)
    assert listing.all() == [] and listing.absent


def test_errors_carry_the_kubernetes_status_message(simcluster, api):
    simcluster.fault(r"^/api/v1/nodes$", status=403, count=1)
    with pytest.raises(KubeError) as caught:
        objects_list(api, NODES).all()
    assert caught.value.status == 403
    assert (
        caught.value.message.startswith("listing nodes: ") and "(HTTP 403)" in caught.value.message
    )


def test_watch_streams_changes_from_a_resource_version(simcluster, api):
    b = ClusterBuilder(seed=4)
    b.node("n1")
    listing = objects_list(api, PODS)
    listing.all()
    created = threading.Timer(0.3, lambda: simcluster.create("pods", b.pod("lab", "w1", "n1", [])))
    created.start()
    seen = []
    for event in objects_watch(
        api, PODS, resource_version=listing.resource_version, timeout_seconds=3
    ):
        if event.type != "BOOKMARK":
            seen.append((event.type, event.object["metadata"]["name"]))
            break
    assert seen == [("ADDED", "w1")]


def test_a_too_old_resource_version_raises_watch_expired(simcluster, api):
    listing = objects_list(api, PODS)
    listing.all()
    simcluster.compact()
    with pytest.raises(WatchExpired):
        for _event in objects_watch(
            api, PODS, resource_version=listing.resource_version, timeout_seconds=2
        ):
            pass
