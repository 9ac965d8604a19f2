"""The demo's month of history: plausible series (pure), seeded for the demo cluster's pools
so charts and the forecast show on the first run, and served by /api/v1/pools/<id>/history/."""

from __future__ import annotations

import datetime as dt

from ippam.demoseries import demo_growth_per_day, demo_series
from ippam.history import FULL_NOW, demo_history_seed, forecast
from ippam.models import PoolSample
from tests.factories import make_cluster, make_pool

NOW = dt.datetime(2026, 12, 8, 0, 30, tzinfo=dt.UTC)  # a Tuesday


def points(series, now=NOW, days=7):
    return [
        ((s.at - now).total_seconds() / 86400, s.allocated)
        for s in series
        if now - s.at <= dt.timedelta(days=days)
    ]


def test_a_series_is_a_month_of_hours_ending_at_the_count_now():
    series = demo_series(now=NOW, allocated=120, usable=254, exhausting=False, seed=1)
    assert len(series) == 30 * 24 + 1
    assert series[0].at == NOW - dt.timedelta(days=30) and series[-1] == (NOW, 120.0)
    assert all(0 <= s.allocated <= 254 for s in series)
    assert series[0].allocated < series[-1].allocated  # it grew
    assert demo_series(now=NOW, allocated=120, usable=254, exhausting=False, seed=1) == series


def test_weekends_are_quieter_than_weekdays():
    rate = demo_growth_per_day(allocated=200, usable=1000, exhausting=True)
    series = demo_series(now=NOW, allocated=200, usable=1000, exhausting=True, seed=3)

    def off_trend(weekdays):
        values = [
            s.allocated - (200 - rate * (NOW - s.at) / dt.timedelta(days=1))
            for s in series
            if s.at.weekday() in weekdays
        ]
        return sum(values) / len(values)

    assert off_trend({5, 6}) < off_trend({1, 2, 3}) - rate / 2  # a dip below the trend


def test_the_exhausting_pool_forecasts_about_two_weeks_and_the_others_no_alarm():
    series = demo_series(now=NOW, allocated=180, usable=254, exhausting=True, seed=2)
    found = forecast(points(series), usable=254, allocated=180)
    assert found is not None and found is not FULL_NOW
    assert 7 <= found.days <= 28 and found.earliest <= found.days <= found.latest

    slow = demo_series(now=NOW, allocated=60, usable=254, exhausting=False, seed=4)
    later = forecast(points(slow), usable=254, allocated=60)
    assert later is None or later.days > 60


def test_seeding_gives_the_demo_pools_a_month_and_the_api_answers_it(db, admin_client_role):
    cluster = make_cluster("demo")
    filling = make_pool(cluster, "10.10.0.0/24", allocated=200)
    quiet = make_pool(cluster, "10.20.0.0/24", allocated=40)
    v6 = make_pool(cluster, "fd00:10::/64", allocated=30)
    written = demo_history_seed(cluster=cluster)
    assert written == 3 * (30 * 24 + 1)
    assert demo_history_seed(cluster=cluster) == 0  # pools with history keep theirs
    assert set(PoolSample.objects.values_list("resolution", flat=True)) == {"raw", "hour"}

    body = admin_client_role.get(f"/api/v1/pools/{filling.pk}/history/").json()
    assert body["pool"] == filling.pk and len(body["samples"]) >= 30 * 24 - 2
    assert body["samples"][-1]["allocated"] == 200
    assert body["forecast"] is not None and 1 <= body["days_to_exhaustion"] <= 30

    assert admin_client_role.get(f"/api/v1/pools/{quiet.pk}/history/").json()["forecast"] is None
    v6_body = admin_client_role.get(f"/api/v1/pools/{v6.pk}/history/").json()
    assert v6_body["forecast"] is None and len(v6_body["samples"]) > 700
    assert admin_client_role.get("/api/v1/pools/999999/history/").status_code == 404


def test_the_exhausting_pool_forecasts_whatever_the_hour_of_the_week():
    """The forecast refuses a current count its fitted line contradicts: the weekly rhythm is
    smooth, so no hour of the week (a Saturday midnight included) looks like a sudden drop."""
    for hours in range(0, 7 * 24, 5):
        now = NOW + dt.timedelta(hours=hours)
        series = demo_series(now=now, allocated=82, usable=91, exhausting=True, seed=hours)
        found = forecast(points(series, now), usable=91, allocated=82)
        assert found is not None and 5 <= found.days <= 30, (now, found)
