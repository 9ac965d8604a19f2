"""Named, non-blocking locks across processes and hosts: one sync of a cluster at a time (the
workers, the CLI and the watcher), one execution of a reclaim run, one leak detection.

With Redis (REDIS_URL) a lock is a Redis lock with an expiry. Without it, a Lease row is the
lock: it is claimed by a conditional UPDATE of an expired row or by an INSERT that the primary
key lets only one caller win, both atomic on PostgreSQL and SQLite alike, and no transaction
is held open for the minutes a big sync takes. Both kinds expire after `timeout` seconds, so
a worker killed while holding one does not wedge what it locked.

Take a lock outside any transaction: inside one, the Lease row is invisible to the other
processes until commit.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ippam.models import Cluster, Lease

# A sync must never outlive its lock, or a second one would start beside it.
SYNC_LOCK_SECONDS = max(600, 2 * settings.IPPAM_SYNC_INTERVAL_SECONDS)
TASK_LOCK_SECONDS = 15 * 60


@contextlib.contextmanager
def lock(name: str, *, timeout: float = TASK_LOCK_SECONDS) -> Iterator[bool]:
    """Yields True when this caller holds the lock `name`, False when another does; never
    waits. The lock is released on exit, and expires after `timeout` seconds regardless."""
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        redis_lock = client.lock(f"ippam:lock:{name}", timeout=timeout)
        acquired = bool(redis_lock.acquire(blocking=False))
        try:
            yield acquired
        finally:
            if acquired:
                # Expired and perhaps taken by another meanwhile: nothing of ours to free.
                with contextlib.suppress(redis.exceptions.LockError):
                    redis_lock.release()
            client.close()
        return
    token = secrets.token_hex(16)
    acquired = _lease_claim(name, token, timeout)
    try:
        yield acquired
    finally:
        if acquired:
            # Only our own lease: one that expired may now belong to another caller.
            Lease.objects.filter(name=name, token=token).delete()


def _lease_claim(name: str, token: str, timeout: float) -> bool:
    now = timezone.now()
    expires = now + timedelta(seconds=timeout)
    # A lease left behind by a dead holder: the WHERE is re-checked under the row lock, so of
    # two callers taking it over at once only one matches.
    if Lease.objects.filter(name=name, expires_at__lte=now).update(token=token, expires_at=expires):
        return True
    try:
        with transaction.atomic():
            Lease.objects.create(name=name, token=token, expires_at=expires)
    except IntegrityError:  # held (and not expired) by another caller
        return False
    return True


def lock_held(name: str) -> bool:
    """Whether someone holds the lock `name` now (a look, not a claim: it may change next)."""
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        try:
            return bool(client.exists(f"ippam:lock:{name}"))
        finally:
            client.close()
    return Lease.objects.filter(name=name, expires_at__gt=timezone.now()).exists()


def cluster_sync_locked(cluster: Cluster) -> bool:
    return lock_held(f"sync-{cluster.pk}")


def cluster_sync_lock(cluster: Cluster) -> contextlib.AbstractContextManager[bool]:
    """The lock every full sync of `cluster` takes (tasks, CLI, watcher, demo)."""
    return lock(f"sync-{cluster.pk}", timeout=SYNC_LOCK_SECONDS)
