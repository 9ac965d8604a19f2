"""Pool history: samples per sync, downsampling, the forecast, and where it shows."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.utils import timezone

from ippam.charts import history_chart_svg, sparkline_svg
from ippam.history import forecast, history_retain, pool_samples_record
from ippam.models import FreedAddress, PoolSample
from ippam.selectors.history import (
    pool_days_to_exhaustion,
    pool_history,
    pool_history_and_freed,
)
from tests.factories import make_cluster, make_pool

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def _series(values: list[float], *, every_hours: float = 1.0) -> list[tuple[float, float]]:
    n = len(values)
    return [(-(n - 1 - i) * every_hours / 24, v) for i, v in enumerate(values)]


# --- the forecast on synthetic series (pure) -----------------------------------------------


def test_a_flat_series_never_runs_out():
    assert forecast(_series([50.0] * 100), usable=254, allocated=50) is None


def test_a_rising_series_runs_out_at_its_slope():
    # 10 addresses a day, 200 left: 20 days.
    points = [(d, 50 + 10 * d) for d in [x / 4 for x in range(-28, 1)]]
    assert forecast(points, usable=250, allocated=50) == pytest.approx(20.0)


def test_a_falling_series_never_runs_out():
    assert forecast(_series([200.0 - i for i in range(100)]), usable=254, allocated=101) is None


def test_a_noisy_rising_series_is_close_to_its_trend():
    rng = random.Random(7)
    points = [(d / 24, 100 + 5 * d / 24 + rng.uniform(-3, 3)) for d in range(-168, 1)]
    assert forecast(points, usable=254, allocated=100) == pytest.approx(154 / 5, rel=0.1)


def test_a_single_point_has_no_trend():
    assert forecast([(0.0, 10.0)], usable=254, allocated=10) is None
    assert forecast([(0.0, 10.0), (0.0, 12.0)], usable=254, allocated=12) is None


def test_an_exhausted_pool_that_still_grows_runs_out_now():
    assert forecast(_series([250.0, 252.0, 254.0]), usable=254, allocated=254) == 0.0


# --- sampling, retention and the query --------------------------------------------------------


@pytest.fixture
def pool(db):
    return make_pool(make_cluster("hist"), "10.1.0.0/24", allocated=100)


def _sample(pool, at, allocated, resolution="raw"):
    PoolSample.objects.create(
        pool=pool, at=at, allocated=allocated, usable=254, resolution=resolution
    )


def test_one_sample_per_pool_per_sync(pool):
    other = make_pool(pool.cluster, "10.2.0.0/24", allocated=3)
    assert pool_samples_record(cluster=pool.cluster, now=NOW) == 2
    pool_samples_record(cluster=pool.cluster, now=NOW)  # the same sync again: no new row
    got = dict(PoolSample.objects.values_list("pool_id", "allocated"))
    assert got == {pool.pk: 100.0, other.pk: 3.0}


def test_retention_downsamples_to_hourly_then_daily_averages_and_is_idempotent(pool):
    old = NOW - dt.timedelta(hours=50)
    hour = old.replace(minute=0)
    for minute, allocated in ((5, 10.0), (25, 20.0), (45, 30.0)):
        _sample(pool, hour + dt.timedelta(minutes=minute), allocated)
    _sample(pool, NOW - dt.timedelta(hours=1), 99.0)  # recent: stays raw
    day = (NOW - dt.timedelta(days=40)).replace(hour=0)
    _sample(pool, day + dt.timedelta(hours=1), 40.0, "hour")
    _sample(pool, day + dt.timedelta(hours=2), 60.0, "hour")
    _sample(pool, NOW - dt.timedelta(days=400), 1.0, "day")  # past a year: gone

    first = history_retain(now=NOW)
    rows = set(PoolSample.objects.values_list("resolution", "at", "allocated"))
    assert rows == {
        ("hour", hour, 20.0),
        ("raw", NOW - dt.timedelta(hours=1), 99.0),
        ("day", day, 50.0),
    }
    assert first["raw_removed"] == 3 and first["daily_expired"] == 1
    history_retain(now=NOW)
    assert set(PoolSample.objects.values_list("resolution", "at", "allocated")) == rows


def test_days_to_exhaustion_from_the_database_matches_the_pure_forecast(pool):
    points = []
    for h in range(0, 7 * 24, 3):  # a week, 2 addresses an hour, older than 48 h as hourly rows
        at = NOW - dt.timedelta(hours=h)
        allocated = 100.0 - 2 * h
        _sample(pool, at, allocated, "raw" if h < 48 else "hour")
        points.append(((at - NOW).total_seconds() / 86400, allocated))
    _sample(pool, NOW - dt.timedelta(days=9), 0.0, "hour")  # outside the window
    days = pool_days_to_exhaustion(pool_ids=[pool.pk], now=NOW)
    assert days[pool.pk] == pytest.approx(forecast(points, usable=254, allocated=100))
    assert days[pool.pk] == pytest.approx(154 / 48)


def test_pool_page_forecast_from_its_chart_rows_matches_the_database_sums(pool):
    """The pool page computes the forecast from the 30 days of rows its chart reads (one
    query); it must say what the API and /metrics say (the sums in SQL)."""
    rng = random.Random(5)
    for h in range(0, 20 * 24, 5):  # beyond the 7-day trend window, noisy, mixed resolutions
        _sample(
            pool,
            NOW - dt.timedelta(hours=h),
            120.0 - 1.5 * h + rng.uniform(-3, 3),
            "raw" if h < 48 else "hour",
        )
    _sample(pool, NOW + dt.timedelta(hours=1), 500.0)  # after `now`: in neither
    history = pool_history(pool=pool, now=NOW)
    expected = pool_days_to_exhaustion(pool_ids=[pool.pk], now=NOW)[pool.pk]
    assert history["days_to_exhaustion"] == pytest.approx(expected, rel=1e-9)
    assert len(history["series"]) == len(range(0, 20 * 24, 5)) + 1


def test_pool_page_history_and_recent_frees_in_one_statement(
    pool, settings, django_assert_num_queries
):
    """The pool page reads its chart's samples and its latest frees in one statement: the
    same rows the ORM gives, the frees newest first, within the window, of this pool only."""
    now = timezone.now()
    for h in (1, 30, 24 * 29, 24 * 31):  # the last one is before the chart's 30 days
        _sample(pool, now - dt.timedelta(hours=h), 10.0 + h, "raw" if h < 48 else "hour")
    other = make_pool(pool.cluster, "10.2.0.0/24")
    window = settings.IPPAM_FREED_RETENTION_SECONDS
    for i, (p, age) in enumerate(
        [(pool, 30), (pool, 90), (pool, 90), (pool, window + 60), (other, 10)]
        + [(pool, 200 + s) for s in range(25)]
    ):
        FreedAddress.objects.create(
            cluster=p.cluster,
            pool_namespace=p.namespace,
            pool_name=p.name,
            key=str(i),
            ip=f"10.1.0.{i}" if p == pool else "10.2.0.9",
            podref=f"default/p{i}",
            ifname="net1" if i % 2 else "",
            freed_at=now - dt.timedelta(seconds=age),
        )
    with django_assert_num_queries(1):
        history, frees = pool_history_and_freed(pool=pool, now=now)
    expected = list(
        PoolSample.objects.filter(pool=pool, at__gte=now - dt.timedelta(days=30))
        .order_by("at")
        .values_list("at", "allocated", "usable")
    )
    assert history["series"] == expected and len(expected) == 3
    assert history == pool_history(pool=pool, now=now)
    want = list(
        FreedAddress.objects.filter(
            cluster=pool.cluster,
            pool_namespace=pool.namespace,
            pool_name=pool.name,
            freed_at__gte=now - dt.timedelta(seconds=window),
        ).order_by("-freed_at", "-pk")[:20]
    )
    fields = ["id", "key", "ip", "podref", "ifname", "freed_at", "pool_namespace", "pool_name"]
    assert [[getattr(r.freed, f) for f in fields] for r in frees] == [
        [getattr(f, f_) for f_ in fields] for f in want
    ]
    assert len(frees) == 20 and frees[0].freed.podref == "default/p0"
    assert frees[0].phrase.endswith("held by default/p0") and frees[2].phrase.endswith("(net1)")


# --- where it shows ----------------------------------------------------------------------------


def test_svg_is_csp_clean_and_scaled():
    line = sparkline_svg([0.1, 0.5, 0.95])
    chart = history_chart_svg(
        [(NOW - dt.timedelta(days=1), 10.0, 254.0), (NOW, 20.0, 254.0)],
        start=NOW - dt.timedelta(days=30),
        end=NOW,
    )
    for svg in (line, chart):
        assert svg.startswith("<svg") and "style=" not in svg and "<script" not in svg
    assert sparkline_svg([0.5]) == ""
    assert 'stroke="#dc2626"' in line  # last value above 90%: red


def test_a_pools_first_sample_is_drawn_as_a_point():
    start = NOW - dt.timedelta(days=30)
    one = history_chart_svg([(NOW, 36.0, 55.0)], start=start, end=NOW)
    two = history_chart_svg(
        [(NOW - dt.timedelta(days=1), 30.0, 55.0), (NOW, 36.0, 55.0)], start=start, end=NOW
    )
    assert one.count("<circle") == 2  # allocated and usable, where a line cannot be drawn
    assert "<circle" not in two


def test_pool_list_shows_sparkline_and_soon_exhausted_pools(viewer_client, pool):
    now = timezone.now()
    for h in range(0, 48, 2):
        _sample(pool, now - dt.timedelta(hours=h), 100.0 - 2 * h)
    html = viewer_client.get("/pools/").content.decode()
    assert 'class="sparkline"' in html and "full in 3 d" in html
    page = viewer_client.get(f"/pools/{pool.pk}/").content.decode()
    assert 'class="history-chart"' in page and 'id="pool-exhaustion"' in page


def test_metrics_export_days_to_exhaustion_of_filling_pools_only(pool):
    from ippam.metrics import metrics_text

    flat = make_pool(pool.cluster, "10.3.0.0/24", allocated=5)
    now = timezone.now()
    for h in range(0, 48, 2):
        _sample(pool, now - dt.timedelta(hours=h), 100.0 - 2 * h)
        _sample(flat, now - dt.timedelta(hours=h), 5.0)
    lines = [
        line
        for line in metrics_text().decode().splitlines()
        if line.startswith("ippam_pool_days_to_exhaustion{")
    ]
    assert len(lines) == 1 and f'pool="{pool.name}"' in lines[0]
    assert float(lines[0].rsplit(" ", 1)[1]) == pytest.approx(154 / 48, rel=0.01)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_pool_page_history_chart_in_a_browser(page, live_server, make_user):
    """The chart renders under the CSP (no console error) and is saved for the README."""
    from playwright.sync_api import expect

    from tests.browser import SCREENSHOTS, log_in

    pool = make_pool(make_cluster("prod"), "10.20.0.0/24", network_name="storage", allocated=212)
    now = timezone.now()
    rng = random.Random(3)
    rows = []
    for h in range(0, 30 * 24, 6):  # 30 days filling from ~70 to 212 addresses, with churn
        at = now - dt.timedelta(hours=h)
        level = 212 - h * 0.2 + rng.uniform(-4, 4)
        rows.append(PoolSample(pool=pool, at=at, allocated=max(level, 0), usable=254))
    PoolSample.objects.bulk_create(rows)
    user = make_user("carol", "viewer")
    user.set_password("carol-pw-123")
    user.save()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    log_in(page, live_server.url, "carol", "carol-pw-123")
    page.goto(f"{live_server.url}/pools/{pool.pk}/")
    chart = page.locator("#pool-history svg.history-chart")
    expect(chart).to_be_visible()
    expect(page.locator("#pool-exhaustion")).to_contain_text("runs out in about")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.locator("#pool-history").screenshot(path=str(SCREENSHOTS / "pool-history.png"))
    assert errors == []


def test_rounding_residue_of_a_flat_series_is_no_trend():
    from ippam.history import Sums, days_to_exhaustion, trend_slope

    # 24 samples of 5.0 two hours apart, summed in another order than Python's: PostgreSQL
    # left sxy off by one ulp, which read as a pool running out in 5e16 days.
    flat = Sums(n=24, sx=-23.0, sy=120.0, sxx=30.6, sxy=-114.99999999999999)
    assert trend_slope(flat) == 0.0
    assert days_to_exhaustion(slope=trend_slope(flat), usable=254.0, allocated=5.0) is None
