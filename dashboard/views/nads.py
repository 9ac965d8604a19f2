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
from ippam.models import NetworkAttachmentDefinition


def nad_list(request: DashboardRequest) -> HttpResponse:
    cluster = selected_cluster(request)
    q = request.GET.get("q", "").strip()
    nads, sort = selectors.nad_list(cluster=cluster, q=q, sort=request.GET.get("sort"))
    context = {
        "cluster": cluster,
        "page": paginate(request, nads),
        "q": q,
        "sort": sort,
        "qs_page": query_without(request, "page", "cluster"),
        "qs_sort": query_without(request, "page", "sort", "cluster"),
    }
    return render_page(request, "dashboard/nads.html", context, partial="nads-table")


def nad_detail(request: DashboardRequest, nad_id: int) -> HttpResponse:
    selected_cluster(request)
    try:
        nad = selectors.nad_get(nad_id=nad_id)
    except NetworkAttachmentDefinition.DoesNotExist:
        raise Http404("No such NetworkAttachmentDefinition") from None
    page = paginate(request, selectors.nad_interfaces(nad=nad))
    interfaces = list(page.object_list)
    selectors.attach_nodes(interfaces)
    context = {
        "nad": nad,
        "config_pretty": selectors.pretty_config(nad),
        "page": page,
        "interfaces": interfaces,
        "qs_page": query_without(request, "page", "cluster"),
        "failures": selectors.attachment_failures(nad=nad, limit=20),
    }
    return render_page(request, "dashboard/nad_detail.html", context, partial="nad-pods")
