"""Alerts: the filtered list, and acknowledging the selected ones with one note."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from dashboard.forms import AcknowledgeForm
from dashboard.forms.alerts import AssignForm, SnoozeForm
from dashboard.views.common import (
    DashboardRequest,
    paginate,
    query_without,
    render_fragment,
    render_page,
    role_required,
    safe_next_url,
    selected_cluster,
)
from ippam.filters import AlertFilter
from ippam.leaks import AlertError
from ippam.models import Alert, Finding
from ippam.notify import alert_assign as alert_assign_service
from ippam.notify import alert_snooze as alert_snooze_service
from ippam.selectors.alerts import alert_assignees, alerts_by_ids
from ippam.selectors.alerts import alert_list as alert_list_selector
from ippam.selectors.findings import finding_get
from ippam.services.alerts import alerts_acknowledge

TEMPLATE = "dashboard/actions/alerts.html"


@require_GET
def alert_list(request: DashboardRequest) -> HttpResponse:
    """Alerts with filters (open ones unless asked otherwise); operators and admins can
    select and acknowledge them."""
    params = request.GET.copy()
    alerts = alert_list_selector()
    one = params.get("alert", "")
    if one.isdigit():
        # One alert, whatever its state: the link notifications carry (generatorURL).
        alerts = alerts.filter(pk=int(one))
        params.setdefault("state", "")
    if params.get("mine") and request.user.is_authenticated:
        alerts = alerts.filter(assignee=request.user)
    if "state" not in params:
        params["state"] = Alert.State.OPEN
    filterset = AlertFilter(params, queryset=alerts)
    page = paginate(request, filterset.qs)
    can_ack = request.user.has_perm("ippam.acknowledge_alert")
    context = {
        "filter": filterset,
        "page": page,
        "alerts": page.object_list,
        "can_ack": can_ack,
        "can_reclaim": request.user.has_perm("ippam.reclaim_allocation"),
        "qs_page": query_without(request, "page", "cluster"),
        "mine": bool(params.get("mine")),
        "assignees": alert_assignees() if can_ack else [],
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
@role_required("ippam.acknowledge_alert")
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


def _alert_or_404(alert_id: int) -> Alert:
    alert = Alert.objects.filter(pk=alert_id).first()
    if alert is None:
        raise Http404("No such alert: it was removed with its cluster. Reload the list.")
    return alert


@require_POST
@role_required("ippam.acknowledge_alert")
def alert_snooze(request: DashboardRequest, alert_id: int) -> HttpResponse:
    """No notifications for the alert until the given time (empty: wake it now)."""
    alert = _alert_or_404(alert_id)
    back = safe_next_url(request, default="alert_list")
    form = SnoozeForm(request.POST)
    if not form.is_valid():
        for field_errors in form.errors.values():
            for e in field_errors:
                messages.error(request, str(e))
        return HttpResponseRedirect(back)
    until = form.cleaned_data["until"]
    alert_snooze_service(alert=alert, until=until)
    if until:
        messages.success(request, f"Alert {alert.pk} snoozed until {until:%Y-%m-%d %H:%M}.")
    else:
        messages.success(request, f"Alert {alert.pk} is awake: its changes are notified again.")
    return HttpResponseRedirect(back)


@require_POST
@role_required("ippam.acknowledge_alert")
def alert_assign(request: DashboardRequest, alert_id: int) -> HttpResponse:
    """Make a user (or nobody) the one who looks after the alert."""
    alert = _alert_or_404(alert_id)
    back = safe_next_url(request, default="alert_list")
    form = AssignForm(request.POST)
    if not form.is_valid():
        for field_errors in form.errors.values():
            for e in field_errors:
                messages.error(request, str(e))
        return HttpResponseRedirect(back)
    user = form.cleaned_data["assignee"]
    alert_assign_service(alert=alert, user=user)
    who = user.get_username() if user else "nobody"
    messages.success(request, f"Alert {alert.pk} assigned to {who}.")
    return HttpResponseRedirect(back)


def _finding_row(request: DashboardRequest, finding_id: int) -> HttpResponse:
    """The leaks page's row for one finding, re-rendered after its alert changed."""
    try:
        finding = finding_get(finding_id=finding_id)
    except Finding.DoesNotExist:
        raise Http404("That finding is gone: a sync resolved it. Reload the page.") from None
    context = {"finding": finding, "cluster": selected_cluster(request)}
    return render_fragment(request, "dashboard/leaks.html", "finding-row", context)
