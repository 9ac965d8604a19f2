"""CSV and JSON exports of the pools, findings and a pool's allocations, from their pages:
the same selector, the same filters (the Export links carry the page's query string) and the
cluster the page shows, serialized by the API's serializers so a file and an API answer
agree column for column."""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404, HttpResponse

from dashboard.api.renderers import csv_text
from dashboard.api.serializers import AllocationSerializer, FindingSerializer, PoolSerializer
from dashboard.views.common import DashboardRequest, selected_cluster
from ippam.filters import FindingFilter, PoolFilter
from ippam.models import IPPool
from ippam.selectors.findings import finding_list
from ippam.selectors.pools import pool_allocations, pool_list_with_usage

FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def _answer(serializer: Any, fmt: str, filename: str) -> HttpResponse:
    if fmt not in FORMATS:
        raise Http404("Export as csv or json")
    rows = serializer.data
    if fmt == "csv":
        body = csv_text(rows, list(serializer.child.fields))
    else:
        body = json.dumps(rows, indent=1)
    response = HttpResponse(body, content_type=FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response


def export_pools(request: DashboardRequest, fmt: str) -> HttpResponse:
    cluster = selected_cluster(request)
    pools, _ = pool_list_with_usage(cluster=cluster, sort=request.GET.get("sort"))
    qs = PoolFilter(request.GET, queryset=pools).qs
    name = f"ippam-pools-{cluster.name}" if cluster else "ippam-pools"
    return _answer(PoolSerializer(qs, many=True), fmt, name)


def export_findings(request: DashboardRequest, fmt: str) -> HttpResponse:
    cluster = selected_cluster(request)
    qs = FindingFilter(request.GET, queryset=finding_list(cluster=cluster)).qs
    name = f"ippam-findings-{cluster.name}" if cluster else "ippam-findings"
    return _answer(FindingSerializer(qs, many=True), fmt, name)


def export_pool_allocations(request: DashboardRequest, pool_id: int, fmt: str) -> HttpResponse:
    try:
        pool = IPPool.objects.get(pk=pool_id)
    except IPPool.DoesNotExist:
        raise Http404("No such IPPool") from None
    qs = pool_allocations(pool=pool, q=request.GET.get("q", "")).select_related("cluster", "pool")
    name = f"ippam-allocations-{pool.namespace}-{pool.name}"
    return _answer(AllocationSerializer(qs, many=True), fmt, name)
