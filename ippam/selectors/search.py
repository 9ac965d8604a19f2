"""The search box: an IP (who holds it, who held it), a CIDR, a MAC, or a name."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils import timezone
from netaddr import IPAddress, IPNetwork

from ippam.fields import ip_to_key, network_key_bounds
from ippam.ipparse import input_cidr, input_ip
from ippam.models import (
    Allocation,
    AuditEntry,
    Cluster,
    Finding,
    FreedAddress,
    IPPool,
    NetworkAttachmentDefinition,
    Node,
    Pod,
    PodInterface,
)
from ippam.selectors.freed import FreedRow, freed_row
from ippam.selectors.shared import attach_nodes, db_datetime, loaded, nodes_for_pods, scoped
from ippam.sync.freed import freed_since
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


# Everything known about one address except its pools, in one statement (a round trip and
# the ORM's compile cost ~1 ms each, and this page used to make 9 of them). Each part keeps
# its own order and limit in a derived table; `kind` says which part a row is from and the
# other columns are slots whose meaning depends on it (see _search_ip). NULLs are typed
# because PostgreSQL types a derived table's bare NULL as text, which no UNION can match
# with an integer or a timestamp. Plain SQL that SQLite and PostgreSQL read alike.
_HOLDER, _ADDRESS, _RESERVATION, _FINDING, _FREED, _EVENT, _AUDIT = range(7)
_NI = "CAST(NULL AS INTEGER)"
_NT = "CAST(NULL AS TEXT)"
_NTS = "CAST(NULL AS TIMESTAMP WITH TIME ZONE)"
_POD_NODE = "LEFT JOIN ippam_node n ON n.cluster_id = p.cluster_id AND n.name = p.node_name"
_IP_SQL = f"""
SELECT {_HOLDER} AS kind, a.id AS id, {_NTS} AS at, a.pool_id AS n1, p.id AS n2, n.id AS n3,
       pl.range AS s1, a.podref AS s2, a.ifname AS s3, a.container_id AS s4,
       p.node_name AS s5, n.name AS s6, {_NT} AS s7
  FROM ippam_allocation a JOIN ippam_ippool pl ON pl.id = a.pool_id
  LEFT JOIN ippam_pod p ON p.cluster_id = a.cluster_id AND p.namespace = a.pod_namespace
                       AND p.name = a.pod_name
  {_POD_NODE}
 WHERE a.ip = %s AND {{scope_a}}
UNION ALL
SELECT {_ADDRESS}, ia.id, {_NTS}, {_NI}, p.id, n.id, {_NT}, p.namespace || '/' || p.name,
       i.interface, '', p.node_name, n.name, {_NT}
  FROM ippam_interfaceaddress ia JOIN ippam_podinterface i ON i.id = ia.interface_id
  JOIN ippam_pod p ON p.id = i.pod_id
  {_POD_NODE}
 WHERE ia.ip = %s AND {{scope_ia}}
UNION ALL
SELECT {_RESERVATION}, r.id, {_NTS}, {_NI}, p.id, n.id, r.namespace, r.podref, r.ifname,
       r.container_id, p.node_name, n.name, r.name
  FROM ippam_overlappingrangeipreservation r
  LEFT JOIN ippam_pod p ON p.cluster_id = r.cluster_id AND p.namespace = r.pod_namespace
                       AND p.name = r.pod_name
  {_POD_NODE}
 WHERE r.ip = %s AND {{scope_r}}
UNION ALL
SELECT {_FINDING}, f.id, {_NTS}, {_NI}, {_NI}, {_NI}, f.kind, f.state, f.reason, {_NT}, {_NT},
       {_NT}, {_NT}
  FROM ippam_finding f WHERE f.ip = %s AND {{scope_f}}
UNION ALL
SELECT * FROM (
  SELECT {_FREED} AS kind, fa.id AS id, fa.freed_at AS at, fa.cluster_id AS n1, {_NI} AS n2,
         {_NI} AS n3, fa.pool_namespace AS s1, fa.pool_name AS s2, fa.podref AS s3,
         fa.ifname AS s4, c.name AS s5, {_NT} AS s6, {_NT} AS s7
    FROM ippam_freedaddress fa JOIN ippam_cluster c ON c.id = fa.cluster_id
   WHERE fa.ip = %s AND fa.freed_at >= %s AND {{scope_fa}}
   ORDER BY fa.freed_at DESC, fa.id DESC LIMIT 20) fr
UNION ALL
SELECT * FROM (
  SELECT {_EVENT} AS kind, e.id AS id, e.last_seen AS at, {_NI} AS n1, {_NI} AS n2, {_NI} AS n3,
         e.reason AS s1, e.pod_namespace AS s2, e.pod_name AS s3, e.message AS s4,
         {_NT} AS s5, {_NT} AS s6, {_NT} AS s7
    FROM ippam_podevent e WHERE e.ip = %s AND {{scope_e}}
   ORDER BY e.last_seen IS NULL, e.last_seen DESC LIMIT 10) ev
UNION ALL
SELECT * FROM (
  SELECT {_AUDIT} AS kind, au.id AS id, au.at AS at, {_NI} AS n1, {_NI} AS n2, {_NI} AS n3,
         au.action AS s1, au.actor_name AS s2, au.target AS s3, au.outcome AS s4,
         au.message AS s5, CAST(au.before AS TEXT) AS s6, {_NT} AS s7
    FROM ippam_auditentry au WHERE (au.target LIKE %s OR au.message LIKE %s) {{scope_au}}
   ORDER BY au.at DESC LIMIT 20) au
