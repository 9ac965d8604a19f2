"""Does the database equal the cluster? A list of differences a person can read.

The sync promises that what ippam shows is what the cluster holds: after a full sync, the
rows of every kind (NADs, IPPools and their allocations, OverlappingRangeIPReservations,
NodeSlicePools, nodes, pods and their interfaces) carry the same keys, uids,
resourceVersions and key fields as the objects listed from the API. This module checks
that promise after the fact, object by object, so a fault test (or an operator who doubts
a page) can see exactly what is stale, missing or extra.

Objects are turned into rows by the same parsers the sync uses (ippam.sync.records):
this checks the sync's bookkeeping (what it skipped, replaced, deleted or kept), not the
parsers, which have tests of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ippam import models as m
from ippam.fields import key_to_ip
from ippam.kube.client import api_client_for
from ippam.kube.resources import BY_KIND, objects_list
from ippam.sync.records.common import object_key
from ippam.sync.records.nads import nad_record
from ippam.sync.records.nodes import node_record
from ippam.sync.records.nodeslices import nodeslicepool_record
from ippam.sync.records.pods import pod_record
from ippam.sync.records.pools import pool_record
from ippam.sync.records.reservations import reservation_record

# The kinds compared (events come and go by age, not by identity: not compared).
KINDS = ("nads", "ippools", "reservations", "nodeslicepools", "nodes", "pods")

# Per kind: the model and the row fields compared besides the key.
FIELDS: dict[str, tuple[type[Any], tuple[str, ...]]] = {
    "nads": (m.NetworkAttachmentDefinition, ("uid", "resource_version", "config_raw")),
    "ippools": (m.IPPool, ("uid", "resource_version", "range", "allocated")),
    "reservations": (
        m.OverlappingRangeIPReservation,
        ("uid", "resource_version", "podref", "ifname"),
    ),
    "nodeslicepools": (m.NodeSlicePool, ("uid", "resource_version", "range", "slice_size")),
    "nodes": (m.Node, ("uid", "resource_version", "ready")),
    "pods": (m.Pod, ("uid", "resource_version", "node_name", "phase")),
}


def _ip(key: str) -> str:
    return str(key_to_ip(key))


def _label(kind: str, key: tuple[str, str]) -> str:
    return f"{kind} {key[0]}/{key[1]}" if key[0] else f"{kind} {key[1]}"


def _compare(
    kind: str,
    expected: Mapping[tuple[str, str], Any],
    stored: Mapping[tuple[str, str], Any],
    describe: Callable[[Any], Any],
) -> list[str]:
    out: list[str] = []
    for key in sorted(expected.keys() - stored.keys()):
        out.append(f"{_label(kind, key)}: in the cluster, missing from the database")
    for key in sorted(stored.keys() - expected.keys()):
        out.append(f"{_label(kind, key)}: in the database, gone from the cluster")
    for key in sorted(expected.keys() & stored.keys()):
        want, got = describe(expected[key]), describe(stored[key])
        if want != got:
            out.append(f"{_label(kind, key)}: cluster has {want!r}, database has {got!r}")
    return out


def _rows(kind: str, obj: dict[str, Any], network_names: list[str]) -> Any:
    if kind == "nads":
        return nad_record(obj).row
    if kind == "ippools":
        return pool_record(obj)
    if kind == "reservations":
        return reservation_record(obj, network_names)
    if kind == "nodeslicepools":
        return nodeslicepool_record(obj)
    if kind == "nodes":
        return node_record(obj)
    return pod_record(obj)


def cluster_differences(
    cluster: m.Cluster, objects: Mapping[str, Iterable[dict[str, Any]]]
) -> list[str]:
    """Every difference between the cluster's rows and `objects` ({kind: [object, ...]},
    kinds as in KINDS; a kind left out is not compared). Empty when they agree."""
    out: list[str] = []
    listed = {kind: [o for o in objects[kind] if isinstance(o, dict)] for kind in objects}
    nad_rows = [nad_record(o) for o in listed.get("nads", [])]
    network_names = sorted(
        {rng.network_name for rec in nad_rows for rng in rec.ranges if rng.network_name},
        key=lambda n: (-len(n), n),
    )
    for kind in KINDS:
        if kind not in listed:
            continue
        model, fields = FIELDS[kind]
        namespaced = BY_KIND[kind].namespaced
        built = {object_key(o, namespaced): _rows(kind, o, network_names) for o in listed[kind]}
        rows = {key: (rec.row if hasattr(rec, "row") else rec) for key, rec in built.items()}
        stored = {
            ((row["namespace"] if namespaced else ""), row["name"]): row
            for row in model.objects.filter(cluster=cluster).values(
                "id", "name", *fields, *(["namespace"] if namespaced else [])
            )
        }
        out += _compare(
            kind,
            {key: {f: getattr(row, f) for f in fields} for key, row in rows.items()},
            {key: {f: row[f] for f in fields} for key, row in stored.items()},
            _normalised,
        )
        both = rows.keys() & stored.keys()
        if kind == "ippools":
            out += _allocations(cluster, built, stored, both)
        if kind == "pods":
            out += _interfaces(cluster, built, stored, both)
    return out + rows_orphaned()


# Child -> parent links the database does not enforce (no FK constraint: a per-row check
# cost seconds on a first sync, see the models). The writers keep them; this proves it.
# (child model, its column, parent model, what a person calls the child and the parent)
UNENFORCED_LINKS: tuple[tuple[type[Any], str, type[Any], str, str], ...] = (
    (m.PodInterface, "pod_id", m.Pod, "pod interfaces", "pod"),
    (m.PodInterface, "nad_id", m.NetworkAttachmentDefinition, "pod interfaces", "NAD"),
    (m.InterfaceAddress, "interface_id", m.PodInterface, "interface addresses", "interface"),
    (m.Allocation, "pool_id", m.IPPool, "allocations", "IPPool"),
    (m.PoolBlock, "pool_id", m.IPPool, "pool blocks", "IPPool"),
    *(
        (model, "cluster_id", m.Cluster, f"{model._meta.verbose_name_plural}", "cluster")
        for model in (
            m.Pod,
            m.Node,
            m.NetworkAttachmentDefinition,
            m.IPPool,
            m.OverlappingRangeIPReservation,
            m.NodeSlicePool,
            m.PodInterface,
            m.InterfaceAddress,
            m.Allocation,
            m.NADRange,
            m.PoolBlock,
        )
    ),
)


def rows_orphaned() -> list[str]:
    """Rows (of any cluster) whose parent row is gone: one line per broken link, empty
    when every unenforced link holds."""
    out: list[str] = []
    for child, column, parent, children, parent_name in UNENFORCED_LINKS:
        count = (
            child.objects.exclude(**{f"{column}__isnull": True})
            .exclude(**{f"{column}__in": parent.objects.values("pk")})
            .count()
        )
        if count:
            out.append(f"{count} {children} point at a {parent_name} that no longer exists")
    return out


def _normalised(values: dict[str, Any]) -> dict[str, Any]:
    # The parsers hand out some fields as text that the database gives back typed.
    return {k: (int(v) if k == "allocated" else v) for k, v in values.items()}


def _allocations(
    cluster: m.Cluster,
    built: dict[tuple[str, str], Any],
    stored: dict[tuple[str, str], dict[str, Any]],
    keys: set[tuple[str, str]],
) -> list[str]:
    by_pool: dict[int, set[tuple[str, str, str, str]]] = {}
    for pool_id, offset, podref, ifname, container_id in m.Allocation.objects.filter(
        cluster=cluster
    ).values_list("pool_id", "key", "podref", "ifname", "container_id"):
        by_pool.setdefault(pool_id, set()).add((offset, podref, ifname, container_id))
    out = []
    for key in sorted(keys):
        want = {(a.key, a.podref, a.ifname, a.container_id) for a in built[key].allocations}
        got = by_pool.get(stored[key]["id"], set())
        for extra in sorted(got - want):
            out.append(f"{_label('ippools', key)}: allocation {extra} only in the database")
        for missing in sorted(want - got):
            out.append(f"{_label('ippools', key)}: allocation {missing} missing from the database")
    return out


def _interfaces(
    cluster: m.Cluster,
    built: dict[tuple[str, str], Any],
    stored: dict[tuple[str, str], dict[str, Any]],
    keys: set[tuple[str, str]],
) -> list[str]:
    addresses: dict[int, list[str]] = {}
    for interface_id, ip in m.InterfaceAddress.objects.filter(cluster=cluster).values_list(
        "interface_id", "ip"
    ):
        addresses.setdefault(interface_id, []).append(str(ip))
    by_pod: dict[int, set[tuple[Any, ...]]] = {}
    for ident, pod_id, network_name, interface, mac in m.PodInterface.objects.filter(
        cluster=cluster
    ).values_list("id", "pod_id", "network_name", "interface", "mac"):
        by_pod.setdefault(pod_id, set()).add(
            (network_name, interface, mac, tuple(sorted(addresses.get(ident, []))))
        )
    out = []
    for key in sorted(keys):
        want = {
            (iface.network_name, iface.interface, iface.mac, tuple(sorted(_ip(k) for k in ips)))
            for iface, ips in built[key].interfaces
        }
        got = by_pod.get(stored[key]["id"], set())
        for extra in sorted(got - want):
            out.append(f"{_label('pods', key)}: interface {extra} only in the database")
        for missing in sorted(want - got):
            out.append(f"{_label('pods', key)}: interface {missing} missing from the database")
    return out


def cluster_verify(cluster: m.Cluster) -> list[str]:
    """List every kind from the cluster now and compare (see cluster_differences).

    Objects that change while this runs show up as differences the watcher or the next
    sync will settle; on a quiet cluster an empty list means the database is exact.
    """
    api = api_client_for(cluster)
    try:
        objects: dict[str, list[dict[str, Any]]] = {}
        for kind in KINDS:
            objects[kind] = objects_list(api, BY_KIND[kind]).all()  # absent: []
    finally:
        api.close()
    return cluster_differences(cluster, objects)
