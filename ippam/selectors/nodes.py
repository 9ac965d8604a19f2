"""Nodes: the list with secondary-network pod and address counts, one node, and its pods
with their interfaces and the requested attachments Multus did not report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, IntegerField, OuterRef, Prefetch, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from ippam.models import Cluster, InterfaceAddress, Node, Pod, PodInterface
from ippam.selectors.shared import natural_order, scoped, sort_param
from ippam.userinput import clean_query

WHEREABOUTS = "whereabouts"  # a NAD's ipam.type when whereabouts hands out its addresses

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
    addresses = InterfaceAddress.objects.filter(
        interface__pod__cluster=OuterRef("cluster"),
        interface__pod__node_name=OuterRef("name"),
        interface__default=False,
    ).order_by()

    def counted(qs: QuerySet[InterfaceAddress]) -> Any:
        counts = qs.values("interface__pod__node_name").annotate(c=Count("pk")).values("c")
        return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))

    qs = qs.annotate(
        secondary_pods=Coalesce(Subquery(pods, output_field=IntegerField()), Value(0)),
        addresses_held=counted(addresses),
        # Of those, the addresses whereabouts handed out (the interface's NAD has
        # whereabouts IPAM); the rest come from other IPAM (host-local, static, dhcp,
        # a delegate such as flannel's, SR-IOV's).
        addresses_whereabouts=counted(addresses.filter(interface__nad__ipam_type=WHEREABOUTS)),
    ).annotate(addresses_other=F("addresses_held") - F("addresses_whereabouts"))
    sort_used, order = sort_param(sort, NODE_SORTS, "name")
    return qs.select_related("cluster").order_by(*order), sort_used


def node_get(*, node_id: int) -> Node:
    return Node.objects.select_related("cluster").get(pk=node_id)


@dataclass
class NodeAddressSplit:
    """The secondary-interface addresses of a node's pods by the IPAM that gave them."""

    whereabouts: int
    other: list[tuple[str, int]]  # (IPAM, addresses), most first

    @property
    def other_total(self) -> int:
        return sum(n for _, n in self.other)

    @property
    def total(self) -> int:
        return self.whereabouts + self.other_total


def node_address_split(*, node: Node) -> NodeAddressSplit:
    """One query: the node's secondary addresses counted per IPAM type of their NAD (its
    plugin's name when the config names no IPAM, e.g. flannel; "no NAD" when none is
    synced)."""
    rows = (
        InterfaceAddress.objects.filter(
            cluster_id=node.cluster_id,
            interface__pod__node_name=node.name,
            interface__default=False,
        )
        .order_by()
        .values_list("interface__nad__ipam_type", "interface__nad__cni_type")
        .annotate(n=Count("pk"))
    )
    whereabouts = 0
    other: dict[str, int] = {}
    for ipam_type, cni_type, n in rows:
        if ipam_type == WHEREABOUTS:
            whereabouts += n
        else:
            label = ipam_type or (f"{cni_type} (its own IPAM)" if cni_type else "no NAD synced")
            other[label] = other.get(label, 0) + n
    return NodeAddressSplit(whereabouts, sorted(other.items(), key=lambda kv: (-kv[1], kv[0])))


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
        .order_by("namespace", *natural_order("name"))
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