"""


def _ip_rows(ip: IPAddress, cluster: Cluster | None) -> list[tuple[Any, ...]]:
    key = ip_to_key(ip)
    if cluster is None:
        # Naming the clusters lets PostgreSQL use the (cluster, ip) indexes (see scoped_by_ip).
        scope: dict[str, str] = {
            f"scope_{t}": f"{t}.cluster_id IN (SELECT id FROM ippam_cluster)"
            for t in ("a", "ia", "r", "f", "fa", "e")
        }
        scope["scope_au"] = ""  # an audit entry need not name a cluster
        scope_params: list[Any] = []
    else:
        scope = {f"scope_{t}": f"{t}.cluster_id = %s" for t in ("a", "ia", "r", "f", "fa", "e")}
        scope["scope_au"] = "AND au.cluster_id = %s"
        scope_params = [cluster.pk]
    one = scope_params
    since = connection.ops.adapt_datetimefield_value(freed_since())
    params = [
        *(key, *one),  # allocations
        *(key, *one),  # interface addresses
        *(key, *one),  # reservations
        *(key, *one),  # findings
        *(key, since, *one),  # freed
        *(key, *one),  # events
        *(f"%{ip}%", f"%{ip}%", *one),  # audit
    ]
    with connection.cursor() as cursor:
        cursor.execute(_IP_SQL.format(**scope), params)
        return cursor.fetchall()


def _search_ip(q: str, ip: IPAddress, cluster: Cluster | None) -> SearchResults:
    res = SearchResults(q=q, kind="ip", ip=ip)
    res.pools = list(
        scoped(IPPool.objects.filter(first_ip__lte=ip, last_ip__gte=ip), cluster)
        .select_related("cluster")
        .order_by("cluster__name", "name")
    )
    rows: dict[int, list[tuple[Any, ...]]] = {k: [] for k in range(7)}
    for row in _ip_rows(ip, cluster):
        rows[row[0]].append(row)
    # Each part in the order its ORM query had (the model's Meta.ordering, or its ORDER BY).
    rows[_HOLDER].sort(key=lambda r: (r[3], r[1]))  # pool, then id
    rows[_ADDRESS].sort(key=lambda r: r[1])
    rows[_RESERVATION].sort(key=lambda r: (r[6], r[12]))  # namespace, name
    rows[_FINDING].sort(key=lambda r: (r[6], r[1]))  # kind

    def pod_node(r: tuple[Any, ...]) -> tuple[Pod | None, Node | None]:
        pod = loaded(Pod, id=r[4], node_name=r[10]) if r[4] is not None else None
        node = loaded(Node, id=r[5], name=r[11]) if r[5] is not None else None
        return pod, node

    for r in rows[_HOLDER]:
        pool = loaded(IPPool, id=r[3], range=r[6])
        pod, node = pod_node(r)
        res.holders.append(HeldAddress(ip, pool, r[7], pod, node, r[8], "IPPool allocation", r[9]))
    for r in rows[_ADDRESS]:
        pod, node = pod_node(r)
        res.holders.append(HeldAddress(ip, None, r[7], pod, node, r[8], "network-status"))
    for r in rows[_RESERVATION]:
        pod, node = pod_node(r)
        res.holders.append(HeldAddress(ip, None, r[7], pod, node, r[8], "reservation", r[9]))
    res.findings = [
        loaded(Finding, id=r[1], kind=r[6], state=r[7], reason=r[8], ip=ip) for r in rows[_FINDING]
    ]
    now = timezone.now()
    for r in sorted(rows[_FREED], key=lambda r: (db_datetime(r[2]), r[1]), reverse=True):
        freed = loaded(
            FreedAddress,
            id=r[1],
            cluster_id=r[3],
            pool_namespace=r[6],
            pool_name=r[7],
            ip=ip,
            podref=r[8],
            ifname=r[9],
            freed_at=db_datetime(r[2]),
        )
        freed.cluster = loaded(Cluster, id=r[3], name=r[10])
        res.freed.append(freed_row(freed, now, pool=True))
    # Who held it last: the most recent events and audit entries naming the address.
    for r in sorted(
        rows[_EVENT], key=lambda r: (r[2] is not None, db_datetime(r[2]) or now), reverse=True
    ):
        res.history.append(
            {"at": db_datetime(r[2]), "what": r[6], "who": f"{r[7]}/{r[8]}", "message": r[9]}
        )
    word = re.compile(rf"(?<![\w.:]){re.escape(str(ip))}(?![\w:]|\.\d)")
    actions = dict(AuditEntry.Action.choices)
    for r in sorted(rows[_AUDIT], key=lambda r: db_datetime(r[2]) or now, reverse=True):
        target, message = r[8], r[10]
        if word.search(target) or word.search(message):
            before = json.loads(r[11]) if r[11] else None
            before = before if isinstance(before, dict) else {}
            who = str(before.get("podref", "")) or r[7]
            res.history.append(
                {
                    "at": db_datetime(r[2]),
                    "what": actions.get(r[6], r[6]),
                    "who": who,
                    "message": f"{target}: {r[9]} {message}".strip(),
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
