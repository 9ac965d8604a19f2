"""Server-rendered SVG charts: a sparkline for the pools list, a history chart for a pool.

Pure functions returning SVG markup. No chart library and no script; and no `style`
attributes (the Content-Security-Policy forbids inline styles): only SVG presentation
attributes and classes. Every text is escaped; numbers are formatted here.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from html import escape

_BLUE = "#2563eb"
_GREY = "#9ca3af"
_RED = "#dc2626"


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") or "0"


# Axes up to this top are labelled with whole numbers; above, as a mantissa x 10^n.
_EXACT_TOP = 1e9


def _tick(value: float, top: float) -> str:
    """An axis label: whole numbers with separators, unless the whole axis spans only a few
    addresses; above a billion a mantissa and the top's power of ten shared by every tick
    ("2.3 × 10^18" .. "9.2 × 10^18"), so labels stay short and read in order (19 digits
    overflowed the margin and showed only their last, unordered, digits)."""
    if top < 10:
        return _num(value)
    if top < _EXACT_TOP:
        return f"{value:,.0f}"
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(top))
    return f"{value / 10**exponent:.1f} × 10^{exponent}"


def _points(coords: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{_num(x)},{_num(y)}" for x, y in coords)


def sparkline_svg(values: Sequence[float], *, width: int = 120, height: int = 24) -> str:
    """A line of utilization values (0..1, oldest first); empty string with under 2 points."""
    if len(values) < 2:
        return ""
    pad = 2.0
    step = (width - 2 * pad) / (len(values) - 1)

    def y(v: float) -> float:
        return pad + (height - 2 * pad) * (1.0 - min(max(v, 0.0), 1.0))

    coords = [(pad + i * step, y(v)) for i, v in enumerate(values)]
    last = values[-1]
    colour = _RED if last >= 0.9 else _BLUE
    label = f"utilization over the last 7 days, now {last * 100:.0f}%"
    return (
        f'<svg class="sparkline" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>"
        f'<polyline points="{_points(coords)}" fill="none" stroke="{colour}" stroke-width="1.5" '
        'stroke-linejoin="round" stroke-linecap="round"/>'
        f'<circle cx="{_num(coords[-1][0])}" cy="{_num(coords[-1][1])}" r="2" fill="{colour}"/>'
        "</svg>"
    )


def history_chart_svg(
    series: Sequence[tuple[dt.datetime, float, float]],
    *,
    start: dt.datetime,
    end: dt.datetime,
    width: int = 720,
    height: int = 220,
) -> str:
    """Allocated (filled line) and usable (dashed line) over [start, end]; time on x."""
    ymax = max([1.0] + [max(a, u) for _, a, u in series])
    ticks = [(ymax * f, _tick(ymax * f, ymax)) for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
    # Room for the longest label (about 6.5 px a character at font-size 11).
    left = max(56.0, 6.5 * max(len(text) for _, text in ticks) + 10)
    right, top, bottom = 12.0, 12.0, 28.0
    plot_w, plot_h = width - left - right, height - top - bottom
    span = max((end - start).total_seconds(), 1.0)

    def x(at: dt.datetime) -> float:
        return left + plot_w * min(max((at - start).total_seconds() / span, 0.0), 1.0)

    def y(v: float) -> float:
        return top + plot_h * (1.0 - v / ymax)

    label = (
        f"allocated and usable addresses from {start:%Y-%m-%d} to {end:%Y-%m-%d}"
        if series
        else "no history yet: a sample is taken at every full sync"
    )
    parts = [
        f'<svg class="history-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}"><title>{escape(label)}</title>'
    ]
    for value, text in ticks:
        gy = y(value)
        parts.append(
            f'<line class="grid" x1="{_num(left)}" y1="{_num(gy)}" x2="{_num(width - right)}" '
            f'y2="{_num(gy)}" stroke="#e5e7eb" stroke-width="1"/>'
            f'<text class="tick" x="{_num(left - 6)}" y="{_num(gy + 4)}" text-anchor="end" '
            f'font-size="11" fill="#6b7280">{escape(text)}</text>'
        )
    for at, anchor in ((start, "start"), (end, "end")):
        parts.append(
            f'<text x="{_num(x(at))}" y="{height - 8}" text-anchor="{anchor}" font-size="11" '
            f'fill="#6b7280">{at:%Y-%m-%d}</text>'
        )
    if series:
        allocated = [(x(at), y(a)) for at, a, _ in series]
        usable = [(x(at), y(u)) for at, _, u in series]
        base = _num(top + plot_h)
        area = (
            f"{_num(allocated[0][0])},{base} {_points(allocated)} {_num(allocated[-1][0])},{base}"
        )
        parts.append(
            f'<polygon class="allocated-area" points="{area}" fill="{_BLUE}" fill-opacity="0.15"/>'
            f'<polyline class="usable" points="{_points(usable)}" fill="none" stroke="{_GREY}" '
            'stroke-width="1.5" stroke-dasharray="4 3"/>'
            f'<polyline class="allocated" points="{_points(allocated)}" fill="none" '
            f'stroke="{_BLUE}" stroke-width="2" stroke-linejoin="round"/>'
        )
        # A line needs two samples; after a pool's first sync, mark the one there is.
        if len(series) == 1:
            (ax, ay), (ux, uy) = allocated[0], usable[0]
            parts.append(
                f'<circle class="usable" cx="{_num(ux)}" cy="{_num(uy)}" r="3" fill="{_GREY}"/>'
                f'<circle class="allocated" cx="{_num(ax)}" cy="{_num(ay)}" r="4" fill="{_BLUE}"/>'
            )
    parts.append("</svg>")
    return "".join(parts)
