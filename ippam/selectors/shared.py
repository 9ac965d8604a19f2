"""Lookups every selector module shares: cluster scoping, sort parameters, and the
one-query-per-page fetches of pods and nodes that selectors attach to their rows.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.db import connection
from django.db.models import CharField, F, Func, Model, Q, QuerySet, Value
from django.db.models.functions import Length
from django.db.models.sql import Query
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ippam.models import Cluster, Node, Pod

M = TypeVar("M", bound=Model)


def loaded(model: type[M], **values: Any) -> M:
    """An instance as `.only(*values)` would load it (the rest deferred, read on access), for
    rows a selector read with plain SQL. from_db takes the values in the model's field
    order, whatever order they are given in."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    return model.from_db(None, names, [values[n] for n in names])


def db_datetime(value: Any) -> datetime | None:
    """A timestamp column read by a plain cursor: PostgreSQL gives an aware datetime; SQLite
    the text Django wrote (UTC, naive), or a naive datetime when the column's declared type
    reaches the cursor (Django's sqlite3 converters: the first SELECT of a UNION)."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else parse_datetime(str(value))
    if parsed is not None and timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def converted(model: type[M], rows: Iterable[Sequence[Any]], *, alias: str) -> list[M]:
    """Instances of `model` from rows of all its concrete columns in field order (read as
    extra columns of a plain-SQL statement), each value through its field's and the
    backend's converters as a RawQuerySet would (JSON text on SQLite, address keys)."""
    compiler = connection.ops.compiler("SQLCompiler")(Query(model), connection, None)
    columns, names = _columns(model, alias)
    converters = compiler.get_converters(columns)
    values = compiler.apply_converters(rows, converters) if converters else rows
    return [model.from_db(None, names, list(v)) for v in values]


@functools.cache
def _columns(model: type[Model], alias: str) -> tuple[list[Any], list[str]]:
    """The column expressions (and attribute names) of a model's concrete fields under a
    table alias: the same for every call, and ~25 us a field to build (a pool page builds
    two models' worth). Only the expressions: their converters are the connection's."""
    fields = model._meta.concrete_fields
    return [f.get_col(alias) for f in fields], [f.attname for f in fields]


def scoped(qs: QuerySet, cluster: Cluster | None, field_name: str = "cluster") -> QuerySet:
    return qs if cluster is None else qs.filter(**{field_name: cluster})


def scoped_by_ip(qs: QuerySet, cluster: Cluster | None) -> QuerySet:
    """`scoped` for a lookup by address on a table indexed by (cluster, ip): across all
    clusters it still names them (a subquery), or PostgreSQL cannot use that index and
    reads the whole table (60k interface addresses: ~13 ms, against ~0.1 ms)."""
    if cluster is not None:
        return qs.filter(cluster=cluster)
    return qs.filter(cluster_id__in=Cluster.objects.values("pk"))


def sort_param(sort: str | None, allowed: dict[str, str], default: str) -> tuple[str, list[str]]:
    """Map a user's `sort` (optionally `-`-prefixed) to order_by fields; nonsense gives the default."""
    sort = (sort or "").strip()
    desc = sort.startswith("-")
    key = sort[1:] if desc else sort
    if key not in allowed:
        sort = default
        desc = sort.startswith("-")
        key = sort[1:] if desc else sort
    column = allowed[key]
    return sort, [f"-{column}" if desc else column, "pk"]


def pods_by_ref(
    cluster_id: int, refs: set[tuple[str, str]], *, fields: tuple[str, ...] = ()
) -> dict[tuple[str, str], Pod]:
    """The pods of these (namespace, name) refs; `fields`: load only these (and the pk)."""
    refs = {r for r in refs if r[0] and r[1]}
    if not refs:
        return {}
    namespaces = {ns for ns, _ in refs}
    names = {n for _, n in refs}
    qs = Pod.objects.filter(cluster_id=cluster_id, namespace__in=namespaces, name__in=names)
    if fields:
        qs = qs.only(*fields)
    return {(p.namespace, p.name): p for p in qs if (p.namespace, p.name) in refs}


def nodes_by_name(
    cluster_id: int, names: set[str], *, fields: tuple[str, ...] = ()
) -> dict[str, Node]:
    if not names:
        return {}
    qs = Node.objects.filter(cluster_id=cluster_id, name__in=names)
    if fields:
        qs = qs.only(*fields)
    return {n.name: n for n in qs}


def nodes_named(by_cluster: dict[int, set[str]]) -> dict[tuple[int, str], Node]:
    """The nodes of these names, per cluster id, keyed (cluster id, name): one query."""
    if not by_cluster:
        return {}
    nq = Q()
    for cid, names in by_cluster.items():
        nq |= Q(cluster_id=cid, name__in=names)
    return {(n.cluster_id, n.name): n for n in Node.objects.filter(nq)}


def nodes_for_pods(pods: list[Pod]) -> dict[tuple[int, str], Node]:
    by_cluster: dict[int, set[str]] = {}
    for p in pods:
        if p.node_name:
            by_cluster.setdefault(p.cluster_id, set()).add(p.node_name)
    return nodes_named(by_cluster)


def attach_nodes(items: list[Any]) -> None:
    """Set `.node` on each item (a pod interface) from its pod's node_name: one query for a page."""
    nodes = nodes_for_pods([item.pod for item in items if item.pod is not None])
    for item in items:
        pod = item.pod
        item.node = nodes.get((pod.cluster_id, pod.node_name)) if pod is not None else None


def natural_order(field: str) -> list[Any]:
    """ORDER BY terms that sort names by their trailing number: amf-1, amf-2, amf-10 (not
    amf-1, amf-10, amf-11, amf-2), as StatefulSet ordinals and numbered replicas are read.

    The name without its trailing digits, then its length (a longer number is a larger
    one), then the name; RTRIM(text, characters) reads the same on SQLite and PostgreSQL.
    """
    stem = Func(F(field), Value("0123456789"), function="RTRIM", output_field=CharField())
    return [stem, Length(field), field]
