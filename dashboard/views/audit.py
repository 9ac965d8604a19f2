"""The audit log: every write ippam did, filterable, newest first."""

from __future__ import annotations

from django.http import HttpResponse
from django.views.decorators.http import require_GET

from dashboard.views.common import DashboardRequest, paginate, query_without, render_page
from ippam.filters import AuditFilter
from ippam.selectors.audit import attach_audit_json, audit_actor_names, audit_entry_list

TEMPLATE = "dashboard/audit.html"


@require_GET
def audit_list(request: DashboardRequest) -> HttpResponse:
    filterset = AuditFilter(request.GET, queryset=audit_entry_list())
    page = paginate(request, filterset.qs)
    entries = list(page.object_list)
    attach_audit_json(entries)
    context = {
        "filter": filterset,
        "actor_names": audit_actor_names(),
        "page": page,
        "entries": entries,
        "qs_page": query_without(request, "page", "cluster"),
    }
    return render_page(request, TEMPLATE, context, partial="audit-table")
