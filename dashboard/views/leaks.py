from __future__ import annotations

from django.http import HttpResponse

from dashboard.views.common import (
    DashboardRequest,
    paginate,
    query_without,
    render_page,
    selected_cluster,
)
from ippam.filters import FindingFilter
from ippam.findingkinds import RECLAIMABLE, SECTION_TITLES
from ippam.selectors.findings import (
    attach_finding_context,
    attach_finding_sections,
    finding_counts,
    finding_list,
    findings_reclaimable_first,
)


def leak_list(request: DashboardRequest) -> HttpResponse:
    cluster = selected_cluster(request)
    filterset = FindingFilter(request.GET, queryset=finding_list(cluster=cluster))
    page = paginate(request, findings_reclaimable_first(filterset.qs))
    findings = list(page.object_list)
    attach_finding_context(findings)
    attach_finding_sections(findings)
    counts = finding_counts(cluster=cluster)
    # The fields that validated (django-filter ignores the others, as the page always has).
    chosen = filterset.form.cleaned_data
    context = {
        "cluster": cluster,
        "filter": filterset,
        "page": page,
        "findings": findings,
        "count_sections": [
            (SECTION_TITLES["reclaimable"], [c for c in counts if c[0] in RECLAIMABLE]),
            (SECTION_TITLES["hazard"], [c for c in counts if c[0] not in RECLAIMABLE]),
        ],
        "section_titles": SECTION_TITLES,
        "kind": chosen.get("kind") or "",
        "state": chosen.get("state") or "",
        "q": (chosen.get("q") or "").strip(),
        "pool_id": int(chosen["pool"]) if chosen.get("pool") is not None else None,
        "qs_page": query_without(request, "page", "cluster"),
    }
    return render_page(request, "dashboard/leaks.html", context, partial="leaks-table")
