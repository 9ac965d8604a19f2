"""Pool history: samples per sync, downsampling, the forecast, and where it shows."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest
from django.utils import timezone
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ippam.charts import history_chart_svg, sparkline_svg
from ippam.history import (
    FULL_NOW,
    HORIZON_DAYS,
    MIN_SAMPLES,
    MIN_SPAN_DAYS,
    days_to_exhaustion,
    forecast,
    history_retain,
    pool_samples_record,
    t_975,
)
from ippam.models import FreedAddress, PoolSample
from ippam.selectors.history import (
    pool_days_to_exhaustion,
    pool_forecasts,
    pool_history,
    pool_history_and_freed,
)
from tests.factories import make_cluster, make_pool
from tests.html import select, select_one, text

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def _series(values: list[float], *, every_hours: float = 1.0) -> list[tuple[float, float]]:
    n = len(values)
    return [(-(n - 1 - i) * every_hours / 24, v) for i, v in enumerate(values)]


# --- the forecast on synthetic series (pure) -----------------------------------------------


def test_a_flat_series_never_runs_out():
    assert forecast(_series([50.0] * 100), usable=254, allocated=50) is None


def test_a_rising_series_runs_out_at_its_slope():
    # 10 addresses a day, 200 left: 20 days; a straight line has no spread.
    points = [(d, 50 + 10 * d) for d in [x / 4 for x in range(-28, 1)]]
    found = forecast(points, usable=250, allocated=50)
    assert found is not None and not found.full
    assert found.days == pytest.approx(20.0)
    assert found.earliest == pytest.approx(20.0) and found.latest == pytest.approx(20.0)


def test_a_falling_series_never_runs_out():
    assert forecast(_series([200.0 - i for i in range(100)]), usable=254, allocated=101) is None


def test_a_noisy_rising_series_is_close_to_its_trend_and_its_band_holds_the_truth():
    rng = random.Random(7)
    points = [(d / 24, 100 + 5 * d / 24 + rng.uniform(-3, 3)) for d in range(-168, 1)]
    found = forecast(points, usable=254, allocated=100)
    assert found is not None
    assert found.days == pytest.approx(154 / 5, rel=0.1)
    assert found.earliest < 154 / 5 < found.latest
    assert found.earliest < found.days < found.latest


def test_the_band_is_the_slopes_95_percent_interval():
    """slope +- t(0.975, n-2) * SE(slope), SE from the residuals: computed here the two-pass
    way, independently of the sums the forecast uses."""
    rng = random.Random(11)
    points = [(-i / 8, 80 + 3 * (-i / 8) + rng.gauss(0, 2)) for i in range(40)]
    xs, ys = [x for x, _ in points], [y for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    residuals = [y - (my + slope * (x - mx)) for x, y in points]
    se = (sum(r * r for r in residuals) / (len(points) - 2) / sxx) ** 0.5
    t = 2.0244  # Student's t, 97.5 %, 38 degrees of freedom (tables)
    allocated = my - slope * mx  # on the fitted line now
    found = forecast(points, usable=254, allocated=allocated)
    assert found is not None
    free = 254 - allocated
    assert found.days == pytest.approx(free / slope, rel=1e-9)
    assert found.earliest == pytest.approx(free / (slope + t * se), rel=1e-3)
    assert found.latest == pytest.approx(free / (slope - t * se), rel=1e-3)


@pytest.mark.parametrize(("df", "table"), [(10, 2.2281), (20, 2.0860), (30, 2.0423), (200, 1.9719)])
def test_students_t_quantile_matches_the_tables(df, table):
    assert t_975(df) == pytest.approx(table, abs=0.003)


def test_one_sample_gives_no_forecast():
    assert forecast([(0.0, 10.0)], usable=254, allocated=10) is None
    assert forecast([(0.0, 10.0), (0.0, 12.0)], usable=254, allocated=12) is None


def test_seven_minutes_of_churn_gives_no_forecast():
    """`make run`'s first minutes: a sync a minute, a pool rising fast by chance. Under a day
    of history is no trend, however steep (it said "full in 0 d" at 4 % used)."""
    points = [(-m / 1440, 5.0 + m % 3 + (7 - m)) for m in range(8)]
    assert forecast(points, usable=126, allocated=5) is None
    # A day's span but only a handful of samples: no forecast either.
    assert (
        forecast(_series([1.0, 5.0, 9.0, 13.0, 17.0], every_hours=8), usable=126, allocated=17)
        is None
    )


def test_a_full_pool_is_full_now_whatever_its_history():
    assert forecast(_series([250.0, 252.0, 254.0]), usable=254, allocated=254) == FULL_NOW
    assert forecast([], usable=254, allocated=254) == FULL_NOW
    assert forecast(_series([254.0] * 30), usable=254, allocated=254) == FULL_NOW
    assert days_to_exhaustion(FULL_NOW) is None  # the API and /metrics carry no number


def test_a_range_too_large_to_fill_has_no_forecast():
    # An IPv6 /64 (2^63 - 1 usable, whereabouts' cap) gaining 50 addresses a day.
    points = [(-h / 24, 1000 + 50 * (-h / 24)) for h in range(0, 168, 2)]
    assert forecast(points, usable=2.0**63 - 1, allocated=1000) is None
    # The same pace on a /24 that has 200 free: 4 days.
    found = forecast(points, usable=1200, allocated=1000)
    assert found is not None and found.days == pytest.approx(4.0)


def test_a_current_fill_the_trend_contradicts_gives_no_forecast():
    # The history climbs to 170 now, but the pool holds 3 (a mass free since): the trend's
    # "84 days" would be about a pool that is no longer there.
    points = [(-d / 2, 170 - 5 * d) for d in range(15)]
    assert forecast(points, usable=254, allocated=3) is None
    assert forecast(points, usable=254, allocated=170) is not None


def test_a_rise_the_noise_swallows_gives_no_forecast():
    rng = random.Random(3)
    points = [(-h / 24, 50 + 0.01 * (-h / 24) + rng.uniform(-20, 20)) for h in range(0, 168)]
    assert forecast(points, usable=254, allocated=50) is None


_days = st.floats(min_value=1 / 1440, max_value=7, allow_nan=False)


@st.composite
def _histories(draw):
    """Up to 200 samples within the trend window, any levels (0..300)."""
    xs = draw(st.lists(_days, min_size=0, max_size=200))
    ys = draw(st.lists(st.integers(0, 300), min_size=len(xs), max_size=len(xs)))
    return [(-x, float(y)) for x, y in zip(xs, ys, strict=True)]


@settings(max_examples=300, deadline=None)
@given(history=_histories(), usable=st.integers(1, 400), allocated=st.integers(0, 400))
def test_any_forecast_is_a_band_around_a_positive_finite_number(history, usable, allocated):
    found = forecast(history, usable=usable, allocated=allocated)
    if allocated >= usable:
        assert found == FULL_NOW
        return
    if found is None:
        return
    span = max(x for x, _ in history) - min(x for x, _ in history)
    assert len(history) >= MIN_SAMPLES and span >= MIN_SPAN_DAYS
    assert 0 < found.earliest <= found.days <= found.latest
    assert math.isfinite(found.latest) and found.earliest <= HORIZON_DAYS


@settings(max_examples=200, deadline=None)
@given(
    history=_histories().filter(lambda h: len(h) < MIN_SAMPLES),
    usable=st.integers(1, 400),
    allocated=st.integers(0, 399),
)
def test_too_few_samples_never_forecast(history, usable, allocated):
    assume(allocated < usable)
    assert forecast(history, usable=usable, allocated=allocated) is None


@settings(max_examples=200, deadline=None)
@given(
    levels=st.lists(st.integers(0, 300), min_size=MIN_SAMPLES, max_size=100),
    every_hours=st.floats(min_value=0.5, max_value=12),
)
def test_a_pool_that_never_rises_never_forecasts(levels, every_hours):
    falling = sorted(levels, reverse=True)  # oldest first: non-increasing
    points = _series([float(v) for v in falling], every_hours=every_hours)
    assert forecast(points, usable=400, allocated=falling[-1]) is None


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
    found = forecast(points, usable=254, allocated=100)
    assert found is not None and days[pool.pk] == pytest.approx(found.days)
    assert days[pool.pk] == pytest.approx(154 / 48)


def test_pool_page_forecast_from_its_chart_rows_matches_the_database_sums(pool):
    """The pool page computes the forecast from the 30 days of rows its chart reads (one
    query); it must say what the API and /metrics say (the sums in SQL)."""
    rng = random.Random(5)
    for h in range(0, 20 * 24, 5):  # beyond the 7-day trend window, noisy, mixed resolutions
        _sample(
            pool,
            NOW - dt.timedelta(hours=h),
            100.0 - 0.2 * h + rng.uniform(-3, 3),
            "raw" if h < 48 else "hour",
        )
    _sample(pool, NOW + dt.timedelta(hours=1), 500.0)  # after `now`: in neither
    history = pool_history(pool=pool, now=NOW)
    expected = pool_forecasts(pools=[(pool.pk, 254.0, 100.0)], now=NOW)[pool.pk]
    assert history["days_to_exhaustion"] == pytest.approx(expected.days, rel=1e-9)
    assert history["forecast"].earliest == pytest.approx(expected.earliest, rel=1e-9)
    assert history["forecast"].latest == pytest.approx(expected.latest, rel=1e-9)
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


def _rising(pool, now, *, hours=48, per_hour=2.0):
    """A sample every 2 hours, rising `per_hour` up to the pool's current allocated."""
    for h in range(0, hours, 2):
        _sample(pool, now - dt.timedelta(hours=h), pool.allocated - per_hour * h)


