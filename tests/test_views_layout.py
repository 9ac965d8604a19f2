"""The layout every page shares: login, navigation, cluster switcher, sync state, banners."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ippam.models import Cluster
from tests.factories import (
    make_cluster,
    make_demo,
    make_pool,
)

pytestmark = pytest.mark.django_db

PAGES = ["/", "/pools/", "/nads/", "/nodes/", "/leaks/", "/search/?q=x"]


@pytest.mark.parametrize("url", PAGES)
def test_every_page_requires_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("url", PAGES)
def test_every_page_renders_with_no_cluster_at_all(viewer_client, url):
    response = viewer_client.get(url)
    assert response.status_code == 200
    assert b"No cluster is configured yet" in response.content


def test_navigation_and_stable_ids(viewer_client):
    make_cluster("alpha")
    html = viewer_client.get("/").content.decode()
    for needle in (
        'id="main-nav"',
        'id="search-box"',
        'id="cluster-switcher"',
        'id="sync-bar"',
        'href="/pools/"',
        'href="/nads/"',
        'href="/nodes/"',
        'href="/leaks/"',
    ):
        assert needle in html


def test_csrf_header_is_on_body_for_htmx(viewer_client):
    html = viewer_client.get("/").content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in html


def test_nad_create_and_audit_slots_hidden_for_viewer(viewer_client):
    html = viewer_client.get("/").content.decode()
    assert "nav-nad-create" not in html and "nav-audit" not in html


def test_cluster_switcher_remembers_the_choice_in_the_session(viewer_client):
    a, b = make_cluster("alpha"), make_cluster("beta")
    make_pool(a, "10.1.0.0/24")
    make_pool(b, "10.2.0.0/24")
    html = viewer_client.get("/pools/?cluster=beta").content.decode()
    assert "10.2.0.0/24" in html and "10.1.0.0/24" not in html
    html = viewer_client.get("/pools/").content.decode()
    assert "10.2.0.0/24" in html and "10.1.0.0/24" not in html
    assert '<option value="beta" selected>' in html
    html = viewer_client.get("/pools/?cluster=all").content.decode()
    assert "10.2.0.0/24" in html and "10.1.0.0/24" in html


def test_unknown_cluster_in_query_falls_back_to_all(viewer_client):
    make_cluster("alpha")
    response = viewer_client.get("/?cluster=<script>nope")
    assert response.status_code == 200
    assert b"<script>nope" not in response.content


def test_removed_cluster_in_session_is_forgotten(viewer_client):
    c = make_cluster("gone")
    viewer_client.get("/?cluster=gone")
    c.delete()
    assert viewer_client.get("/").status_code == 200
    assert "ippam_cluster" not in viewer_client.session


def test_cluster_that_never_synced_says_so_and_looks_stale(viewer_client):
    make_cluster("fresh", synced=False)
    html = viewer_client.get("/?cluster=fresh").content.decode()
    assert "never synced" in html
    assert '<main id="content" class="stale">' in html


def test_failed_sync_shows_the_error(viewer_client):
    make_cluster(
        "broken",
        synced=False,
        sync_state=Cluster.SyncState.UNREACHABLE,
        sync_error="connection refused\ntrace",
    )
    html = viewer_client.get("/").content.decode()
    assert "unreachable: connection refused" in html
    assert 'class="sync error"' in html


def test_old_sync_is_stale(viewer_client, settings):
    settings.IPPAM_STALE_AFTER_SECONDS = 60
    old = timezone.now() - timedelta(minutes=10)
    make_cluster("old", last_good_sync=old, last_sync_finished=old)
    html = viewer_client.get("/").content.decode()
    assert 'class="sync stale"' in html and "data is stale" in html
    assert '<main id="content" class="stale">' in html


def test_fresh_cluster_is_not_stale(viewer_client):
    make_cluster("ok")
    html = viewer_client.get("/").content.decode()
    assert 'class="sync ok"' in html
    assert '<main id="content" class="">' in html


def test_simulated_cluster_has_a_banner(viewer_client):
    make_demo()
    html = viewer_client.get("/").content.decode()
    assert 'id="simulated-banner-demo"' in html and "is simulated" in html


def test_real_cluster_has_no_banner(viewer_client):
    make_cluster("prod")
    assert b"is simulated" not in viewer_client.get("/").content


def test_fragments_vary_on_htmx_headers(viewer_client):
    response = viewer_client.get("/pools/")
    assert "HX-Request" in response["Vary"]


def test_admin_sees_new_nad_and_audit_slots(admin_client_role):
    html = admin_client_role.get("/").content.decode()
    assert 'id="nav-nad-create" href="/nads/new/"' in html
    assert 'id="nav-audit" href="/audit/"' in html
