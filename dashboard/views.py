from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from ippam.models import Cluster


def overview(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/overview.html", {"clusters": Cluster.objects.all()})


@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for docker-compose and load balancers: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
