from __future__ import annotations

from django.http import Http404, HttpResponse

from dashboard.views.common import (
    DashboardRequest,
    paginate,
    query_without,
    render_page,
    selected_cluster,
)
from ippam.filters import NADFilter
from ippam.models import NetworkAttachmentDefinition
from ippam.selectors.failures import attachment_failures
from ippam.selectors.nads import nad_get, nad_interfaces, pretty_config
from ippam.selectors.nads import nad_list as nad_list_selector
from ippam.selectors.nodeslice import nad_node_slices
from ippam.selectors.shared import attach_nodes


def nad_list(request: DashboardRequest) -> HttpResponse:
    cluster = selected_cluster(request)
    nads, sort = nad_list_selector(cluster=cluster, sort=request.GET.get("sort"))
    filterset = NADFilter(request.GET, queryset=nads)
    context = {
        "cluster": cluster,
        "filter": filterset,
        "page": paginate(request, filterset.qs),
        "q": request.GET.get("q", "").strip(),
        "sort": sort,
        "qs_page": query_without(request, "page", "cluster"),
        "qs_sort": query_without(request, "page", "sort", "cluster"),
    }
    return render_page(request, "dashboard/nads.html", context, partial="nads-table")


def nad_detail(request: DashboardRequest, nad_id: int) -> HttpResponse:
    selected_cluster(request)
    try:
        nad = nad_get(nad_id=nad_id)
    except NetworkAttachmentDefinition.DoesNotExist:
        raise Http404("No such NetworkAttachmentDefinition") from None
    page = paginate(request, nad_interfaces(nad=nad))
    interfaces = list(page.object_list)
    attach_nodes(interfaces)
    context = {
        "nad": nad,
        "config_pretty": pretty_config(nad),
        "page": page,
        "interfaces": interfaces,
        "qs_page": query_without(request, "page", "cluster"),
        "failures": attachment_failures(nad=nad, limit=20),
        "node_slices": nad_node_slices(nad=nad),
    }
    return render_page(request, "dashboard/nad_detail.html", context, partial="nad-pods")
