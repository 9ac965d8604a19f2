"""NetworkAttachmentDefinitions: the list with attached pod counts, one NAD, its pods'
interfaces, and its config for display.
"""

from __future__ import annotations

import json

from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from ippam.ipparse import input_ip
from ippam.models import Cluster, NADRange, NetworkAttachmentDefinition, PodInterface
from ippam.selectors.shared import natural_order, scoped, sort_param
from ippam.userinput import clean_query

NAD_SORTS = {
    "name": "name",
    "namespace": "namespace",
    "cni": "cni_type",
    "ipam": "ipam_type",
    "master": "master",
    "pods": "pods_attached",
    "cluster": "cluster__name",
}


def nads_matching(
    qs: QuerySet[NetworkAttachmentDefinition], q: str
) -> QuerySet[NetworkAttachmentDefinition]:
    """NADs with a range holding an IP, or whose name, namespace, type, master or range match."""
    q = clean_query(q)
    if q:
        ip = input_ip(q)
        if ip is not None:
            qs = qs.filter(ranges__first_ip__lte=ip, ranges__last_ip__gte=ip).distinct()
        else:
            qs = qs.filter(
                Q(name__icontains=q)
                | Q(namespace__icontains=q)
                | Q(cni_type__iexact=q)
                | Q(ipam_type__iexact=q)
                | Q(master__iexact=q)
                | Q(ranges__range__icontains=q)
            ).distinct()
    return qs


def nad_list(
    *, cluster: Cluster | None = None, q: str = "", sort: str | None = None
) -> tuple[QuerySet[NetworkAttachmentDefinition], str]:
    qs = nads_matching(scoped(NetworkAttachmentDefinition.objects.all(), cluster), q)
    attached = (
        PodInterface.objects.filter(nad=OuterRef("pk"))
        .order_by()
        .values("nad")
        .annotate(c=Count("pod", distinct=True))
        .values("c")
    )
    qs = qs.annotate(
        pods_attached=Coalesce(Subquery(attached, output_field=IntegerField()), Value(0))
    )
    sort_used, order = sort_param(sort, NAD_SORTS, "namespace")
    if sort_used.lstrip("-") == "namespace":
        order = [order[0], "name", "pk"]
    ranges = NADRange.objects.select_related("pool").order_by("position")
    qs = (
        qs.select_related("cluster")
        .prefetch_related(Prefetch("ranges", queryset=ranges))
        .order_by(*order)
    )
    return qs, sort_used


def nad_get(*, nad_id: int) -> NetworkAttachmentDefinition:
    return (
        NetworkAttachmentDefinition.objects.select_related("cluster")
        .prefetch_related(
            Prefetch(
                "ranges", queryset=NADRange.objects.select_related("pool").order_by("position")
            )
        )
        .get(pk=nad_id)
    )


def nad_interfaces(*, nad: NetworkAttachmentDefinition) -> QuerySet[PodInterface]:
    """The pod interfaces attached to this NAD, with their pod and addresses."""
    return (
        PodInterface.objects.filter(nad=nad)
        .select_related("pod")
        .prefetch_related("addresses")
        .order_by("pod__namespace", *natural_order("pod__name"), "interface")
    )


def pretty_config(nad: NetworkAttachmentDefinition) -> str:
    if nad.config is not None:
        return json.dumps(nad.config, indent=2, sort_keys=False)
    return nad.config_raw
