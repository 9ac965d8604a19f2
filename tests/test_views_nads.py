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
from tests.html import select, select_one, text

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
    with django_assert_max_num_queries(13):  # +1: the sync bar's watcher retry state
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


# --- creating a NAD: the htmx validation partial and the create flow --------------------------

HTMX = {"HTTP_HX_REQUEST": "true"}


def nad_post(cluster, **over) -> dict:
    data = {
        "cluster": str(cluster.pk),
        "namespace": "default",
        "name": "data-net",
        "cni_version": "0.3.1",
        "cni_type": "macvlan",
        "macvlan_master": "eth1",
        "macvlan_mode": "bridge",
        "ipam_type": "whereabouts",
        "wb_range": "10.71.0.0/24",
        "wb_range_start": "10.71.0.10",
        "wb_enable_overlapping_ranges": "on",
    }
    data.update(over)
    return data


def test_the_validation_partial_counts_every_field_to_fix_at_once(admin_client_role):
    """The live preview (htmx) names as many fields to fix as it marks, all at the first
    answer: fixing one never reveals another."""
    cluster = make_cluster("prod")
    make_nad(cluster, "data-net", range="10.99.0.0/24")
    page = admin_client_role.post(
        "/nads/new/preview/",
        nad_post(
            cluster,
            wb_range_start="10.72.0.1",
            wb_exclude="10.71.0.010",
            wb_gateway="10.72.0.1",
            wb_routes="default",
        ),
        **HTMX,
    ).content
    marked = {p["data-field"] for p in select(page, "p.error[data-field]")}
    assert marked == {"name", "wb_range_start", "wb_exclude", "wb_gateway", "wb_routes"}
    assert text(select_one(page, "#nad-preview-state")) == "Not valid yet: 5 fields to fix."
    gateway = text(select_one(page, "#msg-wb_gateway"))
    assert "Gateway 10.72.0.1 is outside the range 10.71.0.0/24" in gateway


def test_the_validation_partial_warns_about_excludes_outside_the_range(admin_client_role):
    cluster = make_cluster("prod")
    page = admin_client_role.post(
        "/nads/new/preview/",
        nad_post(cluster, wb_exclude="10.99.0.0/28\n192.168.1.1"),
        **HTMX,
    ).content
    assert text(select_one(page, "#nad-preview-state")) == "Valid, with 1 warning: ready to create."
    (warning,) = select(page, "#msg-wb_exclude p.warning")
    assert "10.99.0.0/28 and 192.168.1.1 are outside the range 10.71.0.0/24" in text(warning)


@pytest.fixture
def sim_cluster(simcluster):
    from ippam.models import Cluster

    simcluster.load("empty")
    return Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig, simulated=True)


def test_a_created_nad_is_confirmed_on_the_page_it_lands_on(
    admin_client_role, sim_cluster, simcluster
):
    response = admin_client_role.post("/nads/new/", nad_post(sim_cluster), follow=True)
    nad = NetworkAttachmentDefinition.objects.get(cluster=sim_cluster, name="data-net")
    assert response.redirect_chain == [(f"/nads/{nad.pk}/", 302)]
    assert simcluster.get("network-attachment-definitions", "default", "data-net") is not None
    (message,) = select(response.content, "#nad-messages p")
    assert text(message).startswith("NAD default/data-net created in cluster sim.")
    again = admin_client_role.get(f"/nads/{nad.pk}/")  # said once, not on every visit
    assert select(again.content, "#nad-messages") == []


def test_a_create_through_htmx_is_confirmed_after_the_client_redirect(
    admin_client_role, sim_cluster
):
    response = admin_client_role.post("/nads/new/", nad_post(sim_cluster, name="via-htmx"), **HTMX)
    page = admin_client_role.get(response["HX-Redirect"]).content
    assert "NAD default/via-htmx created" in text(select_one(page, "#nad-messages"))


def test_a_refused_create_shows_no_confirmation(admin_client_role, sim_cluster, simcluster):
    simcluster.fault(r"network-attachment-definitions", status=500, count=1, method="POST")
    response = admin_client_role.post("/nads/new/", nad_post(sim_cluster))
    assert response.status_code == 200
    assert select(response.content, "#nad-messages") == []
    assert not NetworkAttachmentDefinition.objects.filter(name="data-net").exists()
