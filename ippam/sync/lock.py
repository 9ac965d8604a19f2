"""One sync of a cluster at a time, across workers, the CLI and the watcher.

With Redis (REDIS_URL) the lock is a Redis lock with an expiry. Without it, the cluster
row itself is the lock: a conditional UPDATE claims it (`sync_state` becomes "syncing")
only if no other sync holds it, which is atomic on PostgreSQL and SQLite alike and needs no
transaction held open for the minutes a big sync takes. Both expire after LEASE_SECONDS, so
a worker killed mid-sync does not wedge its cluster.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from ippam.models import Cluster

LEASE_SECONDS = max(600, 2 * settings.IPPAM_SYNC_INTERVAL_SECONDS)


@contextlib.contextmanager
def cluster_sync_lock(cluster: Cluster) -> Iterator[bool]:
    """Yields True when this caller holds the cluster's sync lock, False when another does."""
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        lock = client.lock(f"ippam:sync-lock:{cluster.pk}", timeout=LEASE_SECONDS, blocking=False)
        acquired = lock.acquire(blocking=False)
        try:
            yield bool(acquired)
        finally:
            if acquired:
                with contextlib.suppress(redis.exceptions.LockError):
                    lock.release()
            client.close()
        return
    now = timezone.now()
    free = (
        ~Q(sync_state=Cluster.SyncState.SYNCING)
        | Q(last_sync_started__isnull=True)
        | Q(last_sync_started__lt=now - timedelta(seconds=LEASE_SECONDS))
    )
    claimed = Cluster.objects.filter(Q(pk=cluster.pk) & free).update(
        sync_state=Cluster.SyncState.SYNCING, last_sync_started=now
    )
    try:
        yield bool(claimed)
    finally:
        if claimed:
            # The sync records ok/failed itself; this only frees a lease it left behind
            # (e.g. an exception before the sync started).
            Cluster.objects.filter(pk=cluster.pk, sync_state=Cluster.SyncState.SYNCING).update(
                sync_state=Cluster.SyncState.FAILED, sync_error="sync ended without a result"
            )
