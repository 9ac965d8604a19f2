"""Celery tasks: thin interfaces that take ids, take a lock, and call a service."""

from __future__ import annotations

import logging
import random
from functools import partial

from celery import shared_task
from django.db import transaction

from ippam.clusters import cluster_waiting_for_server
from ippam.kube.client import KubeError
from ippam.models import Cluster

logger = logging.getLogger(__name__)

SYNC_MAX_RETRIES = 5


@shared_task(name="ippam.tasks.ping")
def ping(message: str) -> dict[str, str]:
    """Wiring check: proves a worker consumes from the broker and returns results."""
    return {"pong": message}


def retry_countdown(retries: int) -> float:
    """Exponential backoff with jitter: ~10 s, 20 s, 40 s ... capped at 5 minutes."""
    return min(300.0, 10.0 * 2**retries) * random.uniform(0.8, 1.2)


@shared_task(
    bind=True, name="ippam.tasks.sync_cluster", max_retries=SYNC_MAX_RETRIES, acks_late=True
)
def sync_cluster(self, cluster_id: int) -> dict[str, object]:
    """One full sync of one cluster. Idempotent; a second delivery while one runs is a no-op."""
    from ippam.locks import cluster_sync_lock
    from ippam.sync import cluster_sync_full

    cluster = Cluster.objects.filter(pk=cluster_id).first()
    if cluster is None:
        return {"status": "gone", "cluster": cluster_id}
    if not cluster.enabled:
        return {"status": "disabled", "cluster": cluster.name}
    if cluster_waiting_for_server(cluster):
        # The demo cluster before simcluster answers: its server runs the first sync itself.
        return {"status": "waiting", "cluster": cluster.name}
    with cluster_sync_lock(cluster) as held:
        if not held:
            return {"status": "locked", "cluster": cluster.name}
        try:
            run = cluster_sync_full(cluster=cluster)
        except KubeError as exc:
            # cluster_sync_full has marked the cluster unreachable/failed with the error and
            # kept its last good data; try again later, then give up until the next beat.
            if self.request.called_directly or self.request.retries >= SYNC_MAX_RETRIES:
                return {"status": "failed", "cluster": cluster.name, "error": str(exc)}
            raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries)) from exc
    return {"status": "ok", "cluster": cluster.name, "run": run.pk, "counts": run.counts}


@shared_task(name="ippam.tasks.sync_all_clusters")
def sync_all_clusters() -> list[int]:
    """Fan out one sync_cluster per enabled cluster; workers take them in parallel."""
    ids = list(Cluster.objects.filter(enabled=True).values_list("pk", flat=True))
    for cluster_id in ids:
        transaction.on_commit(partial(sync_cluster.delay, cluster_id))
    return ids


NAD_SETTLE_MAX_RETRIES = 6


@shared_task(bind=True, name="ippam.tasks.settle_nad_create", max_retries=NAD_SETTLE_MAX_RETRIES)
def settle_nad_create(self, entry_id: int) -> dict[str, object]:
    """Settle a NAD create whose outcome is "unknown" (the create and the re-read both got no
    answer): re-read the NAD and record in the audit whether it was created. Idempotent."""
    from ippam.nads import nad_create_settle

    try:
        outcome = nad_create_settle(entry_id=entry_id)
    except KubeError as exc:
        if self.request.called_directly or self.request.retries >= NAD_SETTLE_MAX_RETRIES:
            return {"outcome": "unknown", "entry": entry_id, "error": str(exc)}
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries)) from exc
    return {"outcome": outcome, "entry": entry_id}


DELIVERY_MAX_RETRIES = 6


@shared_task(
    bind=True,
    name="ippam.tasks.deliver_alert_notification",
    max_retries=DELIVERY_MAX_RETRIES,
    acks_late=True,
)
def deliver_alert_notification(self, delivery_id: int) -> dict[str, object]:
    """Send one alert notification (ippam.notify); a second delivery of the task sends nothing."""
    from ippam.notify import DeliveryError, delivery_send

    try:
        outcome = delivery_send(delivery_id=delivery_id)
    except DeliveryError as exc:
        if self.request.called_directly or self.request.retries >= DELIVERY_MAX_RETRIES:
            return {"outcome": "failed", "delivery": delivery_id, "error": str(exc)}
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries)) from exc
    return {"outcome": outcome, "delivery": delivery_id}


@shared_task(name="ippam.tasks.notify_flush")
def notify_flush() -> dict[str, object]:
    """Send the due alert notifications, one POST (or e-mail) per group (ippam.notify).
    Queued after alert changes and by beat. One flush at a time: two would split each
    group's rows between them (more, smaller POSTs); a second one finds the lock taken and
    leaves the rows to the running one or the next. The lock expires with the claim
    timeout, so a worker killed mid-flush holds nothing back for long."""
    from django.conf import settings

    from ippam.locks import lock
    from ippam.notify import deliveries_flush

    timeout = float(settings.IPPAM_ALERT_CLAIM_TIMEOUT_SECONDS)
    with lock("notify-flush", timeout=timeout) as held:
        if not held:
            return {"status": "locked"}
        result = deliveries_flush()
    return {
        "status": "ok",
        "sent": result.sent,
        "failed": result.failed,
        "suppressed": result.suppressed,
        "posts": result.posts,
        "held": result.held,
        "errors": result.errors[:5],
    }


@shared_task(name="ippam.tasks.pool_history_retain")
def pool_history_retain() -> dict[str, int]:
    """Downsample and expire pool history samples (beat, hourly); idempotent."""
    from ippam.history import history_retain

    return history_retain()
