"""Prometheus metrics, read from the database at scrape time.

Whereabouts exports no metrics, so a pool that fills up is invisible until pods fail with
"Could not allocate IP in range"; these make it visible. The values are aggregates the sync,
leak detection, reclamation and the watcher already keep in the database, read when
Prometheus scrapes (one query per family, so a scrape stays cheap at 150,000 allocations)
instead of counters in process memory: every web replica then reports the same values (the
alert rules in deploy/overlays/prometheus take max() per series), and nothing resets when
gunicorn recycles a worker.

The counters (`*_total`) are monotonic because their rows only grow: reclaim items are kept
with their runs, and WatchEventCount rows only ever have events added.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.db.models import Count, F, OuterRef, Subquery
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.openmetrics.exposition import ALLOWUTF8

from ippam.models import (
    Alert,
    Cluster,
    Finding,
    IPPool,
    ReclaimItem,
    SyncRun,
    WatcherLease,
    WatchEventCount,
)
from ippam.poolnumbers import PoolNumbers

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

POOL_LABELS = ["cluster", "namespace", "pool", "network_name"]


def metrics_text() -> bytes:
    """Every ippam metric in the Prometheus text format, read now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(IppamCollector())
    # Every metric and label name here is a legacy-valid one, for which ALLOWUTF8 writes the
    # same bytes as the default escaping but skips re-validating each name on each sample
    # (a third of the formatting time with thousands of pools).
    return generate_latest(registry, escaping=ALLOWUTF8)


class IppamCollector:
    """A custom collector: prometheus_client calls collect() on every scrape."""

    def collect(self) -> Iterator[Metric]:
        clusters = _clusters_with_last_sync()
        names = [name for name, _started, _finished in clusters]
        yield from _sync_families(clusters)
        yield from _pool_families()
        yield from _pool_forecast_families()
        yield _findings_family(names)
        yield _alerts_family(names)
        yield _watch_events_family()
        yield from _watch_retrying_families(names)
        yield _reclaims_family()


def _clusters_with_last_sync() -> list[tuple[str, float | None, float | None]]:
    """(cluster name, finished as Unix time, seconds it took) of each cluster's last
    successful full sync."""
    last_ok = SyncRun.objects.filter(
        cluster=OuterRef("pk"), outcome=SyncRun.Outcome.OK, finished_at__isnull=False
    ).order_by("-started_at")
    rows = Cluster.objects.annotate(
        ok_started=Subquery(last_ok.values("started_at")[:1]),
        ok_finished=Subquery(last_ok.values("finished_at")[:1]),
    ).values_list("name", "ok_started", "ok_finished")
    return [
        (
            name,
            finished.timestamp() if finished else None,
            # From the datetimes, not from two Unix times: their difference loses the
            # microseconds a sync of a small cluster is measured in.
            (finished - started).total_seconds() if started and finished else None,
        )
        for name, started, finished in rows
    ]


def _sync_families(clusters: list[tuple[str, float | None, float | None]]) -> Iterator[Metric]:
    last = GaugeMetricFamily(
        "ippam_sync_last_success_timestamp_seconds",
        "When the last successful full sync of the cluster finished (Unix time). A cluster "
        "never synced has no sample.",
        labels=["cluster"],
    )
    duration = GaugeMetricFamily(
        "ippam_sync_duration_seconds",
        "How long the last successful full sync of the cluster took.",
        labels=["cluster"],
    )
    for name, finished, seconds in clusters:
        if finished is None or seconds is None:
            continue
        last.add_metric([name], finished)
        duration.add_metric([name], max(0.0, seconds))
    yield last
    yield duration


def _pool_families() -> Iterator[Metric]:
    usable = GaugeMetricFamily(
        "ippam_pool_usable_addresses",
        "Addresses whereabouts can hand out from the IPPool's range (its NAD's range_start, "
        "range_end and exclude applied); 0 when whereabouts would refuse the range.",
        labels=POOL_LABELS,
    )
    allocated = GaugeMetricFamily(
        "ippam_pool_allocated_addresses",
        "Allocations held in the IPPool's spec.allocations.",
        labels=POOL_LABELS,
    )
    free = GaugeMetricFamily(
        "ippam_pool_free_addresses",
        "Usable addresses of the IPPool that no allocation holds (usable - allocated, never "
        "below 0), the number the pool's page and API show.",
        labels=POOL_LABELS,
    )
    rows = IPPool.objects.values_list(
        "cluster__name", "namespace", "name", "network_name", "usable", "allocated"
    )
    # The pool's one set of numbers (ippam.poolnumbers), as exact integers until the float
    # Prometheus takes (a /64's 2**63 - 1 becomes 9.223372036854776e18 there only).
    for cluster, namespace, pool, network_name, n_usable, n_allocated in rows:
        labels = [cluster, namespace, pool, network_name]
        numbers = PoolNumbers.of(n_usable, n_allocated)
        usable.add_metric(labels, float(numbers.usable))
        allocated.add_metric(labels, float(numbers.allocated))
        free.add_metric(labels, float(numbers.free))
    yield usable
    yield allocated
    yield free


