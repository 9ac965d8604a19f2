"""Clusters and how fresh their synced data is (the sync bar and the cluster switcher)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from ippam.models import Cluster, SyncRun, WatcherLease


@dataclass(frozen=True)
class ClusterHealth:
    cluster: Cluster
    level: str  # ok | stale | error | never | syncing
    message: str

    @property
    def is_stale(self) -> bool:
        return self.level != "ok"


def cluster_health(cluster: Cluster, *, now: datetime | None = None) -> ClusterHealth:
    """How fresh this cluster's data is, in the words the sync bar shows."""
    now = now or timezone.now()
    stale_after = timedelta(seconds=settings.IPPAM_STALE_AFTER_SECONDS)
    state = cluster.sync_state
    if state in (Cluster.SyncState.FAILED, Cluster.SyncState.UNREACHABLE):
        error = cluster.sync_error.strip().splitlines()[0] if cluster.sync_error.strip() else ""
        label = cluster.get_sync_state_display()
        return ClusterHealth(cluster, "error", f"{label}: {error}" if error else label)
    if cluster.last_good_sync is None:
        if state == Cluster.SyncState.SYNCING:
            return ClusterHealth(cluster, "syncing", "first sync running; no data yet")
        return ClusterHealth(cluster, "never", "never synced; no data yet")
    if now - cluster.last_good_sync > stale_after:
        return ClusterHealth(cluster, "stale", "data is stale: no successful sync recently")
    if state == Cluster.SyncState.SYNCING:
        return ClusterHealth(cluster, "ok", "syncing")
    if cluster.rebuilt_at and now - cluster.rebuilt_at < timedelta(days=1):
        # The full notice (why it was judged rebuilt) is Cluster.sync_notice.
        when = f"{cluster.rebuilt_at:%Y-%m-%d %H:%M} UTC"
        return ClusterHealth(cluster, "ok", f"in sync; cluster rebuilt ({when}), all data re-read")
    return ClusterHealth(cluster, "ok", "in sync")


def cluster_list() -> list[Cluster]:
    return list(Cluster.objects.order_by("name"))


def cluster_health_list(*, clusters: list[Cluster] | None = None) -> list[ClusterHealth]:
    now = timezone.now()
    clusters = clusters if clusters is not None else cluster_list()
    waiting = watch_retrying([c.pk for c in clusters])
    health = [cluster_health(c, now=now) for c in clusters]
    return [
        _with_watch_retrying(h, waiting[h.cluster.pk]) if h.cluster.pk in waiting else h
        for h in health
    ]


def watch_retrying(cluster_ids: list[int]) -> dict[int, WatcherLease]:
    """The clusters whose watcher holds batches the database has not taken yet (one query)."""
    return {
        lease.cluster_id: lease
        for lease in WatcherLease.objects.filter(
            cluster_id__in=cluster_ids, retrying_since__isnull=False
        ).only("cluster_id", "retrying_since", "retrying_events", "retrying_error")
    }


def _with_watch_retrying(health: ClusterHealth, lease: WatcherLease) -> ClusterHealth:
    since = lease.retrying_since
    when = f"{since:%H:%M:%S} UTC" if since else "a while"
    message = (
        f"{health.message}; the watcher is retrying {lease.retrying_events} events not "
        f"yet written (since {when}: {lease.retrying_error or 'the database refused them'})"
    )
    level = health.level if health.level == "error" else "stale"
    return ClusterHealth(health.cluster, level, message)


def sync_running_since(cluster: Cluster) -> datetime | None:
    """When the full sync of `cluster` that is running now started, read fresh (the Cluster
    row a caller holds may predate it); None when no sync run is open (the lock may be held
    by a watcher's batch, or by a sync that has not written its run yet)."""
    return (
        SyncRun.objects.filter(cluster=cluster, outcome=SyncRun.Outcome.RUNNING)
        .order_by("-started_at")
        .values_list("started_at", flat=True)
        .first()
    )
