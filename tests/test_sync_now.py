"""Sync now (issue 21, item 9): the sync bar's button and POST /api/v1/clusters/<id>/sync/
queue a full sync on the sync queue (operators and up), audited; a sync already running is
reported with its real start time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ippam.clusters import SYNC_TASK
from ippam.locks import cluster_sync_lock
from ippam.models import AuditEntry, SyncRun
from tests.factories import make_cluster
from tests.html import select, text

pytestmark = pytest.mark.django_db


def queued_tasks(callbacks) -> list[tuple[str, list]]:
    """The Celery tasks the callbacks run after commit would send, by name and arguments."""
    return [(c.args[0], c.keywords.get("args")) for c in callbacks if hasattr(c, "keywords")]


def test_an_operator_asks_for_a_sync_through_the_api(
    operator_client, django_capture_on_commit_callbacks
):
    cluster = make_cluster("demo")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = operator_client.post(f"/api/v1/clusters/{cluster.pk}/sync/")
    assert response.status_code == 202, response.content
    assert response.json()["queued"] is True
    assert queued_tasks(callbacks) == [(SYNC_TASK, [cluster.pk])]
    entry = AuditEntry.objects.get(action=AuditEntry.Action.SYNC_REQUEST)
    assert (entry.actor_name, entry.cluster_id, entry.outcome) == (
        "operator1",
        cluster.pk,
        "queued",
    )


def test_the_sync_task_is_routed_to_its_own_queue():
    from dashboard.celery import app

    route = app.amqp.router.route({}, SYNC_TASK)
    assert route["queue"].name == "sync"
    assert app.amqp.router.route({}, "ippam.tasks.notify_flush")["queue"].name == "notify"
    assert app.amqp.router.route({}, "ippam.tasks.reclaim_run")["queue"].name == "reclaim"


def test_a_running_sync_is_reported_with_its_real_start_time(
    operator_client, django_capture_on_commit_callbacks
):
    cluster = make_cluster("demo")
    started = timezone.now() - timedelta(minutes=3)
    run = SyncRun.objects.create(cluster=cluster)
    SyncRun.objects.filter(pk=run.pk).update(started_at=started)
    with cluster_sync_lock(cluster), django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = operator_client.post(f"/api/v1/clusters/{cluster.pk}/sync/")
    assert response.status_code == 409
    body = response.json()
    assert body["queued"] is False
    assert body["running_since"].replace("Z", "+00:00") == started.isoformat()
    assert f"{started:%H:%M:%S}" in body["detail"]
    assert queued_tasks(callbacks) == []
    assert AuditEntry.objects.get().outcome == "running"


def test_a_viewer_may_not_ask_for_a_sync(viewer_client):
    cluster = make_cluster("demo")
    assert viewer_client.post(f"/api/v1/clusters/{cluster.pk}/sync/").status_code == 403
    assert viewer_client.post(f"/clusters/{cluster.pk}/sync/").status_code == 403
    assert not AuditEntry.objects.exists()
    page = viewer_client.get("/")
    assert not select(page.content, "#sync-bar form.sync-now")


def test_the_sync_bar_button_queues_a_sync_and_says_so(
    operator_client, django_capture_on_commit_callbacks
):
    cluster = make_cluster("demo")
    page = operator_client.get("/pools/")
    (form,) = select(page.content, "#sync-bar form.sync-now")
    assert form.attrs["action"] == f"/clusters/{cluster.pk}/sync/"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = operator_client.post(form.attrs["action"], {"next": "/pools/"}, follow=True)
    assert response.redirect_chain[-1][0] == "/pools/"
    assert queued_tasks(callbacks) == [(SYNC_TASK, [cluster.pk])]
    (note,) = select(response.content, "#sync-bar .sync-note")
    assert "queued" in text(note)
    assert AuditEntry.objects.get().target == "cluster demo"
