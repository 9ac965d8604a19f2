"""NADs: the list and the NAD page (parsed fields, raw config, problems, attached pods)."""

from __future__ import annotations

import re

import pytest

from ippam.models import NetworkAttachmentDefinition
from tests.factories import (
    make_cluster,
    make_demo,
    make_nad,
    make_node,
    make_pod,
)

pytestmark = pytest.mark.django_db


def test_nad_list_full_page(viewer_client, django_assert_max_num_queries):
    demo = make_demo()
    with django_assert_max_num_queries(9):
        response = viewer_client.get("/nads/")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html and 'id="nads-table"' in html
    row = re.search(rf'<tr id="nad-{demo["nads"][0].pk}">(.*?)</tr>', html, re.S).group(1)
    for cell in (
        "default",
        "macvlan-a",
        "macvlan",
        "whereabouts",
        "eth1",
        "10.10.0.0/24",
        ">6<",
        "valid",
    ):
        assert cell in row, cell


def test_nad_list_fragment(viewer_client):
    make_demo()
    html = viewer_client.get("/nads/", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html and html.strip().startswith('<div id="nads-table"')


def test_nad_list_empty(viewer_client):
    make_cluster("c", synced=False)
    assert b"No NetworkAttachmentDefinitions synced yet" in viewer_client.get("/nads/").content


def test_nad_list_shows_problems_and_config_on_node(viewer_client):
    c = make_cluster("c")
    make_nad(c, "broken", range=None, config={}, problems=["spec.config is not valid JSON: line 3"])
    make_nad(c, "ondisk", range=None, config={}, config_on_node=True)
    html = viewer_client.get("/nads/").content.decode()
    assert "1 problem" in html and "config on node" in html


def test_nad_list_query_count_is_fixed(viewer_client, django_assert_max_num_queries):
    c = make_cluster("c")
    node = make_node(c, "n")
    for i in range(70):
        nad = make_nad(c, f"nad-{i:03d}", range=f"10.{i}.0.0/24")
        make_pod(c, f"p{i}", node=node, interfaces=[("net1", nad, [f"10.{i}.0.5"], "")])
    with django_assert_max_num_queries(9):
        html = viewer_client.get("/nads/?sort=-name&page=2").content.decode()
    assert html.count('<tr id="nad-') == 20 and "nad-019" in html


@pytest.mark.parametrize("params", ["sort=zzz", "page=x", "q=%ff%00", "q=10.0.0.1", "sort=-pods"])
def test_nad_list_bad_params(viewer_client, params):
    make_demo()
    assert viewer_client.get(f"/nads/?{params}").status_code == 200


def test_nad_list_filter_by_ip(viewer_client):
    make_demo()
    html = viewer_client.get("/nads/?q=10.20.0.3", HTTP_HX_REQUEST="true").content.decode()
    assert "ipvlan-b" in html and "macvlan-a" not in html


def test_nad_detail_full_page(viewer_client, django_assert_max_num_queries):
    demo = make_demo()
    nad = demo["nads"][0]
    with django_assert_max_num_queries(12):
        response = viewer_client.get(f"/nads/{nad.pk}/")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    for needle in (
        'id="nad-fields"',
        'id="nad-config"',
        'id="nad-pods"',
        'id="nad-ranges"',
        "&quot;whereabouts&quot;",
        "default/web-3",
        "10.10.0.13",
        "worker-2",
        "NotReady",
    ):
        assert needle in html, needle
    assert "  &quot;type&quot;: &quot;macvlan&quot;" in html  # pretty-printed


def test_nad_detail_fragment(viewer_client):
    demo = make_demo()
    html = viewer_client.get(
        f"/nads/{demo['nads'][0].pk}/", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "<html" not in html and html.strip().startswith('<div id="nad-pods"')


def test_nad_detail_invalid_config_shown_raw_with_problems(viewer_client):
    c = make_cluster("c")
    nad = make_nad(
        c, "bad", range=None, config={}, problems=["spec.config is not valid JSON (a # comment?)"]
    )
    NetworkAttachmentDefinition.objects.filter(pk=nad.pk).update(
        config=None, config_raw='{ "type": "macvlan", # here\n}'
    )
    html = viewer_client.get(f"/nads/{nad.pk}/").content.decode()
    assert "Not valid JSON" in html and "# here" in html and "a # comment?" in html
    assert "No pod is attached" in html


def test_nad_detail_selector_and_resource_name(viewer_client):
    c = make_cluster("c")
    nad = make_nad(
        c,
        "sriov",
        cni_type="sriov",
        master="",
        node_selector="net=sriov",
        resource_name="intel.com/sriov_netdevice",
    )
    html = viewer_client.get(f"/nads/{nad.pk}/").content.decode()
    assert "net=sriov" in html and "intel.com/sriov_netdevice" in html


def test_nad_missing_is_404(viewer_client):
    assert viewer_client.get("/nads/424242/").status_code == 404
