"""Pool history: one sample per pool per full sync, downsampled as it ages, and a forecast.

Whereabouts stores no timestamps (an IPPool is only the allocations it holds now), so the
only way to know how fast a range fills is to remember what each sync saw.

Retention: raw samples for 48 hours, then one per hour for 30 days, then one per day for a
year. A downsampled row holds the AVERAGE of the rows it replaces, not the last one: syncs
fall at arbitrary minutes (and the watcher does not sample), so "last" would let one sync's
timing stand for a whole hour or day, while an average describes the bucket and is what the
least-squares trend wants (a bucket mean is an unbiased point on the line). A daily row is
the mean of its hourly means: each hour weighs the same, however many syncs it had.

The forecast is pure: `trend_slope` and `days_to_exhaustion` take plain numbers and are
tested on synthetic series; `pool_days_to_exhaustion` in ippam.selectors.history feeds them
from the database with one aggregate query.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Avg, DateTimeField
from django.db.models.functions import Trunc
from django.utils import timezone

from ippam.models import Cluster, IPPool, PoolSample

logger = logging.getLogger(__name__)

RAW_KEEP = dt.timedelta(hours=48)
HOURLY_KEEP = dt.timedelta(days=30)
DAILY_KEEP = dt.timedelta(days=365)
TREND_WINDOW = dt.timedelta(days=7)
# Shown on the pools list and pool page only when the range runs out sooner than this.
SHOW_EXHAUSTION_UNDER_DAYS = 30.0

Point = tuple[float, float]  # (x: days, relative to any fixed origin; y: allocated)


# --- the forecast, pure ------------------------------------------------------------------


@dataclass(frozen=True)
class Sums:
    """The sufficient statistics of a least-squares line; SQL aggregates produce them too."""

    n: int
    sx: float
    sy: float
    sxx: float
    sxy: float

    @classmethod
    def of(cls, points: Sequence[Point]) -> Sums:
        return cls(
            n=len(points),
            sx=sum(x for x, _ in points),
            sy=sum(y for _, y in points),
            sxx=sum(x * x for x, _ in points),
            sxy=sum(x * y for x, y in points),
        )


def trend_slope(sums: Sums) -> float | None:
    """The least-squares slope (allocated addresses per day), or None without a trend: fewer
    than two points, or all of them at one time."""
    if sums.n < 2:
        return None
    denominator = sums.n * sums.sxx - sums.sx * sums.sx
    # x is centred on "now" in days, so the terms are small; a denominator this close to zero
    # means the points share one timestamp.
    if denominator <= 1e-12 * max(1.0, sums.n * sums.sxx):
        return None
    numerator = sums.n * sums.sxy - sums.sx * sums.sy
    # A flat series leaves only rounding here (the database sums floats in its own order):
    # a residue that small is no trend, not a pool that runs out in 10**16 days.
    if abs(numerator) <= 1e-9 * max(1.0, abs(sums.n * sums.sxy) + abs(sums.sx * sums.sy)):
        return 0.0
    return numerator / denominator


def days_to_exhaustion(*, slope: float | None, usable: float, allocated: float) -> float | None:
    """Days until `allocated` reaches `usable` at `slope` addresses a day.

    None when the pool is not filling (no trend, flat or falling) or has nothing usable;
    0.0 when it is already exhausted and still growing.
    """
    if slope is None or not math.isfinite(slope) or slope <= 0 or usable <= 0:
        return None
    return max(0.0, (usable - allocated) / slope)


def forecast(points: Sequence[Point], *, usable: float, allocated: float) -> float | None:
    """Days to exhaustion from a series of (days, allocated) points."""
    return days_to_exhaustion(
        slope=trend_slope(Sums.of(points)), usable=usable, allocated=allocated
    )


# --- sampling ----------------------------------------------------------------------------


def pool_samples_record(*, cluster: Cluster, now: dt.datetime | None = None) -> int:
    """One raw sample of every pool of the cluster (allocated, usable as the sync left them).

    Idempotent for one `now`: the unique constraint drops a second sample at the same time.
    """
    now = now or timezone.now()
    rows = [
        PoolSample(pool_id=pk, at=now, allocated=float(allocated), usable=float(usable))
        for pk, allocated, usable in IPPool.objects.filter(cluster=cluster).values_list(
            "pk", "allocated", "usable"
        )
    ]
    PoolSample.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
    return len(rows)


def sample_after_sync(sender: object, *, cluster: Cluster, **kwargs: object) -> None:
    """Receiver of ippam.signals.sync_finished: a sample of every pool after each full sync."""
    pool_samples_record(cluster=cluster)


# --- retention ---------------------------------------------------------------------------


def _truncate(moment: dt.datetime, kind: str) -> dt.datetime:
    moment = moment.astimezone(dt.UTC)
    if kind == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _downsample(*, source: str, target: str, before: dt.datetime) -> tuple[int, int]:
    """Replace the `source` rows older than `before` by one `target` row per pool and bucket.

    One INSERT ... SELECT (set-based: no row passes through Python) and one DELETE, in one
    transaction. `before` is on a bucket boundary, so only whole buckets move; a bucket row
    that exists already (a run that died between the two statements) is kept as it is.
    """
    buckets = (
        PoolSample.objects.filter(resolution=source, at__lt=before)
        .annotate(bucket=Trunc("at", target, output_field=DateTimeField(), tzinfo=dt.UTC))
        .values("pool_id", "bucket")
        .annotate(avg_allocated=Avg("allocated"), avg_usable=Avg("usable"))
        .values_list("pool_id", "bucket", "avg_allocated", "avg_usable")
        .order_by()
    )
    select_sql, params = buckets.query.sql_with_params()
    table = connection.ops.quote_name(PoolSample._meta.db_table)
    q = connection.ops.quote_name
    # SQLite parses "ON CONFLICT" after INSERT ... SELECT only when the SELECT cannot end in a
    # join constraint; wrapping it as a subquery removes the ambiguity on both databases.
    insert = (
        f"INSERT INTO {table} ({q('pool_id')}, {q('at')}, {q('allocated')}, {q('usable')}, "
        f"{q('resolution')}) SELECT s.*, %s FROM ({select_sql}) s WHERE true "
        f"ON CONFLICT ({q('pool_id')}, {q('at')}, {q('resolution')}) DO NOTHING"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(insert, (target, *params))
        inserted = max(cursor.rowcount, 0)
        deleted, _ = PoolSample.objects.filter(resolution=source, at__lt=before).delete()
    return inserted, deleted


def history_retain(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Downsample and expire pool samples; safe to run any number of times."""
    now = now or timezone.now()
    hours, raw_gone = _downsample(
        source="raw", target="hour", before=_truncate(now - RAW_KEEP, "hour")
    )
    days, hours_gone = _downsample(
        source="hour", target="day", before=_truncate(now - HOURLY_KEEP, "day")
    )
    expired, _ = PoolSample.objects.filter(
        resolution=PoolSample.Resolution.DAY, at__lt=now - DAILY_KEEP
    ).delete()
    stats = {
        "hourly_rows": hours,
        "raw_removed": raw_gone,
        "daily_rows": days,
        "hourly_removed": hours_gone,
        "daily_expired": expired,
    }
    logger.info("pool history retention: %s", stats)
    return stats
