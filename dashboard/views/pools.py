from __future__ import annotations

from django.http import Http404, HttpResponse

from dashboard.views.common import (
    DashboardRequest,
    paginate,
    query_without,
    render_page,
    selected_cluster,
)
from ippam import selectors
from ippam.models import IPPool


def pool_list(request: DashboardRequest) -> HttpResponse:
    cluster = selected_cluster(request)
    q = request.GET.get("q", "").strip()
    pools, sort = selectors.pool_list_with_usage(cluster=cluster, sort=request.GET.get("sort"), q=q)
    context = {
        "cluster": cluster,
        "page": paginate(request, pools),
        "q": q,
        "sort": sort,
        "qs_page": query_without(request, "page", "cluster"),
        "qs_sort": query_without(request, "page", "sort", "cluster"),
    }
    return render_page(request, "dashboard/pools.html", context, partial="pools-table")


def pool_detail(request: DashboardRequest, pool_id: int) -> HttpResponse:
    selected_cluster(request)
    try:
        pool = selectors.pool_get(pool_id=pool_id)
    except IPPool.DoesNotExist:
        raise Http404("No such IPPool") from None
    q = request.GET.get("q", "").strip()
    block = request.GET.get("block", "")
    page = paginate(request, selectors.pool_allocations(pool=pool, q=q))
    context = {
        "pool": pool,
        "map": selectors.pool_allocation_map(pool, block=block),
        "legend": selectors.MAP_LEGEND,
        "page": page,
        "rows": selectors.allocation_rows(list(page.object_list), pool=pool),
        "q": q,
        "block": block,
        "qs_page": query_without(request, "page", "cluster"),
        "failures": selectors.attachment_failures(pool=pool, limit=20),
    }
    return render_page(
        request,
        "dashboard/pool_detail.html",
        context,
        partial="pool-allocations",
        targets={"pool-map": "pool-map", "pool-allocations": "pool-allocations"},
    )
