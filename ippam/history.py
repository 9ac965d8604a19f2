"""Pool history: one sample per pool per full sync, downsampled as it ages, and a forecast.

Whereabouts stores no timestamps (an IPPool is only the allocations it holds now), so the
only way to know how fast a range fills is to remember what each sync saw.

Retention: raw samples for 48 hours, then one per hour for 30 days, then one per day for a
year. A downsampled row holds the AVERAGE of the rows it replaces, not the last one: syncs
fall at arbitrary minutes (and the watcher does not sample), so "last" would let one sync's
timing stand for a whole hour or day, while an average describes the bucket and is what the
least-squares trend wants (a bucket mean is an unbiased point on the line). A daily row is
the mean of its hourly means: each hour weighs the same, however many syncs it had.

The forecast is pure: `forecast_of` takes least-squares sums (`Sums`) and the pool's current
counts and is tested on synthetic series without a database; `pool_forecasts` in
ippam.selectors.history feeds it from the database with one aggregate query.
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

from ippam.demoseries import demo_series
from ippam.models import Cluster, IPPool, PoolSample

logger = logging.getLogger(__name__)

RAW_KEEP = dt.timedelta(hours=48)
HOURLY_KEEP = dt.timedelta(days=30)
DAILY_KEEP = dt.timedelta(days=365)
TREND_WINDOW = dt.timedelta(days=7)
# Shown on the pools list and pool page only when the range may run out sooner than this.
SHOW_EXHAUSTION_UNDER_DAYS = 30.0
# Enough history to call a trend: samples spanning a day (a daily rhythm of deployments and
# scale-downs is not a trend) and a dozen of them (the slope's standard error needs n - 2
# degrees of freedom; with fewer the band is as wide as the answer is meaningless).
MIN_SAMPLES = 12
MIN_SPAN_DAYS = 1.0
# A pool that even the fit's fastest plausible rate would not fill within a year is "too
# large to fill": typically an IPv6 range of 2^63 addresses, whose days come out near 10^16.
HORIZON_DAYS = 365.0
# Two-sided 95 % bands: the slope's confidence interval gives the "full in 9-14 days".
_Z_975 = 1.959963984540054
# A current fill more than this many standard errors of a new observation off the fitted
# line is a change of pace the history has not seen (a mass free, a burst): no forecast.
CONTRADICTION_SIGMAS = 3.0

Point = tuple[float, float]  # (x: days, relative to "now"; y: allocated)


# --- the forecast, pure ------------------------------------------------------------------


@dataclass(frozen=True)
class Sums:
    """The sufficient statistics of a least-squares line and its spread; SQL aggregates
    produce them too. x is in days relative to "now" (so x = 0 is the present)."""

    n: int
    sx: float
    sy: float
    sxx: float
    sxy: float
    syy: float = 0.0
    x_min: float = 0.0
    x_max: float = 0.0

    @classmethod
    def of(cls, points: Sequence[Point]) -> Sums:
        return cls(
            n=len(points),
            sx=math.fsum(x for x, _ in points),
            sy=math.fsum(y for _, y in points),
            sxx=math.fsum(x * x for x, _ in points),
            sxy=math.fsum(x * y for x, y in points),
            syy=math.fsum(y * y for _, y in points),
            x_min=min((x for x, _ in points), default=0.0),
            x_max=max((x for x, _ in points), default=0.0),
        )

    @property
    def span_days(self) -> float:
        return self.x_max - self.x_min


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


def t_975(df: int) -> float:
    """Student's t 97.5 % quantile for `df` degrees of freedom (two-sided 95 %), by the
    Cornish-Fisher expansion around the normal quantile: within 0.003 of the tables from
    df = 10 on (where MIN_SAMPLES puts every forecast)."""
    z = _Z_975
    v = float(max(df, 1))
    return z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v * v)


@dataclass(frozen=True)
class Fit:
    """A least-squares line through (days, allocated): its slope, the slope's standard
    error, the fitted level at x = 0 ("now") and the standard error of a new observation
    there."""

    slope: float
    slope_se: float
    level_now: float
    observation_se: float
    df: int


def trend_fit(sums: Sums) -> Fit | None:
    """The ordinary least-squares fit and its standard errors, or None without a trend.

    slope = Sxy / Sxx; residual variance s^2 = (Syy - Sxy^2 / Sxx) / (n - 2); the slope's
    standard error sqrt(s^2 / Sxx); a new observation at x = 0 has standard error
    s * sqrt(1 + 1/n + mean(x)^2 / Sxx). Textbook formulas, on centred sums.
    """
    slope = trend_slope(sums)
    if slope is None or sums.n < 3:
        return None
    n = sums.n
    mean_x, mean_y = sums.sx / n, sums.sy / n
    s_xx = sums.sxx - sums.sx * mean_x
    s_xy = sums.sxy - sums.sx * mean_y
    s_yy = sums.syy - sums.sy * mean_y
    if s_xx <= 0:
        return None
    # Rounding can leave a perfect line's residual sum a hair below zero.
    residual = max(0.0, s_yy - (s_xy * s_xy) / s_xx if slope else s_yy)
    variance = residual / (n - 2)
    return Fit(
        slope=slope,
        slope_se=math.sqrt(variance / s_xx),
        level_now=mean_y - slope * mean_x,
        observation_se=math.sqrt(variance * (1 + 1 / n + mean_x * mean_x / s_xx)),
        df=n - 2,
    )


@dataclass(frozen=True)
class Forecast:
    """What the pages, the API and /metrics say about a pool running out.

    `full` is a fact, not a forecast: every usable address is allocated now (the days are
    then 0). Otherwise `days` is the free addresses over the fitted slope, and `earliest`
    and `latest` the same over the upper and lower end of the slope's 95 % confidence
    interval (slope +- t(0.975, n-2) * its standard error): "full in 9-14 days".
    """

    full: bool
    days: float
    earliest: float
    latest: float


FULL_NOW = Forecast(full=True, days=0.0, earliest=0.0, latest=0.0)


def forecast_of(sums: Sums, *, usable: float, allocated: float) -> Forecast | None:
    """Days until the pool runs out, or None when the history cannot honestly say.

    None for: a range with nothing usable; too little history (under MIN_SAMPLES samples or
    under a day between the first and the last); no rise, or one the 95 % interval of the
    slope does not tell from zero (flat, shrinking or noise); a range the fastest plausible
    rate would not fill within HORIZON_DAYS; a current fill the fitted line contradicts
    (more than CONTRADICTION_SIGMAS standard errors of a new observation away from it).
    A pool with every usable address allocated is FULL_NOW whatever its history.
    """
    if not (math.isfinite(usable) and usable > 0):
        return None
    if allocated >= usable:
        return FULL_NOW
    if sums.n < MIN_SAMPLES or sums.span_days < MIN_SPAN_DAYS:
        return None
    fit = trend_fit(sums)
    if fit is None or not math.isfinite(fit.slope) or fit.slope <= 0:
        return None
    margin = t_975(fit.df) * fit.slope_se
    slowest, fastest = fit.slope - margin, fit.slope + margin
    if slowest <= 0:
        return None
    # At least one address of tolerance: allocations are whole numbers, and a perfectly
    # straight history has no spread at all.
    if abs(allocated - fit.level_now) > max(1.0, CONTRADICTION_SIGMAS * fit.observation_se):
        return None
    free = usable - allocated
    earliest = free / fastest
    if earliest > HORIZON_DAYS:
        return None
    return Forecast(full=False, days=free / fit.slope, earliest=earliest, latest=free / slowest)


def forecast(points: Sequence[Point], *, usable: float, allocated: float) -> Forecast | None:
    """The forecast from a series of (days before now, allocated) points."""
    return forecast_of(Sums.of(points), usable=usable, allocated=allocated)


def days_to_exhaustion(forecast: Forecast | None) -> float | None:
    """The one number the API and /metrics carry: days until a pool that is filling runs
    out (the fit's central estimate); None for a pool that is full now or has no forecast
    (a full pool says so in its utilization; "0 days" would read as a prediction)."""
    if forecast is None or forecast.full:
        return None
    return forecast.days


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


# --- the demo's month ----------------------------------------------------------------------


def demo_history_seed(*, cluster: Cluster, now: dt.datetime | None = None) -> int:
    """A month of hourly samples (ippam.demoseries) for each pool of the demo cluster that has
    no sample older than a day, so the first `make run` shows charts and a forecast. The
    fullest pool with room left heads for exhaustion. Returns the samples written.

    Rows older than RAW_KEEP are stored as the hourly rows retention would have made of them.
    """
    now = now or timezone.now()
    pools = list(IPPool.objects.filter(cluster=cluster).values_list("pk", "allocated", "usable"))
    with_history = set(
        PoolSample.objects.filter(pool__cluster=cluster, at__lt=now - dt.timedelta(days=1))
        .values_list("pool_id", flat=True)
        .distinct()
    )
    bare = [(pk, float(allocated), float(usable)) for pk, allocated, usable in pools]
    bare = [pool for pool in bare if pool[0] not in with_history]
    filling = [pool for pool in bare if pool[2] > pool[1] > 0]
    exhausting = max(filling, key=lambda pool: pool[1] / pool[2], default=None)
    rows = []
    for pk, allocated, usable in bare:
        for sample in demo_series(
            now=now,
            allocated=allocated,
            usable=usable,
            exhausting=pk == (exhausting and exhausting[0]),
            seed=pk,
        ):
            hourly = now - sample.at > RAW_KEEP
            rows.append(
                PoolSample(
                    pool_id=pk,
                    at=_truncate(sample.at, "hour") if hourly else sample.at,
                    resolution=PoolSample.Resolution.HOUR if hourly else PoolSample.Resolution.RAW,
                    allocated=sample.allocated,
                    usable=usable,
                )
            )
    PoolSample.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
    return len(rows)
