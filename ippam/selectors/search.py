"""The search box: an IP (who holds it, who held it), a CIDR, a MAC, or a name."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db.models import F, Q
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
    pods_by_ref,
    scoped,
    scoped_by_ip,
)
from ippam.userinput import clean_query, parse_mac


@dataclass
class HeldAddress:
    ip: IPAddress
    pool: IPPool | None
    podref: str
    pod: Pod | None
    node: Node | None
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
    allocations = list(
        scoped_by_ip(Allocation.objects.filter(ip=ip), cluster).select_related("pool", "cluster")
    )
    addresses = list(
        scoped_by_ip(InterfaceAddress.objects.filter(ip=ip), cluster).select_related(
            "interface__pod", "interface__nad"
        )
    )
    reservations = list(scoped_by_ip(OverlappingRangeIPReservation.objects.filter(ip=ip), cluster))
    refs: dict[int, set[tuple[str, str]]] = {}
    for a in allocations:
        refs.setdefault(a.cluster_id, set()).add((a.pod_namespace, a.pod_name))
    for r in reservations:
        refs.setdefault(r.cluster_id, set()).add((r.pod_namespace, r.pod_name))
    pods: dict[tuple[int, str, str], Pod] = {}
    for cid, rs in refs.items():
        pods.update({(cid, *k): v for k, v in pods_by_ref(cid, rs).items()})
    all_pods = list(pods.values()) + [ia.interface.pod for ia in addresses]
    nodes = nodes_for_pods(all_pods)

    def node_of(pod: Pod | None) -> Node | None:
        return nodes.get((pod.cluster_id, pod.node_name)) if pod else None

    for a in allocations:
        pod = pods.get((a.cluster_id, a.pod_namespace, a.pod_name))
        res.holders.append(
            HeldAddress(
                ip,
                a.pool,
                a.podref,
                pod,
                node_of(pod),
                a.ifname,
                "IPPool allocation",
                a.container_id,
            )
        )
    for ia in addresses:
        pod = ia.interface.pod
        res.holders.append(
            HeldAddress(
                ip, None, pod.podref, pod, node_of(pod), ia.interface.interface, "network-status"
            )
        )
    for r in reservations:
        pod = pods.get((r.cluster_id, r.pod_namespace, r.pod_name))
        res.holders.append(
            HeldAddress(
                ip, None, r.podref, pod, node_of(pod), r.ifname, "reservation", r.container_id
            )
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
