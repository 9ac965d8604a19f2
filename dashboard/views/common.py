"""What every dashboard view shares: the selected cluster, paging, and the two renderings."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url
from django.utils.cache import patch_vary_headers
from django.utils.functional import cached_property
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.middleware import HtmxDetails

from ippam.models import Cluster
from ippam.roles import role_needed
from ippam.selectors.clusters import cluster_list

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., HttpResponse])

SESSION_KEY = "ippam_cluster"
PAGE_SIZE = 50


class DashboardRequest(HttpRequest):
    """A request as the dashboard's views get it (for the type checker; never built): the
    HtmxMiddleware sets `htmx`, and `selected_cluster` caches the cluster picker's choice."""

    htmx: HtmxDetails
    ippam_clusters: list[Cluster]
    ippam_selected: Cluster | None


def safe_next_url(request: HttpRequest, *, default: str) -> str:
    """Where to send the browser back to: the `next` field (POST, else GET) when it points at
    this site, else `default` (a URL name or path, resolved here).

    Only a path ("/alerts/?state=open") or an absolute URL on this host and scheme is
    followed: an off-site, scheme-relative ("//evil.example"), `javascript:` or merely
    relative ("foo") next falls back. Views call this before they write anything, so a bad
    `next` can never turn a committed write into an error page.
    """
    candidate = (request.POST.get("next") or request.GET.get("next") or "").strip()
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        parts = urlsplit(candidate)
        if candidate.startswith("/") or (parts.scheme in ("http", "https") and parts.netloc):
            return candidate
    return resolve_url(default)


def _choose(clusters: list[Cluster], session_value: str) -> Cluster | None:
    return {c.name: c for c in clusters}.get(session_value)


def selected_cluster(request: DashboardRequest) -> Cluster | None:
    """The cluster the user looks at (None: all), remembered in the session.

    `?cluster=<name>` on any page switches it; `?cluster=` or `?cluster=all` shows all.
    This is the only place that writes the choice into the session: every page calls it
    (render_page does), and the layout's context processor only reads what it cached on
    the request. The cluster list is cached there too, so the layout needs no query for it.
    """
    if hasattr(request, "ippam_selected"):
        return request.ippam_selected
    clusters = cluster_list()
    names = {c.name for c in clusters}
    session = request.session
    if "cluster" in request.GET:
        wanted = request.GET.get("cluster", "").strip()
        if wanted in names:
            session[SESSION_KEY] = wanted
        else:
            session.pop(SESSION_KEY, None)
    chosen = _choose(clusters, session.get(SESSION_KEY, ""))
    if chosen is None and SESSION_KEY in session:
        session.pop(SESSION_KEY, None)  # the remembered cluster was removed
    request.ippam_clusters = clusters
    request.ippam_selected = chosen
    return chosen


def remembered_cluster(request: HttpRequest) -> tuple[list[Cluster], Cluster | None]:
    """(clusters, the chosen one) for the layout, without touching the session.

    Pages have called selected_cluster already (cached on the request); a page that did not
    (an error page, the admin's password change) shows the remembered choice as it stands.
    """
    if hasattr(request, "ippam_selected"):
        return request.ippam_clusters, request.ippam_selected  # type: ignore[attr-defined]
    clusters = cluster_list()
    session = getattr(request, "session", None)
    return clusters, _choose(clusters, session.get(SESSION_KEY, "") if session else "")


class KnownCountPaginator(Paginator):
    """A Paginator told how many items there are, so it never runs a `COUNT(*)`."""

    def __init__(self, object_list: QuerySet | list, per_page: int, *, count: int) -> None:
        super().__init__(object_list, per_page)
        self._known_count = max(int(count), 0)

    @cached_property
    def count(self) -> int:
        return self._known_count


def paginate(
    request: HttpRequest,
    items: QuerySet | list,
    *,
    per_page: int = PAGE_SIZE,
    param: str = "page",
    count: int | None = None,
) -> Page:
    """A page of items; a page number that is garbage or out of range gives the nearest page.

    `count`, when the caller already knows how many items there are (a maintained counter),
    spares the `COUNT(*)` of the items.
    """
    paginator = (
        Paginator(items, per_page)
        if count is None
        else KnownCountPaginator(items, per_page, count=count)
    )
    return paginator.get_page(request.GET.get(param))


def query_without(request: HttpRequest, *names: str) -> str:
    """The current query string minus `names`, ending in `&` when not empty (for page links)."""
    params = request.GET.copy()
    for name in names:
        params.pop(name, None)
    encoded = params.urlencode()
    return f"{encoded}&" if encoded else ""


def wants_fragment(request: HttpRequest) -> bool:
    htmx: HtmxDetails | None = getattr(request, "htmx", None)
    return bool(htmx and not htmx.boosted and not htmx.history_restore_request)


def fragment_name(
    request: DashboardRequest, *, partial: str, targets: Mapping[str, str] | None = None
) -> str | None:
    """The partial `render_page` renders for this request, or None for the whole page."""
    if not wants_fragment(request):
        return None
    return (targets or {}).get(request.htmx.target or "", partial)


def render_page(
    request: DashboardRequest,
    template: str,
    context: dict[str, Any],
    *,
    partial: str | None,
    targets: Mapping[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    """One URL, two renderings: the page, or (htmx) the partial named for the HX-Target.

    `targets` maps element ids to partial names, for pages with several regions (the
    overview polls each region by its id); any other htmx request gets `partial` (None: a
    page that has no fragment, always whole). Every dashboard page answers through here, so
    each varies on the htmx headers (a cached fragment is never shown as a page) and a
    history restore or a boosted link gets the whole page.
    """
    selected_cluster(request)  # settles the session's cluster before anything renders
    name = fragment_name(request, partial=partial, targets=targets) if partial else None
    if name is not None:
        template = f"{template}#{name}"
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


def render_fragment(
    request: DashboardRequest, template: str, name: str, context: dict[str, Any]
) -> HttpResponse:
    """A named partial only: what an htmx mutation answers with (the changed rows)."""
    response = render(request, f"{template}#{name}", context)
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


def role_required(permission: str) -> Callable[[ViewFunc], ViewFunc]:
    """Refuse a user without `permission` with a 403 page that names the role needed
    (templates/403.html shows the message); an anonymous user is sent to log in first."""

    def decorator(view: ViewFunc) -> ViewFunc:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not request.user.has_perm(permission):
                raise PermissionDenied(
                    f"This needs the {role_needed(permission)} role; your account does not "
                    "have it. An admin can add it under Admin › Users."
                )
            return view(request, *args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator
