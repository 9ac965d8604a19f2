"""Pool history in templates: the pools list's sparkline, the pool page's chart, the forecast."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django import template
from django.utils.safestring import SafeString, mark_safe

from ippam.charts import history_chart_svg, sparkline_svg
from ippam.history import SHOW_EXHAUSTION_UNDER_DAYS

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
def runs_out_soon(days: float | None) -> bool:
    """Whether days to exhaustion is worth showing: known and under 30 days."""
    return days is not None and days < SHOW_EXHAUSTION_UNDER_DAYS
