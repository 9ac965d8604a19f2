"""IPPools: the list with usage and leak counts, one pool, and a page of its allocations with
their pod, node and leak state attached.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    Count,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce

from ippam.fields import key_to_ip, network_key_bounds
from ippam.ipparse import input_cidr, input_ip
from ippam.models import (
    Allocation,
    Cluster,
    Finding,
    IPPool,
    NADRange,
    NetworkAttachmentDefinition,
    Node,
    Pod,
)
from ippam.selectors.shared import converted, loaded, scoped, sort_param
from ippam.userinput import clean_query

POOL_SORTS = {
    "name": "name",
    "range": "first_ip",
    "network": "network_name",
    "usable": "usable",
    "allocated": "allocated",
    "free": "free_count",
    "utilization": "utilization",
    "leaks": "leak_count",
    "cluster": "cluster__name",
}


def pool_list_with_usage(
    *, cluster: Cluster | None = None, sort: str | None = None, q: str = ""
) -> tuple[QuerySet[IPPool], str]:
    """Pools with their leak count and the NADs feeding them; returns (queryset, sort used)."""
    qs = pools_matching(scoped(IPPool.objects.all(), cluster), q)
    leak_counts = (
        Finding.objects.filter(pool=OuterRef("pk"))
        .order_by()
        .values("pool")
        .annotate(c=Count("pk"))
        .values("c")
    )
    qs = qs.annotate(
        leak_count=Coalesce(Subquery(leak_counts, output_field=IntegerField()), Value(0)),
        free_count=F("usable") - F("allocated"),
    )
    sort_used, order = sort_param(sort, POOL_SORTS, "-utilization")
    qs = qs.select_related("cluster").prefetch_related(_nad_ranges_prefetch()).order_by(*order)
    return qs, sort_used


def pools_matching(qs: QuerySet[IPPool], q: str) -> QuerySet[IPPool]:
    """Pools that contain an IP, overlap a CIDR, or whose names or NADs contain the text."""
    q = clean_query(q)
    if q:
        ip = input_ip(q)
        net = input_cidr(q)
        if ip is not None:
            qs = qs.filter(first_ip__lte=ip, last_ip__gte=ip)
        elif net is not None:
            lo, hi = network_key_bounds(net)
            qs = qs.filter(first_ip__lte=hi, last_ip__gte=lo)
        else:
            qs = qs.filter(
                Q(name__icontains=q)
                | Q(namespace__icontains=q)
                | Q(network_name__icontains=q)
                | Q(range__icontains=q)
                | Q(nad_ranges__nad__name__icontains=q)
            ).distinct()
    return qs


def _nad_ranges_prefetch() -> Any:
    return Prefetch(
        "nad_ranges",
        queryset=NADRange.objects.select_related("nad").order_by(
            "nad__namespace", "nad__name", "position"
        ),
    )


def pool_get(*, pool_id: int, summary: bool = True, clusters: Iterable[Cluster] = ()) -> IPPool:
    """The pool or Http404-able IPPool.DoesNotExist.

    `summary=True` (the pool page): with `leak_count`, its cluster, and the NAD ranges that
    feed it (`pool.nad_ranges.all()`, each with its `nad`'s namespace and name) in one
    statement: the pool LEFT JOINs its ranges, a row each, ordered as the pools list's
    prefetch orders them. Plain SQL: the ORM's version (a GROUP BY over every column for
    the count, then the prefetch) took two round trips and ~5 ms of Python to build and
    compile. `clusters`: cluster rows already read (the layout's list), so the pool's
    comes from there rather than from a join.
    `summary=False`: the bare row, for a fragment of the pool page that shows neither the
    feeding NADs nor the leak count.
    """
    if not summary:
        return IPPool.objects.get(pk=pool_id)
    pool_fields = IPPool._meta.concrete_fields
    range_fields = NADRange._meta.concrete_fields
    n_pool, n_range = len(pool_fields), len(range_fields)
    qn = connection.ops.quote_name
    sql = (
        "SELECT "
        + ", ".join(f"pl.{qn(f.column)}" for f in pool_fields)
        + ", (SELECT COUNT(*) FROM ippam_finding f WHERE f.pool_id = pl.id), "
        + ", ".join(f"nr.{qn(f.column)}" for f in range_fields)
        + ", nad.namespace, nad.name"
        " FROM ippam_ippool pl"
        " LEFT JOIN ippam_nadrange nr ON nr.pool_id = pl.id"
        " LEFT JOIN ippam_networkattachmentdefinition nad ON nad.id = nr.nad_id"
        " WHERE pl.id = %s ORDER BY nad.namespace, nad.name, nr.position"
    )
    # A plain cursor, not IPPool.objects.raw(): the RawQuerySet's column mapping and
    # annotations cost ~0.6 ms for this one row, more than the statement itself.
    with connection.cursor() as cursor:
        cursor.execute(sql, [pool_id])
        rows = cursor.fetchall()
    if not rows:
        raise IPPool.DoesNotExist(f"IPPool {pool_id} does not exist")
    pool: Any = converted(IPPool, [rows[0][:n_pool]], alias="pl")[0]  # + leak_count
    pool.leak_count = rows[0][n_pool]
    # None in the range's id: the LEFT JOIN's one row of a pool no range feeds.
    fed = [row[n_pool + 1 :] for row in rows if row[n_pool + 1] is not None]
    ranges = converted(NADRange, [row[:n_range] for row in fed], alias="nr")
    for r, row in zip(ranges, fed, strict=True):
        r.nad = loaded(
            NetworkAttachmentDefinition, id=r.nad_id, namespace=row[n_range], name=row[n_range + 1]
        )
    # What prefetch_related("nad_ranges") leaves on the instance (Django's prefetch_one_level).
    prefetched = pool.nad_ranges.all()
    prefetched._result_cache = ranges
    prefetched._prefetch_done = True
    pool._prefetched_objects_cache = {"nad_ranges": prefetched}
    for cluster in clusters:
        if cluster.pk == pool.cluster_id:
            pool.cluster = cluster
            break
    return cast(IPPool, pool)


@dataclass
class RowPod:
    """What the allocations table shows of an allocation's pod."""

    pk: int
    node_name: str
    terminating: bool


@dataclass
class RowNode:
    pk: int
    name: str


@dataclass
class AllocationRow:
    allocation: Allocation
    pod: RowPod | None
    node: RowNode | None
    state: str  # allocated | leaked | suspect | terminating | no pod
    reason: str = ""


def pool_allocations(*, pool: IPPool, q: str = "") -> QuerySet[Allocation]:
    # pool_id alone (it implies the cluster): the database walks the (pool, ip) index in
    # address order, with no per-row filter on cluster_id.
    qs = Allocation.objects.filter(pool=pool)
    q = clean_query(q)
    if q:
        ip = input_ip(q)
        net = input_cidr(q)
        if ip is not None:
            qs = qs.filter(ip=ip)
        elif net is not None:
            qs = qs.filter(ip__range=network_key_bounds(net))
        else:
            qs = qs.filter(
                Q(podref__icontains=q) | Q(container_id__istartswith=q) | Q(ifname__iexact=q)
            )
    return qs.order_by("ip")


def allocation_rows(page: QuerySet[Allocation], *, pool: IPPool) -> list[AllocationRow]:
    """One page of allocations (a sliced queryset, as a Paginator's page holds it) with their
    pod, node and leak state attached: one statement.

    The page's own SQL (with its LIMIT/OFFSET) is a derived table that the pods and nodes
    join on their unique (cluster, namespace, name) and (cluster, name) indexes, so only the
    page's rows are looked up and nothing of a pod is read but its node name and deletion
    mark. Plain SQL around the ORM's: the same query built from Subquery/OuterRef
    annotations cost ~5-9 ms of Python to build and compile per request, more than the
    queries it saved. The findings: Finding has no (pool, allocation_key) index, so the
    pool's findings are read once (as the separate query they were read by did) and hashed
    by key; a key's first finding by state is its row's.
    """
    qn = connection.ops.quote_name
    try:
        inner, params = page.query.sql_with_params()
    except EmptyResultSet:  # an empty page (LIMIT 0), or a filter that matches nothing
        return []
    pod_table, node_table = qn(Pod._meta.db_table), qn(Node._meta.db_table)
    sql = (
        f"SELECT a.{qn('id')}, a.{qn('key')}, a.{qn('ip')}, a.{qn('podref')}, a.{qn('ifname')}, "
        f"a.{qn('container_id')}, p.{qn('id')}, p.{qn('node_name')}, "
        f"p.{qn('deletion_timestamp')} IS NOT NULL, n.{qn('id')}, f.state, f.reason "
        f"FROM ({inner}) AS a "
        f"LEFT JOIN {pod_table} p ON p.{qn('cluster_id')} = %s "
        f"AND p.{qn('namespace')} = a.{qn('pod_namespace')} AND p.{qn('name')} = a.{qn('pod_name')} "
        f"LEFT JOIN {node_table} n ON n.{qn('cluster_id')} = %s "
        f"AND n.{qn('name')} = p.{qn('node_name')} "
        # Every finding of the key, the first by state first (a leaked one wins over a
        # suspect one; the loop below keeps it). No ROW_NUMBER() filter: PostgreSQL
        # estimates one row for it and compares every row with every finding.
        f"LEFT JOIN (SELECT id, allocation_key, state, reason "
        f"FROM {qn(Finding._meta.db_table)} WHERE pool_id = %s AND allocation_key <> '') f "
        f"ON f.allocation_key = a.{qn('key')} "
        f"ORDER BY a.{qn('ip')}, f.state, f.id"
    )
    # A plain cursor, not Allocation.objects.raw(): the RawQuerySet's column mapping,
    # converters and annotations cost ~3 ms for 50 rows; these columns are text and ids.
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, pool.cluster_id, pool.cluster_id, pool.pk])
        joined: list[tuple[Any, ...]] = []
        for row in cursor.fetchall():
            if not joined or joined[-1][0] != row[0]:  # an allocation's first finding only
                joined.append(row)
    allocations = [
        loaded(
            Allocation,
            id=pk,
            pool_id=pool.pk,
            cluster_id=pool.cluster_id,
            key=key,
            ip=key_to_ip(ip),
            podref=podref,
            ifname=ifname,
            container_id=container_id,
        )
        for pk, key, ip, podref, ifname, container_id, *_ in joined
    ]
    rows = []
    for a, (*_, pod_pk, node_name, terminating, node_pk, f_state, f_reason) in zip(
        allocations, joined, strict=True
    ):
        pod = RowPod(pod_pk, node_name or "", bool(terminating)) if pod_pk is not None else None
        node = RowNode(node_pk, node_name) if node_pk is not None else None
        if f_state is not None:
            state, reason = f_state, f_reason
        elif pod is None:
            state, reason = "no pod", "no synced pod has this name"
        elif pod.terminating:
            state, reason = "terminating", "pod is terminating"
        else:
            state, reason = "allocated", ""
        rows.append(AllocationRow(allocation=a, pod=pod, node=node, state=state, reason=reason))
    return rows
