"""Search: one box for an IP, a CIDR, a MAC, a pod, a NAD."""

from __future__ import annotations

import re

import pytest

from tests.factories import (
    make_audit,
    make_cluster,
    make_demo,
    make_event,
    make_orip,
)

pytestmark = pytest.mark.django_db


def test_search_full_page_and_fragment(viewer_client, django_assert_max_num_queries):
    make_demo()
    # session, user, the viewer's permissions (2), clusters; the pools; everything else about
    # the address in one statement (was 15)
    with django_assert_max_num_queries(8):  # +1: the sync bar's watcher retry state
        response = viewer_client.get("/search/?q=10.10.0.12")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html and 'id="search-results"' in html
    assert 'value="10.10.0.12"' in html  # the box keeps the query
    html = viewer_client.get("/search/?q=10.10.0.12", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html and html.strip().startswith(
        '<div id="search-results" data-kind="ip"'
    )


def test_search_ip_finds_pool_and_holders(viewer_client):
    demo = make_demo()
    html = viewer_client.get("/search/?q=10.10.0.12").content.decode()
    assert f'href="/pools/{demo["pools"][0].pk}/?q=10.10.0.12"' in html
    assert "IPPool allocation" in html and "network-status" in html
    assert "default/web-2" in html and "worker-1" in html
    # every holder row links its pod on its node's page, for each source
    holders = re.findall(r'<tr class="holder">.*?</tr>', html, re.S)
    assert len(holders) >= 2
    for row in holders:
        assert re.search(r'<a href="/nodes/(\d+)/#pod-\d+">default/web-2</a>', row), row
        assert re.search(r'<a href="/nodes/\d+/">worker-1</a>', row), row


def test_search_leaked_ip_shows_finding_and_gone_pod(viewer_client):
    make_demo()
    html = viewer_client.get("/search/?q=10.10.0.50").content.decode()
    assert "default/web-gone" in html and "(pod gone)" in html
    assert 'id="search-findings"' in html


def test_search_ip_history_from_events_and_audit(viewer_client):
    c = make_cluster("c")
    make_event(
        c,
        pod_name="old-pod",
        reason="AddedInterface",
        message="Add net1 [10.9.0.7/24] from default/a",
        ip="10.9.0.7",
    )
    make_audit(
        cluster=c, target="kube-system/10.9.0.0-24 10.9.0.7", before={"podref": "default/older-pod"}
    )
    make_audit(
        cluster=c, target="kube-system/10.9.0.0-24 10.9.0.77", before={"podref": "default/not-this"}
    )
    make_orip(c, "10.9.0.7", podref="default/old-pod")
    html = viewer_client.get("/search/?q=10.9.0.7").content.decode()
    assert 'id="search-history"' in html
    assert "default/old-pod" in html and "default/older-pod" in html
    assert "default/not-this" not in html
    assert "reservation" in html


def test_search_free_ip(viewer_client):
    make_demo()
    html = viewer_client.get("/search/?q=10.10.0.200").content.decode()
    assert "No pod holds 10.10.0.200 now" in html and "10.10.0.0/24" in html


def test_search_cidr(viewer_client):
    make_demo()
    html = viewer_client.get("/search/?q=10.20.0.0/16").content.decode()
    assert (
        "10.20.0.0/28" in html and 'id="search-allocations"' in html and "storage/ipvlan-b" in html
    )


def test_search_mac(viewer_client):
    make_demo()
    html = viewer_client.get("/search/?q=0A-58-0A-0A-00-0B").content.decode()
    assert 'id="search-interfaces"' in html and "default/web-1" in html and "worker-2" in html


@pytest.mark.parametrize(
    "q, section, needle",
    [
        ("web-3", "search-pods", "default/web-3"),
        ("storage/db", "search-pods", "storage/db-0"),
        ("ipvlan", "search-nads", "storage/ipvlan-b"),
        ("worker-2", "search-nodes", "worker-2"),
    ],
)
def test_search_names(viewer_client, q, section, needle):
    make_demo()
    html = viewer_client.get("/search/", {"q": q}).content.decode()
    assert f'id="{section}"' in html and needle in html


@pytest.mark.parametrize(
    "q",
    [
        "",
        "   ",
        "%",
        "'; drop table x; --",
        "10.0.0.0/99",
        "1.2.3.4.5",
        "::g",
        "x" * 5000,
        "fe80::1%eth0",
    ],
)
def test_search_garbage_never_fails(viewer_client, q):
    make_demo()
    assert viewer_client.get("/search/", {"q": q}).status_code == 200


def test_search_nothing_found(viewer_client):
    make_demo()
    html = viewer_client.get("/search/?q=no-such-thing").content.decode()
    assert "Nothing matches" in html


def test_search_query_count_does_not_grow(viewer_client, django_assert_max_num_queries):
    make_demo()
    for q, most in (
        ("10.10.0.12", 8),  # +1: the sync bar's watcher retry state
        ("10.10.0.0/24", 15),
        ("web", 15),
        ("0a:58:0a:0a:00:0a", 15),
    ):
        with django_assert_max_num_queries(most):
            assert viewer_client.get("/search/", {"q": q}).status_code == 200
