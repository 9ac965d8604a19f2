"""Views that act: NAD creation, alert acknowledgement, reclamation, and the audit log.

Thin: each view checks the permission on the server (403 otherwise), validates with a
form, calls one service, and answers with a full page or, for htmx, the named partial.
Mutations answer with the changed fragment plus an ``HX-Trigger`` event.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dashboard.forms import (
    AcknowledgeForm,
    AlertFilterForm,
    AuditFilterForm,
    NADForm,
    ReclaimPlanForm,
)
from ippam import nadbuilder
from ippam.models import Alert, AuditEntry, ReclaimItem, ReclaimRun

if TYPE_CHECKING:
    from dashboard.views.common import DashboardRequest

log = logging.getLogger(__name__)

NAD_TEMPLATE = "dashboard/actions/nad_form.html"
ALERTS_TEMPLATE = "dashboard/actions/alerts.html"
RECLAIM_TEMPLATE = "dashboard/actions/reclaim.html"
AUDIT_TEMPLATE = "dashboard/audit.html"
# After this long in "planned" the progress partial asks whether a worker is running.
WORKER_PATIENCE_SECONDS = 30


def _nad_url(nad) -> str:
    try:
        return reverse("nad_detail", args=[nad.pk])
    except NoReverseMatch:
        return f"/nads/{nad.pk}/"


# --- NAD creation -------------------------------------------------------------------------


def _preview_context(form: NADForm) -> dict:
    manifest = form.draft_manifest()
    return {
        "form": form,
        "manifest_yaml": nadbuilder.manifest_yaml(manifest) if manifest else "",
        "kubectl": nadbuilder.kubectl_command(manifest) if manifest else "",
        "preview_valid": form.is_bound and form.manifest is not None,
    }


@require_http_methods(["GET", "POST"])
@permission_required("ippam.create_nad", raise_exception=True)
def nad_new(request: DashboardRequest) -> HttpResponse:
    """GET: the form. POST: create the NAD (or, with ``preview``, only show the manifest)."""
    if request.method == "GET":
        form = NADForm()
        return render(request, NAD_TEMPLATE, _preview_context(form))
    form = NADForm(request.POST)
    valid = form.is_valid()
    if valid and "preview" not in request.POST:
        from ippam.nads import NADCreateError, nad_create

        assert form.manifest is not None  # clean() builds it whenever the form is valid
        try:
            nad = nad_create(
                cluster=form.cleaned_data["cluster"], manifest=form.manifest, actor=request.user
            )
        except NADCreateError as exc:
            # The API server's own words, next to the field they are about; after a timeout,
            # what a re-read found (created, not created, or unknown and how to check).
            form.add_error("name" if exc.name_taken else None, exc.sentence)
        else:
            url = _nad_url(nad)
            if request.htmx:
                response = HttpResponse(status=204)
                response["HX-Redirect"] = url
                return response
            return HttpResponseRedirect(url)
    return render(request, NAD_TEMPLATE, _preview_context(form))


@require_POST
@permission_required("ippam.create_nad", raise_exception=True)
def nad_preview(request: DashboardRequest) -> HttpResponse:
    """The manifest and kubectl command for what is typed so far, plus each field's messages."""
    form = NADForm(request.POST)
    form.is_valid()
    return render(request, f"{NAD_TEMPLATE}#preview-response", _preview_context(form))


@require_GET
@permission_required("ippam.create_nad", raise_exception=True)
def nad_fieldset(request: DashboardRequest) -> HttpResponse:
    """Only the fields of the chosen CNI type (``?cni_type=``) or IPAM type (``?ipam_type=``)."""
    form = NADForm(initial={k: v for k, v in request.GET.items() if k in ("cni_type", "ipam_type")})
    if "ipam_type" in request.GET:
        form.fields["ipam_type"].initial = request.GET["ipam_type"]
        return render(request, f"{NAD_TEMPLATE}#ipam-fields", {"form": form, "only_selected": True})
    form.fields["cni_type"].initial = request.GET.get("cni_type", "macvlan")
    return render(request, f"{NAD_TEMPLATE}#cni-fields", {"form": form, "only_selected": True})


# --- alerts -------------------------------------------------------------------------------


def _alerts_queryset(filters: AlertFilterForm):
    qs = Alert.objects.select_related("cluster", "acknowledged_by", "finding", "pool")
    if filters.is_valid():
        data = filters.cleaned_data
        if data.get("state"):
            qs = qs.filter(state=data["state"])
        if data.get("kind"):
            qs = qs.filter(kind=data["kind"])
        if data.get("cluster"):
            qs = qs.filter(cluster=data["cluster"])
    return qs.order_by("-opened_at", "-id")


