"""Pool history reads: the chart series, the sparklines, and days to exhaustion.

`pool_forecasts` is the one place the forecast meets the database: the pools list, the API
serializer and /metrics read it; the pool page fits the same rows its chart reads (a test
pins that both agree).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, SupportsFloat

from django.db import connection
from django.db.models import Avg, Count, DateTimeField, F, FloatField, Func, Max, Min, Sum, Value
from django.db.models.functions import Trunc
from django.utils import timezone

from ippam.fields import key_to_ip
from ippam.history import TREND_WINDOW, Forecast, Sums, days_to_exhaustion, forecast_of
from ippam.models import FreedAddress, IPPool, PoolSample
from ippam.selectors.freed import FreedRow, freed_row
from ippam.selectors.shared import db_datetime, loaded
from ippam.sync.freed import freed_since

CHART_WINDOW = dt.timedelta(days=30)
SPARKLINE_WINDOW = dt.timedelta(days=7)


class _DaysAfter(Func):
    """Days from `origin` to a timestamp column, as a float (negative for the past).

    Centring x on "now" keeps the least-squares sums small (epoch seconds squared would lose
    the slope to float cancellation)."""

    output_field = FloatField()

    def __init__(self, expression: Any, origin: dt.datetime) -> None:
        super().__init__(expression, Value(origin, output_field=DateTimeField()))

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template="(julianday(%(expressions)s))",
            arg_joiner=") - julianday(",
            **extra,
        )

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template="(EXTRACT(EPOCH FROM (%(expressions)s)) / 86400.0)",
            arg_joiner=" - ",
            **extra,
        )


def pool_trend_sums(
    *, pool_ids: Iterable[int] | None, now: dt.datetime | None = None
) -> dict[int, Sums]:
    """The least-squares sums of each pool's last 7 days of samples (x in days before `now`,
    y allocated); one aggregate query. Raw samples (every sync, last 48 hours) outnumber the
    hourly ones before them, so the recent days weigh more: wanted, the forecast should
    follow a change of pace quickly."""
    now = now or timezone.now()
    samples = PoolSample.objects.filter(at__gte=now - TREND_WINDOW, at__lte=now)
    if pool_ids is not None:  # None: every pool (/metrics)
        ids = list(pool_ids)
        if not ids:
            return {}
        samples = samples.filter(pool_id__in=ids)
    sums = (
        samples.annotate(x=_DaysAfter("at", now))
        .values("pool_id")
        .annotate(
            n=Count("id"),
            sx=Sum("x"),
            sy=Sum("allocated"),
            sxx=Sum(F("x") * F("x"), output_field=FloatField()),
            sxy=Sum(F("x") * F("allocated"), output_field=FloatField()),
            syy=Sum(F("allocated") * F("allocated"), output_field=FloatField()),
            x_min=Min("x"),
            x_max=Max("x"),
        )
        .order_by()
    )
    fields = ("n", "sx", "sy", "sxx", "sxy", "syy", "x_min", "x_max")
    return {row["pool_id"]: Sums(*(row[f] for f in fields)) for row in sums}


def pool_forecasts(
    *,
    pools: Iterable[tuple[int, SupportsFloat, SupportsFloat]],
    every_pool: bool = False,
    now: dt.datetime | None = None,
) -> dict[int, Forecast]:
    """The forecast of each (pk, usable, allocated) pool that has one (ippam.history
    `forecast_of`: a full pool is FULL_NOW; absent: too little history, not filling, too
    large to fill, or contradicted by the current fill). One query, whatever the number of
    pools; `every_pool` when `pools` is every pool (/metrics): no list of ids in the SQL."""
    counts = {pk: (float(usable), float(allocated)) for pk, usable, allocated in pools}
    sums = pool_trend_sums(pool_ids=None if every_pool else counts, now=now) if counts else {}
    answer: dict[int, Forecast] = {}
    empty = Sums(n=0, sx=0.0, sy=0.0, sxx=0.0, sxy=0.0)  # no samples in the window
    for pk, (usable, allocated) in counts.items():
        found = forecast_of(sums.get(pk, empty), usable=usable, allocated=allocated)
        if found is not None:
            answer[pk] = found
    return answer


def pool_days_to_exhaustion(
    *, pool_ids: Iterable[int] | None = None, now: dt.datetime | None = None
) -> dict[int, float]:
    """Days until each pool runs out at its last 7 days' trend, for the pools that have a
    forecast and are not full already. Two queries, whatever the number of pools (None:
    every pool)."""
    pools = IPPool.objects.all() if pool_ids is None else IPPool.objects.filter(pk__in=pool_ids)
    forecasts = pool_forecasts(
        pools=pools.values_list("pk", "usable", "allocated"), every_pool=pool_ids is None, now=now
    )
    return {
        pk: days
        for pk, found in forecasts.items()
        if (days := days_to_exhaustion(found)) is not None
    }


def pools_attach_days_to_exhaustion(
    pools: Iterable[IPPool], *, now: dt.datetime | None = None
) -> list[IPPool]:
    """Set `forecast` (ippam.history.Forecast or None) and `days_to_exhaustion` (float or
    None) on each pool from its own counts; one query."""
    pools = list(pools)
    forecasts = pool_forecasts(
        pools=[(p.pk, float(p.usable), float(p.allocated)) for p in pools], now=now
    )
    for pool in pools:
        found = forecasts.get(pool.pk)
        pool.forecast = found  # type: ignore[attr-defined]
        pool.days_to_exhaustion = days_to_exhaustion(found)  # type: ignore[attr-defined]
    return pools


def pool_series(*, pool_id: int, since: dt.datetime) -> list[tuple[dt.datetime, float, float]]:
    """(time, allocated, usable) of one pool since `since`, oldest first, every resolution."""
    return list(
        PoolSample.objects.filter(pool_id=pool_id, at__gte=since)
        .order_by("at")
        .values_list("at", "allocated", "usable")
    )


def pool_sparklines(
    *, pool_ids: Iterable[int], now: dt.datetime | None = None
) -> dict[int, list[float]]:
    """Hourly utilization (0..1) of each pool over the last 7 days, oldest first; one query."""
    now = now or timezone.now()
    ids = list(pool_ids)
    if not ids:
        return {}
    rows = (
        PoolSample.objects.filter(pool_id__in=ids, at__gte=now - SPARKLINE_WINDOW)
        .annotate(hour=Trunc("at", "hour", output_field=DateTimeField(), tzinfo=dt.UTC))
        .values("pool_id", "hour")
        .annotate(allocated=Avg("allocated"), usable=Avg("usable"))
        .order_by("pool_id", "hour")
        .values_list("pool_id", "allocated", "usable")
    )
    lines: dict[int, list[float]] = defaultdict(list)
    for pk, allocated, usable in rows:
        lines[pk].append(allocated / usable if usable else 0.0)
    return dict(lines)


def pools_attach_history(
    pools: Iterable[IPPool], *, now: dt.datetime | None = None
) -> list[IPPool]:
    """The pools list's rows with `days_to_exhaustion` and `sparkline` (utilizations) set."""
    now = now or timezone.now()
    pools = pools_attach_days_to_exhaustion(pools, now=now)
    lines = pool_sparklines(pool_ids=[p.pk for p in pools], now=now)
    for pool in pools:
        pool.sparkline = lines.get(pool.pk, [])  # type: ignore[attr-defined]
    return pools


