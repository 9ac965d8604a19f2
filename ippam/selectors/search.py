"""The search box: an IP (who holds it, who held it), a CIDR, a MAC, or a name."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from netaddr import IPAddress, IPNetwork

from ippam.fields import network_key_bounds
from ippam.ipparse import input_cidr, input_ip
from ippam.models import (
    Allocation,
    AuditEntry,
    Cluster,
    Finding,
    InterfaceAddress,
    IPPool,
    NetworkAttachmentDefinition,
    Node,
    OverlappingRangeIPReservation,
    Pod,
    PodEvent,
    PodInterface,
)
from ippam.selectors.freed import FreedRow, ip_recently_freed
from ippam.selectors.shared import (
    attach_nodes,
    nodes_for_pods,
    scoped,
    scoped_by_ip,
)
from ippam.userinput import clean_query, parse_mac


@dataclass
class HolderPod:
    """What the holders table shows of a holder's pod."""

    pk: int
    node_name: str


@dataclass
class HolderNode:
    pk: int
    name: str


@dataclass
class HeldAddress:
    ip: IPAddress
    pool: IPPool | None
    podref: str
    pod: HolderPod | None  # None: no synced pod of that name (gone)
    node: HolderNode | None
    interface: str
    source: str  # "IPPool allocation" | "network-status" | "reservation"
    container_id: str = ""


@dataclass
class SearchResults:
    q: str
    kind: str  # ip | cidr | mac | text | empty
    ip: IPAddress | None = None
    network: IPNetwork | None = None
    pools: list[IPPool] = field(default_factory=list)
    holders: list[HeldAddress] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    freed: list[FreedRow] = field(default_factory=list)  # recently freed (whereabouts re-uses)
    findings: list[Finding] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    interfaces: list[PodInterface] = field(default_factory=list)
    nads: list[NetworkAttachmentDefinition] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    allocations: list[Allocation] = field(default_factory=list)
    allocation_count: int = 0

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.pools,
                self.holders,
                self.history,
                self.freed,
                self.findings,
                self.pods,
                self.interfaces,
                self.nads,
                self.nodes,
                self.allocations,
            )
        )


SEARCH_LIMIT = 50


def search(q: str, *, cluster: Cluster | None = None) -> SearchResults:
    """One box: an IP, a CIDR, a MAC, or a name (pod, NAD, pool, node)."""
    q = clean_query(q)
    if not q:
        return SearchResults(q=q, kind="empty")
    ip = input_ip(q)
    if ip is not None:
        return _search_ip(q, ip, cluster)
    net = input_cidr(q)
    if net is not None:
        return _search_cidr(q, net, cluster)
    mac = parse_mac(q)
    if mac is not None:
        interfaces = list(
            scoped(PodInterface.objects.filter(mac__iexact=mac), cluster)
            .select_related("pod", "nad", "cluster")
            .prefetch_related("addresses")[:SEARCH_LIMIT]
        )
        attach_nodes(interfaces)
        return SearchResults(q=q, kind="mac", interfaces=interfaces)
    res = SearchResults(q=q, kind="text")
    ns, _, name = q.rpartition("/")
    pod_q = Q(name__icontains=name, namespace=ns) if ns else Q(name__icontains=q)
    res.pods = list(
        scoped(Pod.objects.filter(pod_q), cluster)
        .select_related("cluster")
        .order_by("namespace", "name")[:SEARCH_LIMIT]
    )
    nodes = nodes_for_pods(res.pods)
    for p in res.pods:
        p.node = nodes.get((p.cluster_id, p.node_name))
    nad_q = Q(name__icontains=name, namespace=ns) if ns else Q(name__icontains=q)
    res.nads = list(
        scoped(NetworkAttachmentDefinition.objects.filter(nad_q), cluster).select_related(
            "cluster"
        )[:SEARCH_LIMIT]
    )
    res.pools = list(
        scoped(
            IPPool.objects.filter(Q(name__icontains=q) | Q(network_name__icontains=q)), cluster
        ).select_related("cluster")[:SEARCH_LIMIT]
    )
    res.nodes = list(
        scoped(Node.objects.filter(name__icontains=q), cluster).select_related("cluster")[
            :SEARCH_LIMIT
        ]
    )
    return res


