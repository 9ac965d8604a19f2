from __future__ import annotations

from typing import Any

from django.http import HttpResponse

from dashboard.views.common import (
    DashboardRequest,
    fragment_name,
    render_page,
    selected_cluster,
)
from ippam.selectors.clusters import cluster_health_list
from ippam.selectors.failures import attachment_failures
from ippam.selectors.overview import fullest_pools, overview_totals, recent_alerts

REGIONS = {
    "overview-totals": "overview-totals",
    "overview-pools": "overview-pools",
    "overview-alerts": "overview-alerts",
    "overview-sync": "overview-sync",
    "overview-failures": "overview-failures",
}


def overview(request: DashboardRequest) -> HttpResponse:
    cluster = selected_cluster(request)
    # A polled region (htmx, every 10 s each) needs its own data only.
    region = fragment_name(request, partial="overview-body", targets=REGIONS)

    def shown(name: str) -> bool:
        return region in (None, "overview-body", name)

    context: dict[str, Any] = {"cluster": cluster}
    if shown("overview-totals"):
        context["totals"] = overview_totals(cluster=cluster)
    if shown("overview-pools"):
        context["pools"] = fullest_pools(cluster=cluster, limit=15)
    if shown("overview-alerts"):
        context["alerts"] = recent_alerts(cluster=cluster, limit=10)
    if shown("overview-sync"):
        context["health"] = cluster_health_list(
            clusters=[cluster] if cluster else request.ippam_clusters
        )
    # The failures, the last region, load on their own request after the page (htmx on
    # load, then polled like the others; ?failures=1 without JavaScript).
    context["failures"] = None
    if region == "overview-failures" or (region is None and request.GET.get("failures")):
        context["failures"] = attachment_failures(cluster=cluster, limit=10)
    return render_page(
        request, "dashboard/overview.html", context, partial="overview-body", targets=REGIONS
    )
