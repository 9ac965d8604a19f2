"""A month of plausible history for a demo pool, so its chart, sparkline and forecast show on
the first `make run` (whereabouts keeps no history: ippam only knows what its syncs saw).

The series ends exactly at the pool's allocated count now and rises towards it linearly, with
the rhythm a cluster shows: busier on weekdays than at the weekend, busier by day than at
night, and a little noise. One pool is made to head for exhaustion in about two weeks; the
others grow by about one percent a week. Deterministic for a seed.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import NamedTuple

HISTORY = dt.timedelta(days=30)
STEP = dt.timedelta(hours=1)
EXHAUSTION_DAYS = 14.0
SLOW_GROWTH_PER_DAY = 0.01 / 7  # of the allocated count: about 1 % a week


class DemoSample(NamedTuple):
    at: dt.datetime
    allocated: float


def _rhythm(moment: dt.datetime, amplitude: float) -> float:
    """Deviation from the trend at `moment`: weekends and nights lower. Smooth (the weekend
    dip is a bell around Sunday 00:00), as scale-downs and batch jobs come and go over hours;
    a step would read as a sudden change the forecast rightly refuses to extrapolate."""
    days_into_week = moment.weekday() + (moment.hour + moment.minute / 60) / 24
    from_sunday = (days_into_week - 6.0 + 3.5) % 7 - 3.5  # -3.5..3.5 days around Sunday 00:00
    weekend = -amplitude * math.exp(-((from_sunday / 1.2) ** 2))
    daytime = 0.4 * amplitude * math.sin((moment.hour - 8) / 24 * 2 * math.pi)
    return weekend + daytime


def demo_growth_per_day(*, allocated: float, usable: float, exhausting: bool) -> float:
    """Addresses a day: to fill the free part in EXHAUSTION_DAYS for the exhausting pool
    (never falling below a fifth of today's count a month ago), slow growth otherwise."""
    if exhausting and usable > allocated:
        floor = 0.2 * allocated
        return min((usable - allocated) / EXHAUSTION_DAYS, (allocated - floor) / HISTORY.days)
    return allocated * SLOW_GROWTH_PER_DAY


def demo_series(
    *, now: dt.datetime, allocated: float, usable: float, exhausting: bool, seed: int
) -> list[DemoSample]:
    """Hourly samples over the last HISTORY, oldest first, ending at (now, allocated)."""
    rng = random.Random(seed)
    rate = demo_growth_per_day(allocated=allocated, usable=usable, exhausting=exhausting)
    # The rhythm stays small beside a week's growth, so the 7-day trend is still a trend.
    amplitude = min(1.5 * rate, 0.05 * allocated)
    steps = int(HISTORY / STEP)
    samples = []
    for back in range(steps, -1, -1):
        moment = now - back * STEP
        days = back * STEP / dt.timedelta(days=1)
        value = allocated - rate * days + _rhythm(moment, amplitude) - _rhythm(now, amplitude)
        if back:
            value += rng.gauss(0.0, 0.1 * amplitude)
        samples.append(DemoSample(moment, round(min(max(value, 0.0), usable), 1)))
    samples[-1] = DemoSample(now, float(allocated))
    return samples
