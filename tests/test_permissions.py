"""Roles on the server: viewers read, operators also acknowledge, admins also create and reclaim.
CSRF is enforced on htmx requests as on any POST."""

from __future__ import annotations

import pytest
from django.test import Client

from ippam.models import Alert, NetworkAttachmentDefinition, ReclaimRun
from tests.factories import make_alert, make_allocation, make_cluster, make_finding, make_pool

pytestmark = [pytest.mark.django_db]

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def scene():
    cluster = make_cluster("prod")
    pool = make_pool(cluster, "10.0.0.0/24")
    finding = make_finding(
        cluster, allocation=make_allocation(pool, "10.0.0.9", podref="default/gone")
    )
    alert = make_alert(cluster, finding=finding)
    run = ReclaimRun.objects.create(cluster=cluster, actor="someone")
    return {"cluster": cluster, "pool": pool, "finding": finding, "alert": alert, "run": run}


def nad_data(scene) -> dict:
    return {
        "cluster": str(scene["cluster"].pk),
        "namespace": "default",
        "name": "x",
        "cni_version": "0.3.1",
        "cni_type": "macvlan",
        "macvlan_master": "eth1",
        "macvlan_mode": "bridge",
        "ipam_type": "none",
    }


def mutating_requests(scene) -> list[tuple[str, str, dict]]:
    run = scene["run"]
    return [
        ("get", "/nads/new/", {}),
        ("post", "/nads/new/", nad_data(scene)),
        ("post", "/nads/new/preview/", nad_data(scene)),
        ("get", "/nads/new/fieldset/?cni_type=bridge", {}),
        ("post", "/alerts/acknowledge/", {"alert": [scene["alert"].pk], "note": "n"}),
        ("post", "/reclaim/plan/", {"finding": [scene["finding"].pk]}),
        ("post", f"/reclaim/{run.pk}/execute/", {}),
        ("get", f"/reclaim/{run.pk}/", {}),
    ]


def call(client, method, url, data, **extra):
    return (
        getattr(client, method)(url, data, **extra)
        if method == "post"
        else client.get(url, **extra)
    )


def test_viewer_gets_403_on_every_mutating_endpoint(viewer_client, scene):
    for method, url, data in mutating_requests(scene):
        for extra in ({}, HTMX):
            response = call(viewer_client, method, url, data, **extra)
            assert response.status_code == 403, (method, url, extra)
    assert Alert.objects.get(pk=scene["alert"].pk).state == Alert.State.OPEN
    assert ReclaimRun.objects.count() == 1
    assert not NetworkAttachmentDefinition.objects.exists()


def test_operator_can_only_acknowledge(operator_client, scene, monkeypatch):
    for method, url, data in mutating_requests(scene):
        response = call(operator_client, method, url, data, **HTMX)
        if url == "/alerts/acknowledge/":
            assert response.status_code == 200, url
        else:
            assert response.status_code == 403, (method, url)
    assert Alert.objects.get(pk=scene["alert"].pk).state == Alert.State.ACKNOWLEDGED


def test_admin_may_do_everything(admin_client_role, scene, monkeypatch):
    from ippam.leaks import tasks

    monkeypatch.setattr(tasks.reclaim_run, "apply_async", lambda *a, **kw: None)
    monkeypatch.setattr(
        "ippam.nads.create_nad",
        lambda cluster, manifest, **kw: {
            **manifest,
            "metadata": {**manifest["metadata"], "uid": "u-1", "resourceVersion": "1"},
        },
    )
    for method, url, data in mutating_requests(scene):
        response = call(admin_client_role, method, url, data, **HTMX)
        assert response.status_code in (200, 204), (method, url, response.status_code)
    assert NetworkAttachmentDefinition.objects.filter(name="x").exists()


def test_read_pages_are_open_to_viewers(viewer_client, scene):
    assert viewer_client.get("/alerts/").status_code == 200
    assert viewer_client.get("/audit/").status_code == 200


def test_anonymous_is_sent_to_login(client, scene):
    for url in ("/nads/new/", "/alerts/", "/audit/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    response = client.post("/alerts/acknowledge/", {"alert": [scene["alert"].pk]})
    assert response.status_code in (302, 403)
    assert Alert.objects.get(pk=scene["alert"].pk).state == Alert.State.OPEN


@pytest.fixture
def csrf_client(make_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("admin2", "admin"))
    return client


def test_post_without_csrf_token_is_403_even_from_htmx(csrf_client, scene):
    for method, url, data in mutating_requests(scene):
        if method != "post":
            continue
        response = csrf_client.post(url, data, **HTMX)
        assert response.status_code == 403, url
        assert b"CSRF" in response.content
    assert Alert.objects.get(pk=scene["alert"].pk).state == Alert.State.OPEN


def test_htmx_post_with_the_token_from_hx_headers_passes(csrf_client, scene):
    page = csrf_client.get("/alerts/").content.decode()
    import re

    token = re.search(r"hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'", page).group(1)
    response = csrf_client.post(
        "/alerts/acknowledge/", {"alert": [scene["alert"].pk]}, HTTP_X_CSRFTOKEN=token, **HTMX
    )
    assert response.status_code == 200
    assert Alert.objects.get(pk=scene["alert"].pk).state == Alert.State.ACKNOWLEDGED
