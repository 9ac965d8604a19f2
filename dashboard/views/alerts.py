"""Alerts: the filtered list, and acknowledging the selected ones with one note."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from dashboard.forms import AcknowledgeForm
from dashboard.views.common import (
    DashboardRequest,
    paginate,
    query_without,
    render_fragment,
    render_page,
    safe_next_url,
    selected_cluster,
)
from ippam.filters import AlertFilter
from ippam.leaks import AlertError
from ippam.models import Alert, Finding
from ippam.selectors.alerts import alert_list as alert_list_selector
from ippam.selectors.alerts import alerts_by_ids
from ippam.selectors.findings import finding_get
from ippam.services.alerts import alerts_acknowledge

TEMPLATE = "dashboard/actions/alerts.html"


@require_GET
def alert_list(request: DashboardRequest) -> HttpResponse:
    """Alerts with filters (open ones unless asked otherwise); operators and admins can
    select and acknowledge them."""
    params = request.GET.copy()
    if "state" not in params:
        params["state"] = Alert.State.OPEN
    filterset = AlertFilter(params, queryset=alert_list_selector())
    page = paginate(request, filterset.qs)
    context = {
        "filter": filterset,
        "page": page,
        "alerts": page.object_list,
        "can_ack": request.user.has_perm("ippam.acknowledge_alert"),
        "can_reclaim": request.user.has_perm("ippam.reclaim_allocation"),
        "qs_page": query_without(request, "page", "cluster"),
    }
    return render_page(request, TEMPLATE, context, partial="alert-table")


def _ack_errors(request: DashboardRequest, errors: list[str], *, back: str) -> HttpResponse:
    # 200, not 4xx: htmx does not swap error responses by default, and the words must show.
    if request.htmx:
        return render_fragment(request, TEMPLATE, "ack-result", {"errors": errors})
    for e in errors:
        messages.error(request, e)
    return HttpResponseRedirect(back)


@require_POST
@permission_required("ippam.acknowledge_alert", raise_exception=True)
def alert_acknowledge(request: DashboardRequest) -> HttpResponse:
    """Acknowledge the selected open alerts with one note; answer with the changed rows
    (or, from the leaks page, the finding's row) and an `alerts-changed` event."""
    # Settled before anything is written: nothing may fail once the acknowledgement commits.
    back = safe_next_url(request, default="alert_list")
    form = AcknowledgeForm(request.POST)
    if not form.is_valid():
        # str(): ErrorList yields message strings, though django-stubs types its items wider.
        errors = [str(e) for field_errors in form.errors.values() for e in field_errors]
        return _ack_errors(request, errors, back=back)
    try:
        changed = alerts_acknowledge(
            alerts=form.cleaned_data["alert"], user=request.user, note=form.cleaned_data["note"]
        )
    except AlertError as exc:
        # All or nothing: one alert resolved meanwhile leaves the others as they were.
        return _ack_errors(
            request, [f"Nothing was acknowledged: {exc}. Reload the list."], back=back
        )
    alerts = alerts_by_ids(a.pk for a in changed)
    text = f"Acknowledged {len(alerts)} alert{'s' if len(alerts) != 1 else ''}."
    if not request.htmx:
        messages.success(request, text)
        return HttpResponseRedirect(back)
    finding_id = request.POST.get("finding", "")
    if finding_id.isdigit():
        response = _finding_row(request, int(finding_id))
    else:
        response = render_fragment(
            request,
            TEMPLATE,
            "ack-response",
            {
                "changed": alerts,
                "message": text,
                "can_ack": True,
                "can_reclaim": request.user.has_perm("ippam.reclaim_allocation"),
            },
        )
    return trigger_client_event(response, "alerts-changed", {"ids": [a.pk for a in alerts]})


def _finding_row(request: DashboardRequest, finding_id: int) -> HttpResponse:
    """The leaks page's row for one finding, re-rendered after its alert changed."""
    try:
        finding = finding_get(finding_id=finding_id)
    except Finding.DoesNotExist:
        raise Http404("That finding is gone: a sync resolved it. Reload the page.") from None
    context = {"finding": finding, "cluster": selected_cluster(request)}
    return render_fragment(request, "dashboard/leaks.html", "finding-row", context)