def pool_history(*, pool: IPPool, now: dt.datetime | None = None) -> dict[str, Any]:
    """What the pool page's history card shows: 30 days of samples and the forecast."""
    return pool_history_and_freed(pool=pool, now=now, freed_limit=0)[0]


# The pool page's history card and its recently freed card in one statement (a round trip
# and the ORM's compile cost ~1 ms each): the samples, then the latest frees in a derived
# table with their own order and limit; `kind` says which. NULLs are typed for PostgreSQL,
# which types a derived table's bare NULL as text. Plain SQL that SQLite reads alike.
_SAMPLES_SQL = (
    "SELECT 0 AS kind, s.at AS at, s.allocated AS allocated, s.usable AS usable,"
    " CAST(NULL AS INTEGER) AS id, CAST(NULL AS TEXT) AS ip, CAST(NULL AS TEXT) AS podref,"
    " CAST(NULL AS TEXT) AS ifname, CAST(NULL AS TEXT) AS fkey"
    " FROM ippam_poolsample s WHERE s.pool_id = %s AND s.at >= %s"
)
_FREED_SQL = (
    " UNION ALL SELECT * FROM ("
    "SELECT 1 AS kind, fa.freed_at AS at, CAST(NULL AS DOUBLE PRECISION) AS allocated,"
    " CAST(NULL AS DOUBLE PRECISION) AS usable, fa.id AS id, fa.ip AS ip,"
    " fa.podref AS podref, fa.ifname AS ifname, fa.key AS fkey"
    " FROM ippam_freedaddress fa WHERE fa.cluster_id = %s AND fa.pool_namespace = %s"
    " AND fa.pool_name = %s AND fa.freed_at >= %s"
    " ORDER BY fa.freed_at DESC, fa.id DESC LIMIT %s) fr"
)


def pool_history_and_freed(
    *, pool: IPPool, now: dt.datetime | None = None, freed_limit: int = 20
) -> tuple[dict[str, Any], list[FreedRow]]:
    """The pool page's history card (30 days of samples and the forecast) and its
    `freed_limit` latest frees within the window (ippam.sync.freed), newest first: one
    statement.

    The forecast's 7 days are inside the chart's 30, so its least-squares sums come from
    the same rows (`pool_trend_sums` sums them in SQL for many pools).
    """
    now = now or timezone.now()
    start = now - CHART_WINDOW
    adapt = connection.ops.adapt_datetimefield_value
    sql, params = _SAMPLES_SQL, [pool.pk, adapt(start)]
    if freed_limit:
        sql += _FREED_SQL
        freed_from = adapt(freed_since())
        params += [pool.cluster_id, pool.namespace, pool.name, freed_from, freed_limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    series = sorted(
        (at, float(allocated), float(usable))
        for kind, raw_at, allocated, usable, *_ in rows
        if kind == 0 and (at := db_datetime(raw_at)) is not None
    )
    frees = []
    for _, raw_at, _, _, pk, key, podref, ifname, offset in rows:
        if pk is not None:
            f = loaded(
                FreedAddress,
                id=pk,
                cluster_id=pool.cluster_id,
                pool_namespace=pool.namespace,
                pool_name=pool.name,
                key=offset,
                ip=key_to_ip(key),
                podref=podref,
                ifname=ifname,
                freed_at=db_datetime(raw_at),
            )
            frees.append(f)
    frees.sort(key=lambda f: (f.freed_at, f.pk), reverse=True)
    since = now - TREND_WINDOW
    points = [
        ((at - now).total_seconds() / 86400.0, allocated)
        for at, allocated, _ in series
        if since <= at <= now
    ]
    found = forecast_of(Sums.of(points), usable=float(pool.usable), allocated=pool.allocated)
    history = {
        "series": series,
        "start": start,
        "end": now,
        "forecast": found,
        "days_to_exhaustion": days_to_exhaustion(found),
    }
    return history, [freed_row(f, now) for f in frees]
