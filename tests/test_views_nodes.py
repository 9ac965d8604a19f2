"""Nodes: the list and the node page with every pod's interfaces, flags and failures."""

from __future__ import annotations

import re

import pytest

from tests.factories import (
    make_cluster,
    make_demo,
    make_event,
    make_nad,
    make_node,
    make_pod,
)

pytestmark = pytest.mark.django_db


def test_node_list_full_page(viewer_client, django_assert_max_num_queries):
    demo = make_demo()
    with django_assert_max_num_queries(8):
        response = viewer_client.get("/nodes/")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html and 'id="nodes-table"' in html
    w1, w2 = demo["nodes"]
    row1 = re.search(rf'<tr id="node-{w1.pk}"[^>]*>(.*?)</tr>', html, re.S).group(1)
    row2 = re.search(rf'<tr id="node-{w2.pk}"[^>]*>(.*?)</tr>', html, re.S).group(1)
    # worker-1: web-0, web-2, web-4 and db-0 have secondary interfaces, one address each.
    held = r'class="num[^"]*"[^>]*>(\d+)<'
    assert re.findall(held, row1) == ["4", "4"]
    assert "Ready" in row1 and "NotReady" in row2
    assert re.findall(held, row2) == ["3", "3"]


def test_node_list_fragment_and_empty(viewer_client):
    html = viewer_client.get("/nodes/", HTTP_HX_REQUEST="true").content.decode()
    assert html.strip().startswith('<div id="nodes-table"') and "No nodes synced yet" in html


def test_node_list_query_count_is_fixed(viewer_client, django_assert_max_num_queries):
    c = make_cluster("c")
    nad = make_nad(c, "a", range="10.0.0.0/16")
    for i in range(60):
        node = make_node(c, f"n{i:02d}")
        make_pod(c, f"p{i}", node=node, interfaces=[("net1", nad, [f"10.0.{i}.1"], "")])
    with django_assert_max_num_queries(8):
        html = viewer_client.get("/nodes/?sort=-addresses").content.decode()
    assert html.count('<tr id="node-') == 50


@pytest.mark.parametrize("params", ["sort=bogus", "page=zz", "q=%00"])
def test_node_list_bad_params(viewer_client, params):
    make_demo()
    assert viewer_client.get(f"/nodes/?{params}").status_code == 200


def test_node_detail_full_page(viewer_client, django_assert_max_num_queries):
    demo = make_demo()
    w1 = demo["nodes"][0]
    with django_assert_max_num_queries(
        14
    ):  # +watcher retry state on the sync bar; +1: the node-slice section's NodeSlicePools
        response = viewer_client.get(f"/nodes/{w1.pk}/")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    for needle in (
        "default/web-0",
        "eth0",
        "net1",
        "172.16.0.2",
        "10.10.0.10",
        "0a:58:0a:0a:00:0a",
        ">eth1<",
        "default/macvlan-a",
        ">bond0<",
    ):
        assert needle in html, needle
    terminating = demo["terminating"]
    block = re.search(rf'<tbody id="pod-{terminating.pk}" class="([^"]+)"', html)
    assert "terminating" in block.group(1)
    assert "flag-terminating" in html
    assert "flag-notready" not in html


def test_node_detail_notready_flags_every_pod(viewer_client):
    demo = make_demo()
    html = viewer_client.get(f"/nodes/{demo['nodes'][1].pk}/").content.decode()
    assert 'id="node-notready"' in html
    assert html.count("flag-notready") == 3


def test_node_detail_fragment(viewer_client):
    demo = make_demo()
    html = viewer_client.get(
        f"/nodes/{demo['nodes'][0].pk}/", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "<html" not in html and html.strip().startswith('<div id="node-pods"')


def test_node_detail_query_count_is_fixed(viewer_client, django_assert_max_num_queries):
    c = make_cluster("c")
    node = make_node(c, "n")
    nad = make_nad(c, "a", range="10.0.0.0/16")
    for i in range(70):
        make_pod(
            c,
            f"p{i:02d}",
            node=node,
            default_ip=f"172.16.0.{i + 2}",
            interfaces=[("net1", nad, [f"10.0.0.{i + 2}"], "")],
        )
    with django_assert_max_num_queries(
        14
    ):  # +watcher retry state on the sync bar; +1: the node-slice section's NodeSlicePools
        html = viewer_client.get(f"/nodes/{node.pk}/").content.decode()
    assert html.count('<tbody id="pod-') == 50 and "page 1 of 2" in html


def test_node_detail_empty_and_pod_without_network_status(viewer_client):
    c = make_cluster("c")
    node = make_node(c, "lonely")
    html = viewer_client.get(f"/nodes/{node.pk}/").content.decode()
    assert "No pod is scheduled on this node" in html
    make_pod(c, "bare", node=node, phase="Pending")
    html = viewer_client.get(f"/nodes/{node.pk}/").content.decode()
    assert "no network-status yet" in html


def test_node_detail_attachment_failures_of_its_pods_only(viewer_client):
    c = make_cluster("c")
    n1, n2 = make_node(c, "n1"), make_node(c, "n2")
    p1 = make_pod(c, "on-n1", node=n1, phase="Pending")
    p2 = make_pod(c, "on-n2", node=n2, phase="Pending")
    make_event(c, pod=p1, message='failed to find plugin "bridgey" in path [/opt/cni/bin]')
    make_event(c, pod=p2)
    html = viewer_client.get(f"/nodes/{n1.pk}/").content.decode()
    assert "The CNI plugin binary &quot;bridgey&quot; is not installed on the node." in html
    assert "The pool is full" not in html


def test_node_missing_is_404(viewer_client):
    assert viewer_client.get("/nodes/31337/").status_code == 404


def test_node_detail_flags_requested_attachment_missing_from_network_status(viewer_client):
    c = make_cluster("c")
    node = make_node(c, "n")
    nad = make_nad(c, "a", range="10.0.0.0/24")
    make_pod(
        c,
        "half",
        node=node,
        requested_networks=[{"namespace": "default", "name": "a"}, {"namespace": "", "name": "b"}],
        interfaces=[("net1", nad, ["10.0.0.5"], "")],
    )
    html = viewer_client.get(f"/nodes/{node.pk}/").content.decode()
    assert "requested, not in network-status: default/b" in html
