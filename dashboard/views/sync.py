"""The sync bar's "Sync now" button: queue a full sync of one cluster (operators and up)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpResponseRedirect
from django.views.decorators.http import require_POST

from dashboard.views.common import DashboardRequest, safe_next_url
from ippam.models import Cluster
from ippam.services.sync import cluster_sync_request


@require_POST
@permission_required("ippam.request_sync", raise_exception=True)
def cluster_sync_now(request: DashboardRequest, cluster_id: int) -> HttpResponseRedirect:
    back = safe_next_url(request, default="overview")
    cluster = Cluster.objects.filter(pk=cluster_id).first()
    if cluster is None:
        raise Http404("No such cluster")
    asked = cluster_sync_request(cluster=cluster, actor=request.user)
    (messages.success if asked.queued else messages.info)(request, asked.message, extra_tags="sync")
    return HttpResponseRedirect(back)