@require_GET
def alert_list(request: DashboardRequest) -> HttpResponse:
    """Alerts with filters; operators and admins can select and acknowledge them."""
    params = request.GET.copy()
    if "state" not in params:
        params["state"] = Alert.State.OPEN
    filters = AlertFilterForm(params)
    page = Paginator(_alerts_queryset(filters), 50).get_page(request.GET.get("page"))
    context = {
        "filters": filters,
        "page": page,
        "alerts": page.object_list,
        "can_ack": request.user.has_perm("ippam.acknowledge_alert"),
        "can_reclaim": request.user.has_perm("ippam.reclaim_allocation"),
        "query": params.urlencode(),
    }
    if request.htmx and not request.htmx.boosted:
        return render(request, f"{ALERTS_TEMPLATE}#alert-table", context)
    return render(request, ALERTS_TEMPLATE, context)


def _ack_errors(request: DashboardRequest, errors: list[str], *, back: str) -> HttpResponse:
    # 200, not 4xx: htmx does not swap error responses by default, and the words must show.
    if request.htmx:
        return render(request, f"{ALERTS_TEMPLATE}#ack-result", {"errors": errors})
    for e in errors:
        messages.error(request, e)
    return HttpResponseRedirect(back)


@require_POST
@permission_required("ippam.acknowledge_alert", raise_exception=True)
def alert_acknowledge_view(request: DashboardRequest) -> HttpResponse:
    """Acknowledge the selected open alerts with one note; answer with the changed rows."""
    from dashboard.views import common

    # Settled before anything is written: nothing may fail once the acknowledgement commits.
    back = common.safe_next_url(request, default="alert_list")
    form = AcknowledgeForm(request.POST)
    if not form.is_valid():
        # str(): ErrorList yields message strings, though django-stubs types its items wider.
        errors = [str(e) for field_errors in form.errors.values() for e in field_errors]
        return _ack_errors(request, errors, back=back)
    from ippam.leaks import AlertError, alert_acknowledge

    changed = []
    try:
        with transaction.atomic():
            for alert in form.cleaned_data["alert"]:
                changed.append(
                    alert_acknowledge(
                        alert=alert, user=request.user, note=form.cleaned_data["note"]
                    )
                )
    except AlertError as exc:
        # All or nothing: one alert resolved meanwhile leaves the others as they were.
        return _ack_errors(
            request, [f"Nothing was acknowledged: {exc}. Reload the list."], back=back
        )
    ids = [a.pk if isinstance(a, Alert) else None for a in changed]
    alerts = list(
        Alert.objects.select_related("cluster", "acknowledged_by", "finding", "pool").filter(
            pk__in=[i for i in ids if i] or [a.pk for a in form.cleaned_data["alert"]]
        )
    )
    text = f"Acknowledged {len(alerts)} alert{'s' if len(alerts) != 1 else ''}."
    if not request.htmx:
        messages.success(request, text)
        return HttpResponseRedirect(back)
    finding_id = request.POST.get("finding", "")
    if finding_id.isdigit():
        response = _finding_row(request, int(finding_id))
        response["HX-Trigger"] = json.dumps({"alerts-changed": {"ids": [a.pk for a in alerts]}})
        return response
    response = render(
        request,
        f"{ALERTS_TEMPLATE}#ack-response",
        {
            "changed": alerts,
            "message": text,
            "can_ack": True,
            "can_reclaim": request.user.has_perm("ippam.reclaim_allocation"),
        },
    )
    response["HX-Trigger"] = json.dumps({"alerts-changed": {"ids": [a.pk for a in alerts]}})
    return response


def _finding_row(request: DashboardRequest, finding_id: int) -> HttpResponse:
    """The leaks page's row for one finding, re-rendered after its alert changed."""
    from dashboard.views.common import selected_cluster
    from ippam.models import Finding
    from ippam.selectors.findings import attach_finding_context

    finding = get_object_or_404(
        Finding.objects.select_related("cluster", "pool", "nad"), pk=finding_id
    )
    attach_finding_context([finding])
    context = {"finding": finding, "cluster": selected_cluster(request)}
    return render(request, "dashboard/leaks.html#finding-row", context)


# --- reclamation --------------------------------------------------------------------------


@require_POST
@permission_required("ippam.reclaim_allocation", raise_exception=True)
def reclaim_plan_view(request: DashboardRequest) -> HttpResponse:
    """A dry run: what would be reclaimed, and why, shown in a dialog before anything is written."""
    form = ReclaimPlanForm(request.POST)
    if not form.is_valid():
        errors = [str(e) for e in form.non_field_errors()] or [
            f"{name}: {e}" for name, errs in form.errors.items() for e in errs
        ]
        return _plan_errors(request, errors)
    from ippam.leaks import ReclaimError, reclaim_plan

    data = form.cleaned_data
    try:
        run = reclaim_plan(
            cluster=data["cluster"],
            finding_ids=data["finding_ids"],
            pool=data["pool_obj"],
            include_suspect=data["include_suspect"],
            actor=request.user,
        )
    except ReclaimError as exc:
        return _plan_errors(request, [str(exc)])
    context = {"run": run, "items": list(run.items.all())}
    if request.htmx:
        return render(request, f"{RECLAIM_TEMPLATE}#plan-dialog", context)
    return render(request, RECLAIM_TEMPLATE, {**context, "show_plan": True})