def _search_ip(q: str, ip: IPAddress, cluster: Cluster | None) -> SearchResults:
    res = SearchResults(q=q, kind="ip", ip=ip)
    res.pools = list(
        scoped(IPPool.objects.filter(first_ip__lte=ip, last_ip__gte=ip), cluster)
        .select_related("cluster")
        .order_by("cluster__name", "name")
    )
    # Each holder's pod and node come with it: correlated subqueries on the (cluster,
    # namespace, name) and (cluster, name) indexes, run for the few rows found (was two
    # more queries).
    allocations = list(
        _with_pod_and_node(
            scoped_by_ip(Allocation.objects.filter(ip=ip), cluster).select_related(
                "pool", "cluster"
            )
        )
    )
    nodes = Node.objects.filter(
        cluster_id=OuterRef("cluster_id"), name=OuterRef("interface__pod__node_name")
    )
    addresses = list(
        scoped_by_ip(InterfaceAddress.objects.filter(ip=ip), cluster)
        .select_related("interface__pod", "interface__nad")
        .annotate(node_pk=Subquery(nodes.values("pk")[:1]))
    )
    reservations = list(
        _with_pod_and_node(
            scoped_by_ip(OverlappingRangeIPReservation.objects.filter(ip=ip), cluster)
        )
    )
    for a in allocations:
        pod, node = _holder_pod_and_node(a)
        res.holders.append(
            HeldAddress(
                ip,
                a.pool,
                a.podref,
                pod,
                node,
                a.ifname,
                "IPPool allocation",
                a.container_id,
            )
        )
    for ia in addresses:
        p = ia.interface.pod
        pod = HolderPod(p.pk, p.node_name)
        node = HolderNode(ia.node_pk, p.node_name) if ia.node_pk is not None else None
        res.holders.append(
            HeldAddress(ip, None, p.podref, pod, node, ia.interface.interface, "network-status")
        )
    for r in reservations:
        pod, node = _holder_pod_and_node(r)
        res.holders.append(
            HeldAddress(ip, None, r.podref, pod, node, r.ifname, "reservation", r.container_id)
        )
    res.findings = list(scoped(Finding.objects.filter(ip=ip), cluster).select_related("pool"))
    res.freed = ip_recently_freed(ip, cluster)
    # Who held it last: the most recent events and audit entries naming the address.
    for e in scoped(PodEvent.objects.filter(ip=ip), cluster).order_by(
        F("last_seen").desc(nulls_last=True)
    )[:10]:
        res.history.append(
            {
                "at": e.last_seen,
                "what": e.reason,
                "who": f"{e.pod_namespace}/{e.pod_name}",
                "message": e.message,
            }
        )
    word = re.compile(rf"(?<![\w.:]){re.escape(str(ip))}(?![\w:]|\.\d)")
    audit_qs = AuditEntry.objects.filter(Q(target__contains=str(ip)) | Q(message__contains=str(ip)))
    if cluster is not None:
        audit_qs = audit_qs.filter(cluster=cluster)
    for entry in audit_qs.order_by("-at")[:20]:
        if word.search(entry.target) or word.search(entry.message):
            before = entry.before if isinstance(entry.before, dict) else {}
            who = str(before.get("podref", "")) or entry.actor_name
            res.history.append(
                {
                    "at": entry.at,
                    "what": entry.get_action_display(),
                    "who": who,
                    "message": f"{entry.target}: {entry.outcome} {entry.message}".strip(),
                }
            )
    res.history.sort(key=lambda h: h["at"] or timezone.now() - timedelta(days=36500), reverse=True)
    return res


def _with_pod_and_node(qs: QuerySet[Any]) -> QuerySet[Any]:
    """Rows naming a pod by (cluster_id, pod_namespace, pod_name), with `pod_pk`,
    `pod_node_name` and `node_pk` annotated (None: no such pod, or its node is not synced)."""
    pods = Pod.objects.filter(
        cluster_id=OuterRef("cluster_id"),
        namespace=OuterRef("pod_namespace"),
        name=OuterRef("pod_name"),
    )
    nodes = Node.objects.filter(cluster_id=OuterRef("cluster_id"), name=OuterRef("pod_node_name"))
    return qs.annotate(
        pod_pk=Subquery(pods.values("pk")[:1]),
        pod_node_name=Subquery(pods.values("node_name")[:1]),
    ).annotate(node_pk=Subquery(nodes.values("pk")[:1]))


def _holder_pod_and_node(row: Any) -> tuple[HolderPod | None, HolderNode | None]:
    if row.pod_pk is None:
        return None, None
    node_name = row.pod_node_name or ""
    node = HolderNode(row.node_pk, node_name) if row.node_pk is not None else None
    return HolderPod(row.pod_pk, node_name), node


def _search_cidr(q: str, net: IPNetwork, cluster: Cluster | None) -> SearchResults:
    res = SearchResults(q=q, kind="cidr", network=net)
    lo, hi = network_key_bounds(net)
    res.pools = list(
        scoped(IPPool.objects.filter(first_ip__lte=hi, last_ip__gte=lo), cluster)
        .select_related("cluster")
        .order_by("first_ip")[:SEARCH_LIMIT]
    )
    res.nads = list(
        scoped(
            NetworkAttachmentDefinition.objects.filter(
                ranges__first_ip__lte=hi, ranges__last_ip__gte=lo
            ),
            cluster,
        )
        .select_related("cluster")
        .distinct()
        .order_by("namespace", "name")[:SEARCH_LIMIT]
    )
    allocs = scoped(Allocation.objects.filter(ip__range=(lo, hi)), cluster)
    res.allocation_count = allocs.count()
    res.allocations = list(allocs.select_related("pool").order_by("ip")[:SEARCH_LIMIT])
    return res