def test_pools_list_and_pool_page_show_the_band_full_now_and_nothing_without_history(
    viewer_client, pool
):
    now = timezone.now()
    _rising(pool, now)  # 48 a day, 154 free: 3.2 days, a straight line
    young = make_pool(pool.cluster, "10.4.0.0/25", allocated=5)
    _sample(young, now, 5.0)  # one sample: no forecast
    minutes = make_pool(pool.cluster, "10.6.0.0/25", allocated=5)
    for m in range(8):  # `make run`'s first minutes: steep, but no day of history
        _sample(minutes, now - dt.timedelta(minutes=m), 5.0 - m / 2)
    full = make_pool(pool.cluster, "10.5.0.0/24", allocated=254, usable=254)
    html = viewer_client.get("/pools/").content
    badges = {
        row["id"]: [text(b) for b in select(row, ".badge.exhaustion")]
        for row in select(html, "table tbody tr")
    }
    assert badges[f"pool-{pool.pk}"] == ["full in 3\u20134 days"]
    assert badges[f"pool-{young.pk}"] == [] and badges[f"pool-{minutes.pk}"] == []
    assert badges[f"pool-{full.pk}"] == ["full now"]
    page = viewer_client.get(f"/pools/{pool.pk}/").content
    assert select_one(page, "svg.history-chart") is not None
    assert "runs out in 3\u20134 days" in text(select_one(page, "#pool-exhaustion"))
    assert select(viewer_client.get(f"/pools/{young.pk}/").content, "#pool-exhaustion") == []
    assert "Full now" in text(
        select_one(viewer_client.get(f"/pools/{full.pk}/").content, "#pool-exhaustion")
    )