def _pool_forecast_families() -> Iterable[Metric]:
    """`ippam_pool_days_to_exhaustion` (labels POOL_LABELS), from the stored history
    (ippam.selectors.history; two queries).

    A pool without a forecast has no sample: too little history, not filling, too large to
    fill within a year, contradicted by its current fill, or full already (its usable and
    allocated gauges say that; a 0 here would read as a prediction).
    """
    from ippam.history import days_to_exhaustion
    from ippam.selectors.history import pool_forecasts

    family = GaugeMetricFamily(
        "ippam_pool_days_to_exhaustion",
        "Days until the IPPool has no free address, at the least-squares trend of its "
        "allocations over the last 7 days; absent without at least 12 samples over a day, "
        "when the pool is not measurably filling or is full already.",
        labels=POOL_LABELS,
    )
    labels: dict[int, list[str]] = {}
    counts = []
    for pk, cluster, namespace, pool, network_name, usable, allocated in IPPool.objects.values_list(
        "pk", "cluster__name", "namespace", "name", "network_name", "usable", "allocated"
    ):
        labels[pk] = [cluster, namespace, pool, network_name]
        counts.append((pk, float(usable), float(allocated)))
    for pk, found in pool_forecasts(pools=counts, every_pool=True).items():
        days = days_to_exhaustion(found)
        if days is not None:
            family.add_metric(labels[pk], days)
    return (family,)


def _findings_family(clusters: list[str]) -> Metric:
    family = GaugeMetricFamily(
        "ippam_leak_findings",
        "Leak findings of the last detection: state leaked, or suspect (a pod still Pending, "
        "or in its grace period).",
        labels=["cluster", "kind", "state"],
    )
    counts = {
        (cluster, kind, state): n
        for cluster, kind, state, n in Finding.objects.values("cluster__name", "kind", "state")
        .annotate(n=Count("id"))
        .values_list("cluster__name", "kind", "state", "n")
        .order_by()
    }
    # Every combination, zeros included: an alert on `> 0` then resolves on a sample of 0
    # instead of on a series that vanished.
    for cluster in clusters:
        for kind in Finding.Kind.values:
            for state in Finding.State.values:
                family.add_metric([cluster, kind, state], counts.get((cluster, kind, state), 0))
    return family


def _alerts_family(clusters: list[str]) -> Metric:
    family = GaugeMetricFamily(
        "ippam_alerts_open",
        "Alerts open and not yet acknowledged (acknowledged ones still count in "
        "ippam_leak_findings until the leak is gone).",
        labels=["cluster", "kind"],
    )
    counts = {
        (cluster, kind): n
        for cluster, kind, n in Alert.objects.filter(state=Alert.State.OPEN)
        .values("cluster__name", "kind")
        .annotate(n=Count("id"))
        .values_list("cluster__name", "kind", "n")
        .order_by()
    }
    for cluster in clusters:
        for kind in Alert.Kind.values:
            family.add_metric([cluster, kind], counts.get((cluster, kind), 0))
    return family


def _watch_events_family() -> Metric:
    family = CounterMetricFamily(
        "ippam_watch_events",
        "Watch events the watcher applied to the database (re-lists not included).",
        labels=["cluster", "kind"],
    )
    for cluster, kind, total in WatchEventCount.objects.values_list(
        "cluster__name", "kind", "total"
    ).order_by("cluster__name", "kind"):
        family.add_metric([cluster, kind], total)
    return family


def _watch_retrying_families(clusters: list[str]) -> Iterator[Metric]:
    """Watch batches waiting to be written (the database refused them; they are retried):
    0 for a cluster whose watcher is writing, so an alert can say `> 0 for 5m`."""
    events = GaugeMetricFamily(
        "ippam_watch_retrying_events",
        "Watch events received but not yet written to the database (retried with backoff).",
        labels=["cluster"],
    )
    since = GaugeMetricFamily(
        "ippam_watch_retrying_since_seconds",
        "Unix time since which the cluster's watch batches wait to be written (0: none wait).",
        labels=["cluster"],
    )
    waiting = {
        name: (count, started)
        for name, count, started in WatcherLease.objects.filter(
            retrying_since__isnull=False
        ).values_list("cluster__name", "retrying_events", "retrying_since")
    }
    for name in clusters:
        count, started = waiting.get(name, (0, None))
        events.add_metric([name], count)
        since.add_metric([name], started.timestamp() if started else 0)
    yield events
    yield since


def _reclaims_family() -> Metric:
    family = CounterMetricFamily(
        "ippam_reclaims",
        "Reclamation items by outcome: reclaimed, skipped (a live holder or a change found by "
        "the re-check), failed, noop (already gone).",
        labels=["outcome"],
    )
    counts = dict(
        ReclaimItem.objects.exclude(outcome=ReclaimItem.Outcome.PENDING)
        .values("outcome")
        .annotate(n=Count("id"))
        .values_list("outcome", "n")
        .order_by()
    )
    for outcome in ReclaimItem.Outcome.values:
        if outcome != ReclaimItem.Outcome.PENDING:
            family.add_metric([outcome], counts.get(outcome, 0))
    return family


def watch_events_add(*, cluster_id: int, kind: str, count: int) -> None:
    """Add `count` applied watch events of `kind` to the cluster's counter: one UPDATE.

    Call it in the transaction that applies them, so a batch retried after a lock timeout
    is counted once.
    """
    if count <= 0:
        return
    counter = WatchEventCount.objects.filter(cluster_id=cluster_id, kind=kind)
    if counter.update(total=F("total") + count):
        return
    try:
        with transaction.atomic():
            WatchEventCount.objects.create(cluster_id=cluster_id, kind=kind, total=count)
    except IntegrityError:  # created meanwhile (or the cluster is gone: then nothing to count)
        counter.update(total=F("total") + count)
