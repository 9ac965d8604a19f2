"""Asking for a full sync of a cluster now (the sync bar's button and the API), audited."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import partial

from celery import current_app
from django.db import transaction

from ippam.audit import Actor, audit_record
from ippam.clusters import SYNC_TASK
from ippam.locks import cluster_sync_locked
from ippam.models import AuditEntry, Cluster
from ippam.selectors.clusters import sync_running_since


@dataclass(frozen=True)
class SyncRequest:
    queued: bool
    # When the sync that is running started (None: queued, or a watcher's batch holds the lock).
    running_since: dt.datetime | None
    message: str


def cluster_sync_request(*, cluster: Cluster, actor: Actor) -> SyncRequest:
    """Queue one full sync of `cluster` on the sync queue (its own queue: a burst of
    notifications or reclaim runs does not hold it back), or say that one is running and
    since when. Either way an audit entry records who asked."""
    if not cluster.enabled:
        request = SyncRequest(
            False, None, f"cluster {cluster.name} is disabled; enable it to sync it"
        )
        outcome = "disabled"
    elif cluster_sync_locked(cluster):
        since = sync_running_since(cluster)
        when = f" (started {since:%Y-%m-%d %H:%M:%S} UTC)" if since else ""
        request = SyncRequest(
            False,
            since,
            f"a sync of {cluster.name} is already running{when}; it shows here when done",
        )
        outcome = "running"
    else:
        request = SyncRequest(True, None, f"a full sync of {cluster.name} is queued")
        outcome = "queued"
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=AuditEntry.Action.SYNC_REQUEST,
            cluster=cluster,
            target=f"cluster {cluster.name}",
            outcome=outcome,
            message=request.message,
        )
        if request.queued:
            # By name (ippam.tasks imports the services' modules); routed to the sync queue.
            transaction.on_commit(partial(current_app.send_task, SYNC_TASK, args=[cluster.pk]))
    return request
