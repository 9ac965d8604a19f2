from __future__ import annotations

from django.http import HttpResponse

from dashboard.views.common import (
    DashboardRequest,
    paginate,
    query_without,
    render_page,
    selected_cluster,
)
from ippam.models import Finding
from ippam.selectors.findings import attach_finding_context, finding_counts, finding_list


def leak_list(request: DashboardRequest) -> HttpResponse:
    cluster = selected_cluster(request)
    kind = request.GET.get("kind", "")
    state = request.GET.get("state", "")
    q = request.GET.get("q", "").strip()
    pool = request.GET.get("pool", "")
    pool_id = int(pool) if pool.isdigit() else None
    page = paginate(
        request,
        finding_list(cluster=cluster, kind=kind, state=state, q=q, pool_id=pool_id),
    )
    findings = list(page.object_list)
    attach_finding_context(findings)
    context = {
        "cluster": cluster,
        "page": page,
        "findings": findings,
        "counts": finding_counts(cluster=cluster),
        "kind": kind if kind in Finding.Kind.values else "",
        "state": state if state in Finding.State.values else "",
        "q": q,
        "pool_id": pool_id,
        "kinds": Finding.Kind.choices,
        "qs_page": query_without(request, "page", "cluster"),
    }
    return render_page(request, "dashboard/leaks.html", context, partial="leaks-table")
