"""Nodes: the list with secondary-network pod and address counts, one node, and its pods
with their interfaces and the requested attachments Multus did not report.
"""

from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, Prefetch, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from ippam.models import Cluster, InterfaceAddress, Node, Pod, PodInterface
from ippam.selectors.shared import scoped, sort_param
from ippam.userinput import clean_query

NODE_SORTS = {
    "name": "name",
    "ready": "ready",
    "pods": "secondary_pods",
    "addresses": "addresses_held",
    "cluster": "cluster__name",
}


def nodes_matching(qs: QuerySet[Node], q: str) -> QuerySet[Node]:
    q = clean_query(q)
    return qs.filter(name__icontains=q) if q else qs


def node_list(
    *, cluster: Cluster | None = None, q: str = "", sort: str | None = None
) -> tuple[QuerySet[Node], str]:
    qs = nodes_matching(scoped(Node.objects.all(), cluster), q)
    pods = (
        Pod.objects.filter(
            cluster=OuterRef("cluster"), node_name=OuterRef("name"), interfaces__default=False
        )
        .order_by()
        .values("node_name")
        .annotate(c=Count("pk", distinct=True))
        .values("c")
    )
    addresses = (
        InterfaceAddress.objects.filter(
            interface__pod__cluster=OuterRef("cluster"),
            interface__pod__node_name=OuterRef("name"),
            interface__default=False,
        )
        .order_by()
        .values("interface__pod__node_name")
        .annotate(c=Count("pk"))
        .values("c")
    )
    qs = qs.annotate(
        secondary_pods=Coalesce(Subquery(pods, output_field=IntegerField()), Value(0)),
        addresses_held=Coalesce(Subquery(addresses, output_field=IntegerField()), Value(0)),
    )
    sort_used, order = sort_param(sort, NODE_SORTS, "name")
    return qs.select_related("cluster").order_by(*order), sort_used


def node_get(*, node_id: int) -> Node:
    return Node.objects.select_related("cluster").get(pk=node_id)


def node_pods(*, node: Node) -> QuerySet[Pod]:
    """Pods scheduled on the node with every interface, its addresses and its NAD (for the master NIC)."""
    interfaces = (
        PodInterface.objects.select_related("nad")
        .prefetch_related("addresses")
        .order_by("interface", "pk")
    )
    return (
        Pod.objects.filter(cluster=node.cluster_id, node_name=node.name)
        .prefetch_related(Prefetch("interfaces", queryset=interfaces))
        .order_by("namespace", "name")
    )


def attach_missing_attachments(pods: list[Pod]) -> None:
    """Set `.missing_networks` on each pod: requested attachments absent from network-status.

    Multus writes network-status after the attachments succeed, so a requested network that
    is missing from it on a Running pod is drift worth showing. Uses the prefetched interfaces.
    """
    for pod in pods:
        attached = {i.network_name for i in pod.interfaces.all()}
        missing = []
        for req in pod.requested_networks or []:
            if not isinstance(req, dict) or not req.get("name"):
                continue
            ref = f"{req.get('namespace') or pod.namespace}/{req['name']}"
            if ref not in attached:
                missing.append(ref)
        pod.missing_networks = missing
