"""The overview page's totals and its most recent alerts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from ippam.models import Alert, Cluster, Finding, IPPool, NetworkAttachmentDefinition
from ippam.selectors.pools import pool_list_with_usage
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
    """Every total of the overview, and the open alerts by kind, in one statement."""
    labels = dict(Alert.Kind.choices)
    # The pools' `allocated` counters (kept by sync, watch and reclaim) sum to the number of
    # Allocation rows, without counting those rows: one small query stays flat with size.
    pools = scoped(IPPool.objects.all(), cluster)
    totals, counts = _totals(
        [
            ("COUNT(*)", pools.values("pk")),
            ("COALESCE(SUM(allocated), 0)", pools.values("allocated")),
            ("COUNT(*)", scoped(NetworkAttachmentDefinition.objects.all(), cluster).values("pk")),
            ("COUNT(*)", scoped(Finding.objects.all(), cluster).values("pk")),
        ],
        groups=scoped(Alert.objects.filter(state=Alert.State.OPEN), cluster).values("kind"),
    )
    n_pools, allocated, nads, findings = totals
    by_kind = [(kind, labels.get(kind, kind), c) for kind, c in sorted(counts.items())]
    return OverviewTotals(
        nads=nads,
        pools=n_pools,
        allocations=allocated,
        findings=findings,
        open_alerts=sum(c for _, _, c in by_kind),
        alerts_by_kind=by_kind,
    )


def _totals(
    parts: list[tuple[str, QuerySet[Any]]], *, groups: QuerySet[Any]
) -> tuple[list[int], dict[str, int]]:
    """Each (aggregate, queryset) as one number, and the rows of `groups` (a one-column
    `values()`) counted per value, all in one statement (a UNION ALL): a page of totals
    pays one round trip, not one per total."""
    selects: list[str] = []
    params: list[Any] = []
    for i, (aggregate, qs) in enumerate(parts):
        sql, qs_params = qs.order_by().query.sql_with_params()
        selects.append(f"SELECT {i} AS part, NULL AS value, {aggregate} AS n FROM ({sql}) AS p{i}")
        params.extend(qs_params)
    sql, qs_params = groups.order_by().query.sql_with_params()
    column = connection.ops.quote_name(groups.query.values_select[0])
    selects.append(
        f"SELECT {len(parts)}, g.{column}, COUNT(*) FROM ({sql}) AS g GROUP BY g.{column}"
    )
    params.extend(qs_params)
    totals = [0] * len(parts)
    counts: dict[str, int] = {}
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(selects), params)
        for part, value, n in cursor.fetchall():
            if part < len(parts):
                totals[part] = int(n or 0)
            else:
                counts[value] = int(n)
    return totals, counts


def fullest_pools(*, cluster: Cluster | None = None, limit: int = 15) -> list[IPPool]:
    """The overview's most used pools: only what its table shows (no NAD ranges)."""
    qs, _ = pool_list_with_usage(cluster=cluster, sort="-utilization")
    return list(
        qs.prefetch_related(None).only(
            "range", "network_name", "allocated", "usable", "utilization", "cluster__name"
        )[:limit]
    )


def recent_alerts(*, cluster: Cluster | None = None, limit: int = 10) -> list[Alert]:
    qs = scoped(Alert.objects.exclude(state=Alert.State.RESOLVED), cluster)
    return list(
        qs.select_related("cluster", "pool", "acknowledged_by").order_by("-opened_at", "-pk")[
            :limit
        ]
    )
