"""Template helpers of the dashboard: utilization bars, sortable headers, pagers, map cells."""

from __future__ import annotations

import functools
import html
from typing import Any

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.template.defaultfilters import date as date_filter
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import slugify

from ippam.poolnumbers import percent_text, readable

register = template.Library()

WARN_FROM = 0.75
BAD_FROM = 0.90


@register.filter
def util_level(utilization: float | None) -> str:
    """The bar colour, as NetBox draws it: green, amber from 75%, red from 90%."""
    u = float(utilization or 0)
    if u >= BAD_FROM:
        return "bad"
    if u >= WARN_FROM:
        return "warn"
    return "ok"


@register.filter
def bignum(value: Any) -> str:
    """A count a person can read: exact with thousands separators up to 12 digits (never
    through float: intcomma rounds a /64's count), else "2^63−1" or "9.2 × 10^18" with the
    exact count in its title."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        return str(value)
    shown = readable(n)
    if shown == f"{n:,}":
        return shown
    return format_html('<span class="bignum" title="{}">{}</span>', f"{n:,}", shown)


@register.filter
def percent(utilization: float | None) -> str:
    return percent_text(float(utilization or 0))


LEVEL_MARKS = {"ok": ("", ""), "warn": ("▲", ", high"), "bad": ("■", ", critical")}


@register.simple_tag
def util_bar(utilization: float | None) -> str:
    u = max(0.0, float(utilization or 0))
    # A width class per whole percent (static/css/ippam.css), not style="": a strict CSP
    # (no 'unsafe-inline') drops inline styles. Any use above 0 shows at least 1%.
    width = round(min(u, 1.0) * 100)
    if u > 0 and width == 0:
        width = 1
    level = util_level(u)
    # The level in a shape and a word as well as a colour (WCAG 1.4.1): amber ▲, red ■.
    mark, word = LEVEL_MARKS[level]
    icon = format_html('<span class="level" aria-hidden="true">{}</span>', mark) if mark else ""
    return format_html(
        '<div class="bar {}" title="{} used" role="img" aria-label="{} used{}">'
        '<span class="track"><span class="w-{}"></span></span><em>{}{}</em></div>',
        level,
        percent(u),
        percent(u),
        word,
        width,
        icon,
        percent(u),
    )


@register.simple_tag
def sort_th(key: str, label: str, sort: str, qs: str, target: str, path: str = "") -> str:
    """A column header that sorts the table (asc, then desc), by link or by htmx."""
    current = sort.lstrip("-")
    desc = sort.startswith("-")
    new = f"-{key}" if current == key and not desc else key
    arrow = ("▼" if desc else "▲") if current == key else ""
    url = f"{path}?{qs}{urlencode({'sort': new})}"
    aria = ("descending" if desc else "ascending") if current == key else "none"
    return format_html(
        '<th class="sortable{}" aria-sort="{}"><a href="{}" hx-get="{}" hx-target="#{}" hx-swap="outerHTML" hx-push-url="true" data-focus-key="sort-{}">{} {}</a></th>',
        " sorted" if arrow else "",
        aria,
        url,
        url,
        target,
        key,
        label,
        arrow,
    )


LINKED_CELLS = {"allocated", "leaked", "suspect", "freed", "held"}  # search says who holds/held it


@register.simple_tag
def alloc_cells(cells: list[Any]) -> SafeString:
    """The cells of an allocation map; built here, not in a template loop: a /22 has 1024."""
    search = reverse("search")
    parts = []
    for cell in cells:
        ip = escape(str(cell.ip))
        title = escape(cell.title)
        if cell.state.partition(" ")[0] in LINKED_CELLS:  # "allocated reused": two classes
            parts.append(
                f'<a class="cell {cell.state}" href="{search}?q={ip}" title="{title}" data-ip="{ip}"></a>'
            )
        else:
            parts.append(f'<span class="cell {cell.state}" title="{title}" data-ip="{ip}"></span>')
    return mark_safe("".join(parts))  # every interpolated value is escaped above


@register.simple_tag
def heat_blocks(blocks: list[Any], pool_url: str) -> SafeString:
    """The blocks of a heat map, each a link (and an htmx request) that zooms into it."""
    parts = []
    pool_url = escape(pool_url)
    for b in blocks:
        # Once, and not through an IPNetwork: 256 blocks a map. Our own text of an address
        # and a prefix length (hex digits, ".", ":", "/"): nothing in it to escape, and
        # quote(cidr, safe="") would only encode "/" and ":" (~2 ms a map through quote()
        # and escape()).
        net = b.cidr
        url = f"{pool_url}?block={net.replace('/', '%2F').replace(':', '%3A')}"
        classes = f"block heat-{b.level}"
        if b.leaked:
            classes += " has-leaks"
        elif b.suspect:
            classes += " has-suspect"
        if not b.usable:
            classes += " unusable"
        title = f"{net}: {readable(b.allocated)} of {readable(b.usable)} allocated"
        if b.leaked:
            title += f", {b.leaked} leaked"
        if b.suspect:
            title += f", {b.suspect} suspect"
        # hx-target, hx-swap and hx-push-url are the map's, inherited (pool_detail.html).
        parts.append(
            f'<a class="{classes}" href="{url}" hx-get="{url}" title="{title}" '
            f'data-block="{net}"></a>'
        )
    return mark_safe("".join(parts))  # every interpolated value is escaped or safe above


@functools.lru_cache(maxsize=64)
def _state_slug(state: str) -> str:
    return slugify(state)


@register.simple_tag
def alloc_rows(rows: list[Any]) -> SafeString:
    """The rows of a pool's allocations table (an `AllocationRow` each), built here, not in a
    template loop: the same HTML the loop gave, in a tenth of the time."""
    # html.escape is what django.utils.html.escape returns (wrapped in a SafeString, through
    # keep_lazy): called directly, ~450 calls a page cost half. One reverse() for every
    # node's link: a page of 50 rows can name 50 nodes (~30 us each).
    esc = html.escape
    node_head, node_tail = reverse("node_detail", args=[1]).rsplit("1", 1)
    node_head, node_tail = esc(node_head), esc(node_tail)
    parts = []
    for r in rows:
        a = r.allocation
        state = esc(r.state)
        slug = _state_slug(str(r.state))
        if r.node is not None:
            node = f'<a href="{node_head}{int(r.node.pk)}{node_tail}">{esc(r.node.name)}</a>'
        elif r.pod is not None and r.pod.node_name:
            node = esc(r.pod.node_name)
        else:
            node = '<span class="muted">—</span>'
        reason = f' title="{esc(r.reason)}"' if r.reason else ""
        parts.append(
            f'\n    <tr id="alloc-{esc(a.key)}" class="state-{slug}">'
            f'\n      <td class="mono">{esc(str(a.ip))}</td>'
            f"\n      <td>{esc(a.podref or '—')}</td>"
            f"\n      <td>{node}</td>"
            f"\n      <td>{esc(a.ifname or '—')}</td>"
            f'\n      <td class="mono" title="{esc(a.container_id)}">'
            f"{esc(shortid(a.container_id))}</td>"
            f'\n      <td><span class="badge st-{slug}"{reason}>{state}</span></td>'
            "\n    </tr>\n    "
        )
    return mark_safe("".join(parts))  # every interpolated value is escaped above


@register.inclusion_tag("dashboard/includes/pager.html")
def pager(page: Any, qs: str, target: str, path: str = "") -> dict[str, Any]:
    return {"page": page, "qs": qs, "target": target, "path": path}


@register.filter
def get_item(mapping: dict, key: Any) -> Any:
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def shortid(value: str | None, n: int = 12) -> str:
    return (value or "")[: int(n)]


# The overview's and the pool page's repeated rows, built here rather than in template loops
# (issue 15: template variable lookups, {% url %} and filters per row were most of those
# pages' time). Each gives the markup its loop gave.


def _datetime_attr(value: Any) -> str:
    """What `{{ value|date:'c' }}` gives: the template converts an aware datetime to the
    current time zone before the filter."""
    if not value:
        return ""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return escape(date_filter(value, "c"))


def _pool_url(pk: Any, cache: dict[Any, str]) -> str:
    url = cache.get(pk)
    if url is None:
        url = cache[pk] = escape(reverse("pool_detail", args=[pk]))
    return url


@register.simple_tag
def failure_rows(failures: list[Any]) -> SafeString:
    """The rows of an attachment failures table (an `AttachmentFailure` each)."""
    urls: dict[Any, str] = {}
    parts = []
    for f in failures:
        e = f.event
        count = f' <span class="muted">×{e.count}</span>' if e.count and e.count > 1 else ""
        when = escape(naturaltime(e.last_seen)) if e.last_seen else "—"
        if f.node is not None:
            node_url = escape(reverse("node_detail", args=[f.node.pk]))
            node = f'<a href="{node_url}">{escape(f.node.name)}</a>'
        elif f.pod is not None and f.pod.node_name:
            node = escape(f.pod.node_name)
        else:
            node = '<span class="muted">—</span>'
        if e.nad_id is not None:
            nad_url = escape(reverse("nad_detail", args=[e.nad_id]))
            nad = f'<a href="{nad_url}">{escape(str(e.nad))}</a>'
        else:
            nad = '<span class="muted">—</span>'
        if e.pool_id is not None:
            pool = f'<a href="{_pool_url(e.pool_id, urls)}">{escape(e.pool.range)}</a>'
        else:
            pool = '<span class="muted">—</span>'
        parts.append(
            '\n  <tr class="failure">'
            f'\n    <td title="{_datetime_attr(e.last_seen)}">{when}{count}</td>'
            f"\n    <td>{escape(e.pod_namespace)}/{escape(e.pod_name)}</td>"
            f"\n    <td>{node}</td>"
            f"\n    <td><b>{escape(f.explanation)}</b><details><summary>CNI error</summary>"
            f'<pre class="wrap">{escape(e.message)}</pre></details></td>'
            f"\n    <td>{nad}</td>"
            f"\n    <td>{pool}</td>"
            "\n  </tr>\n  "
        )
    return mark_safe("".join(parts))  # every interpolated value is escaped above


@register.simple_tag
def overview_pool_rows(pools: list[Any], cluster: Any) -> SafeString:
    """The rows of the overview's fullest pools table (a cluster column when `cluster` is
    None: all clusters shown)."""
    show_cluster = not cluster
    urls: dict[Any, str] = {}
    leaks_url = escape(reverse("leak_list"))
    parts = []
    for p in pools:
        n = p.numbers
        cluster = f"\n      <td>{escape(p.cluster.name)}</td>" if show_cluster else ""
        leaks = (
            f'<a class="badge bad" href="{leaks_url}?pool={p.pk}">{p.leak_count}</a>'
            if p.leak_count
            else "0"
        )
        parts.append(
            f'\n    <tr data-pool="{p.pk}">'
            f'\n      <td><a href="{_pool_url(p.pk, urls)}">{escape(p.range)}</a></td>'
            f"\n      <td>{escape(p.network_name or '—')}</td>{cluster}"
            f'\n      <td class="num">{bignum(n.allocated)} / {bignum(n.usable)}</td>'
            f"\n      <td>{util_bar(n.utilization)}</td>"
            f'\n      <td class="num">{leaks}</td>'
            "\n    </tr>\n    "
        )
    return mark_safe("".join(parts))  # every interpolated value is escaped above


@register.simple_tag
def alert_items(alerts: list[Any]) -> SafeString:
    """The overview's recent alerts, one <li> each."""
    urls: dict[Any, str] = {}
    parts = []
    for a in alerts:
        state = escape(a.state)
        badge = "bad" if a.state == "open" else "muted"
        pool = (
            f'<a href="{_pool_url(a.pool_id, urls)}">{escape(a.pool.range)}</a>'
            if a.pool_id is not None
            else ""
        )
        acked = (
            f' <span class="muted">· acknowledged by {escape(a.acknowledged_by.get_username())}'
            "</span>"
            if a.acknowledged_by_id is not None
            else ""
        )
        parts.append(
            f'\n    <li class="alert {state}">'
            '\n      <div class="alert-head">'
            f'\n        <span class="badge {badge}">{state}</span>'
            f'\n        <span class="kind">{escape(a.get_kind_display())}</span>'
            f"\n        {pool}"
            f'\n        <time class="muted" datetime="{_datetime_attr(a.opened_at)}">'
            f"{escape(naturaltime(a.opened_at))}</time>"
            "\n      </div>"
            f'\n      <div class="msg">{escape(a.text)}{acked}</div>'
            "\n    </li>\n    "
        )
    return mark_safe("".join(parts))  # every interpolated value is escaped above
