from __future__ import annotations

from typing import Any, cast

from django.db.models import QuerySet
from django.http import Http404, HttpResponse

from dashboard.views.common import (
    DashboardRequest,
    fragment_name,
    paginate,
    query_without,
    render_page,
    selected_cluster,
)
from ippam.filters import PoolFilter
from ippam.models import Allocation, IPPool
from ippam.selectors.failures import attachment_failures
from ippam.selectors.free_addresses import pool_free_summary
from ippam.selectors.history import pool_history_and_freed, pools_attach_history
from ippam.selectors.pool_map import pool_allocation_map
from ippam.selectors.pools import allocation_rows, pool_allocations, pool_get, pool_list_with_usage
from ippam.selectors.reclaim import reclaim_offered
from ippam.userinput import clean_query


def pool_list(request: DashboardRequest) -> HttpResponse:
    cluster = selected_cluster(request)
    pools, sort = pool_list_with_usage(cluster=cluster, sort=request.GET.get("sort"))
    filterset = PoolFilter(request.GET, queryset=pools)
    page = paginate(request, filterset.qs)
    page.object_list = pools_attach_history(page.object_list)
    context = {
        "cluster": cluster,
        "filter": filterset,
        "page": page,
        "q": request.GET.get("q", "").strip(),
        "sort": sort,
        "qs_page": query_without(request, "page", "cluster"),
        "qs_sort": query_without(request, "page", "sort", "cluster"),
    }
    return render_page(request, "dashboard/pools.html", context, partial="pools-table")


POOL_DETAIL_TARGETS = {
    "pool-map": "pool-map",
    "pool-allocations": "pool-allocations",
    "pool-free": "pool-free",
    "pool-failures": "pool-failures",
}


def pool_detail(request: DashboardRequest, pool_id: int) -> HttpResponse:
    selected_cluster(request)
    # Only what the rendering shows: the htmx fragments are one region each.
    fragment = fragment_name(request, partial="pool-allocations", targets=POOL_DETAIL_TARGETS)
    try:
        pool = pool_get(pool_id=pool_id, summary=fragment is None, clusters=request.ippam_clusters)
    except IPPool.DoesNotExist:
        raise Http404("No such IPPool") from None
    q = request.GET.get("q", "").strip()
    block = request.GET.get("block", "")
    # Not "block": inside {% block %} Django binds that name to its own BlockNode.
    context: dict[str, Any] = {"pool": pool, "q": q, "map_block": block}
    if fragment in (None, "pool-map"):
        context["map"] = pool_allocation_map(pool, block=block)
    if fragment in (None, "pool-allocations"):
        # Without a filter the pool's own counter (kept by sync) is the count: no COUNT(*).
        count = None if clean_query(q) else pool.allocated
        page = paginate(request, pool_allocations(pool=pool, q=q), count=count)
        context["page"] = page
        # The page of a QuerySet is a sliced QuerySet: the rows' query pages by subquery.
        context["rows"] = allocation_rows(cast(QuerySet[Allocation], page.object_list), pool=pool)
        context["qs_page"] = query_without(request, "page", "cluster")
    # The free-address region reads every taken address of the pool (a /16 holds 60k), so
    # the page sends it on its own request (htmx on load, or ?free=1 without JavaScript)
    # and the page itself stays as quick as a small pool's.
    context["free"] = None
    if fragment == "pool-free" or (fragment is None and request.GET.get("free")):
        context["free"], context["free_blocks"] = pool_free_summary(pool=pool, count=5, top=10)
    # Attachment failures, the last card, come on their own request too (htmx on load, or
    # ?failures=1 without JavaScript): the page's first paint needs neither its query nor
    # its rows.
    context["failures"] = None
    if fragment == "pool-failures" or (fragment is None and request.GET.get("failures")):
        context["failures"] = attachment_failures(pool=pool, limit=20)
    if fragment is None:
        context["history"], context["recently_freed"] = pool_history_and_freed(pool=pool)
        # A Reclaim button only where reclaiming can free something (not "restart the pod").
        if request.user.has_perm("ippam.reclaim_allocation"):
            context["reclaim_offered"] = reclaim_offered(pool=pool)
    return render_page(
        request,
        "dashboard/pool_detail.html",
        context,
        partial="pool-allocations",
        targets=POOL_DETAIL_TARGETS,
    )