def test_metrics_export_days_to_exhaustion_only_where_there_is_a_forecast(pool):
    from ippam.metrics import metrics_text

    now = timezone.now()
    _rising(pool, now)
    flat = make_pool(pool.cluster, "10.3.0.0/24", allocated=5)
    young = make_pool(pool.cluster, "10.4.0.0/25", allocated=5)
    full = make_pool(pool.cluster, "10.5.0.0/24", allocated=254, usable=254)
    huge = make_pool(pool.cluster, "fd00:60::/64", allocated=1000, usable=2**63 - 1)
    for h in range(0, 48, 2):
        _sample(flat, now - dt.timedelta(hours=h), 5.0)
        _sample(full, now - dt.timedelta(hours=h), 254.0 - h)
        _sample(huge, now - dt.timedelta(hours=h), 1000.0 - 2 * h)
    _sample(young, now, 5.0)
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
    expect(page.locator("#pool-exhaustion")).to_contain_text("runs out in")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.locator("#pool-history").screenshot(path=str(SCREENSHOTS / "pool-history.png"))
    assert errors == []


def test_rounding_residue_of_a_flat_series_is_no_trend():
    from ippam.history import Sums, forecast_of, trend_slope

    # 24 samples of 5.0 two hours apart, summed in another order than Python's: PostgreSQL
    # left sxy off by one ulp, which read as a pool running out in 5e16 days.
    flat = Sums(n=24, sx=-23.0, sy=120.0, sxx=30.6, sxy=-114.99999999999999)
    assert trend_slope(flat) == 0.0
    assert forecast_of(flat, usable=254.0, allocated=5.0) is None


def test_the_band_reads_in_whole_days_widened_outward():
    from dashboard.templatetags.history_tags import forecast_days, runs_out_soon
    from ippam.history import Forecast

    def band(days, earliest, latest):
        return forecast_days(Forecast(full=False, days=days, earliest=earliest, latest=latest))

    assert band(11.2, 9.4, 13.1) == "9\u201314 days"
    assert band(0.3, 0.2, 0.6) == "under a day"
    assert band(3.2, 3.2, 3.2) == "3\u20134 days"
    assert band(7.0, 7.0, 7.0) == "about 7 days"
    assert band(40.0, 20.0, 900.0) == "20 days to over a year"
    assert forecast_days(FULL_NOW) == "" and forecast_days(None) == ""
    assert runs_out_soon(FULL_NOW) and not runs_out_soon(None)
    # shown when the earliest end of the band is within 30 days, not the central estimate
    assert runs_out_soon(Forecast(full=False, days=40.0, earliest=25.0, latest=80.0))
    assert not runs_out_soon(Forecast(full=False, days=40.0, earliest=31.0, latest=50.0))
