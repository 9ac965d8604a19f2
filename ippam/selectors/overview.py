"""The overview page's totals and its most recent alerts."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, IntegerField, Sum
from django.db.models.functions import Coalesce

from ippam.models import Alert, Cluster, Finding, IPPool, NetworkAttachmentDefinition
from ippam.selectors.shared import scoped


@dataclass
class OverviewTotals:
    nads: int
    pools: int
    allocations: int
    findings: int
    open_alerts: int
    alerts_by_kind: list[tuple[str, str, int]]  # (kind, label, count)


def overview_totals(*, cluster: Cluster | None = None) -> OverviewTotals:
    labels = dict(Alert.Kind.choices)
    by_kind = [
        (kind, labels.get(kind, kind), c)
        for kind, c in scoped(Alert.objects.filter(state=Alert.State.OPEN), cluster)
        .order_by()
        .values("kind")
        .annotate(c=Count("pk"))
        .order_by("kind")
        .values_list("kind", "c")
    ]
    # The pools' `allocated` counters (kept by sync, watch and reclaim) sum to the number of
    # Allocation rows, without counting those rows: one small query stays flat with size.
    pool_totals = scoped(IPPool.objects.all(), cluster).aggregate(
        n=Count("*"), allocated=Coalesce(Sum("allocated"), 0, output_field=IntegerField())
    )
    return OverviewTotals(
        nads=scoped(NetworkAttachmentDefinition.objects.all(), cluster).count(),
        pools=pool_totals["n"],
        allocations=pool_totals["allocated"],
        findings=scoped(Finding.objects.all(), cluster).count(),
        open_alerts=sum(c for _, _, c in by_kind),
        alerts_by_kind=by_kind,
    )


def recent_alerts(*, cluster: Cluster | None = None, limit: int = 10) -> list[Alert]:
    qs = scoped(Alert.objects.exclude(state=Alert.State.RESOLVED), cluster)
    return list(
        qs.select_related("cluster", "pool", "acknowledged_by").order_by("-opened_at", "-pk")[
            :limit
        ]
    )
