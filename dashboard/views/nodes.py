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
from ippam.models import Node


def node_list(request: DashboardRequest) -> HttpResponse:
    cluster = selected_cluster(request)
    q = request.GET.get("q", "").strip()
    nodes, sort = selectors.node_list(cluster=cluster, q=q, sort=request.GET.get("sort"))
    context = {
        "cluster": cluster,
        "page": paginate(request, nodes),
        "q": q,
        "sort": sort,
        "qs_page": query_without(request, "page", "cluster"),
        "qs_sort": query_without(request, "page", "sort", "cluster"),
    }
    return render_page(request, "dashboard/nodes.html", context, partial="nodes-table")


def node_detail(request: DashboardRequest, node_id: int) -> HttpResponse:
    selected_cluster(request)
    try:
        node = selectors.node_get(node_id=node_id)
    except Node.DoesNotExist:
        raise Http404("No such node") from None
    page = paginate(request, selectors.node_pods(node=node))
    selectors.attach_missing_attachments(list(page.object_list))
    context = {
        "node": node,
        "page": page,
        "qs_page": query_without(request, "page", "cluster"),
        "failures": selectors.attachment_failures(node=node, limit=20),
    }
    return render_page(request, "dashboard/node_detail.html", context, partial="node-pods")
