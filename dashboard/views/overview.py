from __future__ import annotations

from django.http import HttpResponse

from dashboard.views.common import DashboardRequest, render_page, selected_cluster
from ippam import selectors

REGIONS = {
    "overview-totals": "overview-totals",
    "overview-pools": "overview-pools",
    "overview-alerts": "overview-alerts",
    "overview-sync": "overview-sync",
    "overview-failures": "overview-failures",
}


def overview(request: DashboardRequest) -> HttpResponse:
    cluster = selected_cluster(request)
    pools, _ = selectors.pool_list_with_usage(cluster=cluster, sort="-utilization")
    context = {
        "cluster": cluster,
        "totals": selectors.overview_totals(cluster=cluster),
        "pools": list(pools[:15]),
        "alerts": selectors.recent_alerts(cluster=cluster, limit=10),
        "health": selectors.cluster_health_list(
            clusters=[cluster] if cluster else request.ippam_clusters
        ),
        "failures": selectors.attachment_failures(cluster=cluster, limit=10),
    }
    return render_page(
        request, "dashboard/overview.html", context, partial="overview-body", targets=REGIONS
    )
