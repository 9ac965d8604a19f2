"""Reclamation: the dry run shown before anything is written, queuing the run, its progress.

The protocol itself (re-check each holder, guarded write, audit) is ippam.leaks.reclaim;
these views only plan, queue and show.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from dashboard.forms import ReclaimPlanForm
from dashboard.views.common import DashboardRequest, render_page, role_required
from ippam.leaks import ReclaimError, reclaim_plan, reclaim_preview
from ippam.leaks.reclaim.execute import reclaim_runs_expire
from ippam.models import ReclaimRun
from ippam.selectors.reclaim import reclaim_run_get, reclaim_run_progress

log = logging.getLogger(__name__)

TEMPLATE = "dashboard/actions/reclaim.html"
# After this long in "planned" the progress partial asks whether a worker is running.
WORKER_PATIENCE_SECONDS = 30


@require_POST
@role_required("ippam.reclaim_allocation")
def reclaim_plan_view(request: DashboardRequest) -> HttpResponse:
    """A dry run: what will be freed and what will be skipped (and why), as the run's live
    re-check decides it now, shown in a dialog before anything is written."""
    form = ReclaimPlanForm(request.POST)
    if not form.is_valid():
        errors = [str(e) for e in form.non_field_errors()] or [
            f"{name}: {e}" for name, errs in form.errors.items() for e in errs
        ]
        return _plan_page(request, {"plan_errors": errors})
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
        return _plan_page(request, {"plan_errors": [str(exc)]})
    # The run's own live re-check, nothing written: the dialog promises only what would run.
    return _plan_page(request, {"run": run, "preview": reclaim_preview(run)})


def _plan_page(request: DashboardRequest, context: dict) -> HttpResponse:
    # Errors too answer 200 so htmx swaps the dialog in: the person must read why nothing
    # was planned.
    return render_page(request, TEMPLATE, {**context, "show_plan": True}, partial="plan-dialog")


def _enqueue_reclaim(run_id: int) -> str:
    """Send the Celery task; '' on success, else why the broker refused (no retries)."""
    from ippam.leaks.tasks import reclaim_run

    try:
        reclaim_run.apply_async(args=[run_id], retry=False)
    except Exception as exc:  # any broker failure (kombu, redis, OS errors) means "not queued"
        log.warning("reclaim run %s could not be queued: %s", run_id, exc)
        return f"The task queue is not reachable ({exc.__class__.__name__}: {exc}). Nothing was reclaimed; start Redis/the Celery broker and press Execute again."
    return ""


def _run_or_404(run_id: int) -> ReclaimRun:
    try:
        return reclaim_run_get(run_id=run_id)
    except ReclaimRun.DoesNotExist:
        raise Http404("No such reclamation run") from None


@require_POST
@role_required("ippam.reclaim_allocation")
def reclaim_execute_view(request: DashboardRequest, run_id: int) -> HttpResponse:
    """Queue the planned run on Celery (after commit) and answer with the progress partial."""
    run = _run_or_404(run_id)
    queue_error = ""
    if run.state == ReclaimRun.State.PLANNED and run.started_at is None:
        outcome: dict[str, str] = {}

        def enqueue() -> None:
            outcome["error"] = _enqueue_reclaim(run.pk)

        # on_commit: the worker must see every row this request wrote.
        transaction.on_commit(enqueue)
        queue_error = outcome.get("error", "")
    return _progress_page(request, run, queue_error=queue_error)


@require_GET
@role_required("ippam.reclaim_allocation")
def reclaim_progress(request: DashboardRequest, run_id: int) -> HttpResponse:
    """Per-item outcome of a run; the htmx partial polls itself every second until done."""
    return _progress_page(request, _run_or_404(run_id))


def _progress_page(
    request: DashboardRequest, run: ReclaimRun, *, queue_error: str = ""
) -> HttpResponse:
    reclaim_runs_expire(run=run)  # a run whose worker died ends here, so polling stops
    run.refresh_from_db()
    progress = reclaim_run_progress(run=run)
    context = {
        "run": run,
        "items": progress.items,
        "counts": progress.counts,
        "pending": progress.pending,
        "finished": progress.finished,
        "queue_error": queue_error,
        "waited": progress.waited,
        "waiting_long": run.state == ReclaimRun.State.PLANNED
        and progress.waited > WORKER_PATIENCE_SECONDS,
        "show_progress": True,
    }
    response = render_page(request, TEMPLATE, context, partial="progress")
    if request.htmx and progress.finished:
        trigger_client_event(response, "reclaim-finished", {"run": run.pk})
        trigger_client_event(response, "alerts-changed", {})
    return response
