from __future__ import annotations

from django.http import Http404, HttpResponse

from dashboard.views.common import (
    DashboardRequest,
    paginate,
    query_without,
    render_page,
    selected_cluster,
)
from ippam.filters import NodeFilter
from ippam.models import Node
from ippam.selectors.failures import attachment_failures
from ippam.selectors.nodes import (
    attach_missing_attachments,
    node_address_split,
    node_get,
    node_pods,
)
from ippam.selectors.nodes import node_list as node_list_selector
from ippam.selectors.nodeslice import node_slices


def node_list(request: DashboardRequest) -> HttpResponse:
    cluster = selected_cluster(request)
    nodes, sort = node_list_selector(cluster=cluster, sort=request.GET.get("sort"))
    filterset = NodeFilter(request.GET, queryset=nodes)
    context = {
        "cluster": cluster,
        "filter": filterset,
        "page": paginate(request, filterset.qs),
        "q": request.GET.get("q", "").strip(),
        "sort": sort,
        "qs_page": query_without(request, "page", "cluster"),
        "qs_sort": query_without(request, "page", "sort", "cluster"),
    }
    return render_page(request, "dashboard/nodes.html", context, partial="nodes-table")


def node_detail(request: DashboardRequest, node_id: int) -> HttpResponse:
    selected_cluster(request)
    try:
        node = node_get(node_id=node_id)
    except Node.DoesNotExist:
        raise Http404("No such node") from None
    page = paginate(request, node_pods(node=node))
    attach_missing_attachments(list(page.object_list))
    context = {
        "node": node,
        "page": page,
        "address_split": node_address_split(node=node),
        "qs_page": query_without(request, "page", "cluster"),
        "failures": attachment_failures(node=node, limit=20),
        "node_slices": node_slices(cluster=node.cluster_id, node_name=node.name, node_id=node.pk),
    }
    return render_page(request, "dashboard/node_detail.html", context, partial="node-pods")
