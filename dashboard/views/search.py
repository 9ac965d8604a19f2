from __future__ import annotations

from django.http import HttpResponse

from dashboard.views.common import DashboardRequest, render_page, selected_cluster
from ippam.selectors.search import search as search_selector


def search(request: DashboardRequest) -> HttpResponse:
    cluster = selected_cluster(request)
    q = request.GET.get("q", "")
    context = {"cluster": cluster, "q": q.strip(), "results": search_selector(q, cluster=cluster)}
    return render_page(request, "dashboard/search.html", context, partial="search-results")
