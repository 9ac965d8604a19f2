"""Alert notifications sent (or not): each delivery, its channel, outcome and attempts."""

from __future__ import annotations

from django.http import HttpResponse
from django.views.decorators.http import require_GET

from dashboard.views.common import (
    DashboardRequest,
    paginate,
    query_without,
    render_page,
    role_required,
)
from ippam.models import AlertDelivery
from ippam.notify import channels, delivery_list


@require_GET
@role_required("ippam.acknowledge_alert")
def delivery_list_view(request: DashboardRequest) -> HttpResponse:
    deliveries = delivery_list()
    status = request.GET.get("status", "")
    if status in AlertDelivery.Status.values:
        deliveries = deliveries.filter(status=status)
    page = paginate(request, deliveries)
    context = {
        "page": page,
        "deliveries": page.object_list,
        "statuses": AlertDelivery.Status.choices,
        "status": status,
        "channels": channels(),
        "qs_page": query_without(request, "page", "cluster"),
    }
    return render_page(request, "dashboard/deliveries.html", context, partial="delivery-table")