def _plan_errors(request: DashboardRequest, errors: list[str]) -> HttpResponse:
    # 200 so htmx swaps the dialog in: the person must read why nothing was planned.
    if request.htmx:
        return render(request, f"{RECLAIM_TEMPLATE}#plan-dialog", {"plan_errors": errors})
    return render(request, RECLAIM_TEMPLATE, {"plan_errors": errors})


def _enqueue_reclaim(run_id: int) -> str:
    """Send the Celery task; '' on success, else why the broker refused (no retries)."""
    from ippam.leaks.tasks import reclaim_run

    try:
        reclaim_run.apply_async(args=[run_id], retry=False)
    except Exception as exc:  # any broker failure (kombu, redis, OS errors) means "not queued"
        log.warning("reclaim run %s could not be queued: %s", run_id, exc)
        return f"The task queue is not reachable ({exc.__class__.__name__}: {exc}). Nothing was reclaimed; start Redis/the Celery broker and press Execute again."
    return ""


@require_POST
@permission_required("ippam.reclaim_allocation", raise_exception=True)
def reclaim_execute_view(request: DashboardRequest, run_id: int) -> HttpResponse:
    """Queue the planned run on Celery (after commit) and answer with the progress partial."""
    run = get_object_or_404(ReclaimRun, pk=run_id)
    queue_error = ""
    if run.state == ReclaimRun.State.PLANNED and run.started_at is None:
        outcome: dict[str, str] = {}

        def enqueue() -> None:
            outcome["error"] = _enqueue_reclaim(run.pk)

        # on_commit: the worker must see every row this request wrote.
        transaction.on_commit(enqueue)
        queue_error = outcome.get("error", "")
    return _reclaim_progress_response(request, run, queue_error=queue_error)


@require_GET
def reclaim_progress(request: DashboardRequest, run_id: int) -> HttpResponse:
    """Per-item outcome of a run; the htmx partial polls itself every second until done."""
    if not request.user.has_perm("ippam.reclaim_allocation"):
        raise PermissionDenied
    run = get_object_or_404(ReclaimRun.objects.select_related("cluster"), pk=run_id)
    return _reclaim_progress_response(request, run)


def _reclaim_progress_response(
    request: DashboardRequest, run: ReclaimRun, *, queue_error: str = ""
) -> HttpResponse:
    from ippam.leaks.reclaim import reclaim_runs_expire

    reclaim_runs_expire(run=run)  # a run whose worker died ends here, so polling stops
    run.refresh_from_db()
    items = list(run.items.all())
    counts: dict[str, int] = {}
    for item in items:
        counts[item.outcome] = counts.get(item.outcome, 0) + 1
    finished = run.state in (ReclaimRun.State.DONE, ReclaimRun.State.FAILED)
    waited = int((timezone.now() - run.created_at).total_seconds()) if run.created_at else 0
    context = {
        "run": run,
        "items": items,
        "counts": counts,
        "pending": counts.get(ReclaimItem.Outcome.PENDING, 0),
        "finished": finished,
        "queue_error": queue_error,
        "waited": waited,
        "waiting_long": run.state == ReclaimRun.State.PLANNED and waited > WORKER_PATIENCE_SECONDS,
    }
    if request.htmx:
        response = render(request, f"{RECLAIM_TEMPLATE}#progress", context)
        if finished:
            response["HX-Trigger"] = json.dumps(
                {"reclaim-finished": {"run": run.pk}, "alerts-changed": {}}
            )
        return response
    return render(request, RECLAIM_TEMPLATE, {**context, "show_progress": True})


# --- audit log ----------------------------------------------------------------------------


@require_GET
def audit_list(request: DashboardRequest) -> HttpResponse:
    filters = AuditFilterForm(request.GET)
    qs = AuditEntry.objects.select_related("cluster", "actor")
    if filters.is_valid():
        data = filters.cleaned_data
        if data.get("action"):
            qs = qs.filter(action=data["action"])
        if data.get("actor"):
            qs = qs.filter(actor_name__iexact=data["actor"].strip())
        if data.get("cluster"):
            qs = qs.filter(cluster=data["cluster"])
        if data.get("outcome"):
            qs = qs.filter(outcome__iexact=data["outcome"].strip())
    page = Paginator(qs.order_by("-at", "-id"), 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    entries = list(page.object_list)
    for entry in entries:
        entry.before_json = json.dumps(entry.before, indent=2, sort_keys=True, default=str)
        entry.after_json = json.dumps(entry.after, indent=2, sort_keys=True, default=str)
    context = {"filters": filters, "page": page, "entries": entries, "query": query.urlencode()}
    if request.htmx and not request.htmx.boosted:
        return render(request, f"{AUDIT_TEMPLATE}#audit-table", context)
    return render(request, AUDIT_TEMPLATE, context)
