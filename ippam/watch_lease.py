"""Cluster leases for sharded watchers: which `manage.py watch` follows a cluster.

Every watcher process has an identity (host-pid-random) and follows only the clusters whose
lease it holds. A lease is a database row (WatcherLease), so it needs nothing but the
database every process already shares, and works the same on PostgreSQL and SQLite:

- claim: a conditional UPDATE that succeeds only when the lease expired or was released;
  it increments `generation`, the fencing token of this tenure;
- renew: every few seconds, pushes `expires_at` forward while holder and generation match;
- fence: every batch is applied in a transaction that first re-checks holder, generation
  and expiry with an UPDATE on the lease row. On PostgreSQL that UPDATE also locks the row
  until the batch commits, so a takeover waits for it and then sees the renewed expiry;
  SQLite serialises all writers anyway. A watcher that stalled past its lease (GC pause,
  network partition) therefore cannot write once another holds the cluster;
- release: on a clean shutdown, so the others take over at once instead of after the TTL.

Fair share: with W live watchers (WatcherProcess rows not expired) and C clusters a
watcher holds at most ceil(C / W) and gives back the surplus, so a watcher that joins
gets work without anyone being told.

Clocks: expiry is compared with each process's own clock; hosts are expected to run NTP,
and the TTL (15 s) is far larger than their skew.
"""

from __future__ import annotations

import math
import os
import secrets
import socket
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.db.models import F, Q
from django.utils import timezone

from ippam.models import WatcherLease, WatcherProcess

LEASE_SECONDS = 15.0  # a dead watcher's clusters are taken over within TTL + one poll
RENEW_SECONDS = 3.0


class LeaseLost(Exception):
    """The batch's watcher no longer holds the cluster: it must not write."""


def watcher_identity() -> str:
    """host-pid-random: unique across restarts and across pods with the same hostname."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def watcher_heartbeat(*, identity: str, lease_seconds: float = LEASE_SECONDS) -> int:
    """Say this watcher is alive; returns how many watchers are (itself included)."""
    now = timezone.now()
    expires = now + timedelta(seconds=lease_seconds)
    if not WatcherProcess.objects.filter(identity=identity).update(
        heartbeat_at=now, expires_at=expires
    ):
        WatcherProcess.objects.get_or_create(
            identity=identity, defaults={"heartbeat_at": now, "expires_at": expires}
        )
    WatcherProcess.objects.filter(expires_at__lt=now - timedelta(hours=1)).delete()
    return WatcherProcess.objects.filter(expires_at__gt=now).count()


def watcher_gone(*, identity: str) -> None:
    WatcherProcess.objects.filter(identity=identity).delete()


def fair_share(*, clusters: int, watchers: int) -> int:
    return math.ceil(clusters / max(1, watchers))


def leases_ensure(cluster_ids: Iterable[int]) -> None:
    """A free lease row for every cluster that has none yet."""
    ids = list(cluster_ids)
    have = set(WatcherLease.objects.filter(cluster_id__in=ids).values_list("cluster_id", flat=True))
    WatcherLease.objects.bulk_create(
        [WatcherLease(cluster_id=pk) for pk in ids if pk not in have], ignore_conflicts=True
    )


def lease_claim(
    *, cluster_id: int, identity: str, lease_seconds: float = LEASE_SECONDS
) -> int | None:
    """Take the cluster if its lease is free or expired; returns the new generation or None."""
    now = timezone.now()
    free = Q(holder="") | Q(expires_at__isnull=True) | Q(expires_at__lt=now)
    claimed = WatcherLease.objects.filter(Q(cluster_id=cluster_id) & free).update(
        holder=identity,
        generation=F("generation") + 1,
        heartbeat_at=now,
        expires_at=now + timedelta(seconds=lease_seconds),
    )
    if not claimed:
        return None
    return (
        WatcherLease.objects.filter(cluster_id=cluster_id, holder=identity)
        .values_list("generation", flat=True)
        .first()
    )


def leases_renew(
    *, identity: str, held: dict[int, int], lease_seconds: float = LEASE_SECONDS
) -> set[int]:
    """Extend the leases still ours; returns the cluster ids of `held` we no longer hold."""
    if not held:
        return set()
    now = timezone.now()
    WatcherLease.objects.filter(
        cluster_id__in=list(held), holder=identity, expires_at__gt=now
    ).update(heartbeat_at=now, expires_at=now + timedelta(seconds=lease_seconds))
    still = dict(
        WatcherLease.objects.filter(
            cluster_id__in=list(held), holder=identity, expires_at__gt=now
        ).values_list("cluster_id", "generation")
    )
    return {pk for pk, generation in held.items() if still.get(pk) != generation}


def leases_report_retrying(*, identity: str, retrying: dict[int, tuple[float, int, str]]) -> None:
    """Record on this watcher's leases which clusters' batches wait to be written
    ({cluster id: (since as a Unix time, events, error)}); the others are cleared."""
    for cluster_id, (since, events, error) in retrying.items():
        WatcherLease.objects.filter(cluster_id=cluster_id, holder=identity).update(
            retrying_since=datetime.fromtimestamp(since, tz=UTC),
            retrying_events=events,
            retrying_error=error[:1000],
        )
    WatcherLease.objects.filter(holder=identity, retrying_since__isnull=False).exclude(
        cluster_id__in=list(retrying)
    ).update(retrying_since=None, retrying_events=0, retrying_error="")


def lease_release(*, cluster_id: int, identity: str, generation: int) -> None:
    WatcherLease.objects.filter(
        cluster_id=cluster_id, holder=identity, generation=generation
    ).update(
        holder="",
        expires_at=timezone.now(),
        retrying_since=None,
        retrying_events=0,
        retrying_error="",
    )


def lease_fence(*, cluster_id: int, identity: str, generation: int) -> None:
    """Raise LeaseLost unless this tenure still holds the cluster. Call inside the batch's
    transaction, before writing: the UPDATE holds the lease row until the batch commits."""
    now = timezone.now()
    if not WatcherLease.objects.filter(
        cluster_id=cluster_id, holder=identity, generation=generation, expires_at__gt=now
    ).update(heartbeat_at=now):
        raise LeaseLost(
            f"cluster {cluster_id}: lease generation {generation} is no longer held by "
            f"{identity}; the batch is left to the new holder, which resumes from the "
            "last applied resourceVersion"
        )
