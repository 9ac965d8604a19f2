"""Lists no dashboard page shows whole (allocations across pools, pod interfaces) for the
API and the exports; the pages show them per pool, per NAD or per node."""

from __future__ import annotations

from django.db.models import QuerySet

from ippam.models import Allocation, Cluster, PodInterface
from ippam.selectors.shared import natural_order, scoped


def allocation_list(*, cluster: Cluster | None = None) -> QuerySet[Allocation]:
    """Every allocation in address order (ippam.filters.AllocationFilter narrows)."""
    return (
        scoped(Allocation.objects.all(), cluster)
        .select_related("cluster", "pool")
        .order_by("cluster_id", "pool_id", "ip")
    )


def interface_list(*, cluster: Cluster | None = None) -> QuerySet[PodInterface]:
    """Every pod interface with its pod (ippam.filters.InterfaceFilter narrows)."""
    return (
        scoped(PodInterface.objects.all(), cluster)
        .select_related("cluster", "pod")
        .order_by("cluster_id", "pod__namespace", *natural_order("pod__name"), "interface", "pk")
    )
