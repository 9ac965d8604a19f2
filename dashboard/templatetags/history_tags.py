"""Pool history in templates: the pools list's sparkline, the pool page's chart, the forecast."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from django import template
from django.utils.safestring import SafeString, mark_safe

from ippam.charts import history_chart_svg, sparkline_svg
from ippam.history import HORIZON_DAYS, SHOW_EXHAUSTION_UNDER_DAYS, Forecast

register = template.Library()


@register.simple_tag
def sparkline(values: Sequence[float]) -> SafeString:
    # sparkline_svg writes only numbers and escaped text.
    return mark_safe(sparkline_svg(values or []))  # noqa: S308


@register.simple_tag
def history_chart(
    series: Sequence[tuple[dt.datetime, float, float]], start: dt.datetime, end: dt.datetime
) -> SafeString:
    return mark_safe(history_chart_svg(series, start=start, end=end))  # noqa: S308


@register.filter
def runs_out_soon(forecast: Forecast | None) -> bool:
    """Whether the forecast is worth showing: the pool is full now, or it may run out within
    30 days (the earliest end of the fit's band)."""
    return forecast is not None and (
        forecast.full or forecast.earliest < SHOW_EXHAUSTION_UNDER_DAYS
    )


@register.filter
def forecast_days(forecast: Forecast | None) -> str:
    """The forecast's band in whole days, widened outward ("9-14 days", "under a day",
    "0-2 days", "20 days to over a year"); "" for none or a full pool (the template says
    "full now")."""
    if forecast is None or forecast.full:
        return ""
    low, high = math.floor(forecast.earliest), math.ceil(forecast.latest)
    if high <= 1:
        return "under a day"
    if low == high:
        return f"about {low} days"
    if forecast.latest > HORIZON_DAYS:  # a slow rise the noise nearly swallows
        return f"{low} days to over a year"
    return f"{low}–{high} days"
