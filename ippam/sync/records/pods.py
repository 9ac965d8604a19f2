"""Pods to rows: the pod and one row per network interface Multus reports."""

from __future__ import annotations

import functools
import sys
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from ippam.annotations import (
    LEGACY_NETWORK_STATUS_ANNOTATION,
    NETWORK_STATUS_ANNOTATION,
    NETWORKS_ANNOTATION,
    parse_network_status,
    parse_networks,
)
from ippam.fields import ip_to_key
from ippam.ipparse import canonical_ip
from ippam.sync.records.common import (
    _kind,
    _text_of,
    dumps,
    timestamp,
)


class PodRow(NamedTuple):
    namespace: str
    name: str
    uid: str
    resource_version: str
    created_at: datetime | None
    node_name: str
    phase: str
    deletion_timestamp: datetime | None
    disruption_target: bool
    networks_annotation: str
    network_status_annotation: str
    requested_networks: str
    annotation_problems: str


class InterfaceRow(NamedTuple):
    network_name: str
    nad_namespace: str
    nad_name: str
    interface: str
    ips: str
    mac: str
    default: bool
    mtu: int | None
    device_info: str | None


class PodRecord(NamedTuple):
    row: PodRow
    interfaces: list[tuple[InterfaceRow, list[str]]]  # (interface, address keys)


def _intern(text: str) -> str:
    """One string object per distinct value: namespaces, node and network names repeat
    across 150k pods, and the full sync holds every changed pod's rows at once."""
    return sys.intern(text) if len(text) < 128 else text


# Caches of what a repeated string becomes (interned, cut to its column, split into a NAD
# reference): a cluster has few namespaces, nodes, networks and interface names, and a hit
# is one dict lookup in C. The bound keeps odd values from growing one without end (past
# it the cache starts over).
_CACHE_LIMIT = 65536


class _Shortened(dict[str, str]):
    """`_intern(text[:limit])` by `text`."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __missing__(self, text: str) -> str:
        value = _intern(text[: self.limit])
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        self[text] = value
        return value


class _NetworkParts(dict[str, tuple[str, str, str]]):
    """(network_name, nad_namespace, nad_name) by a network-status entry's `name`."""

    def __missing__(self, name: str) -> tuple[str, str, str]:
        namespace, sep, nad = name.partition("/")
        is_ref = sep and namespace and nad and "/" not in nad
        parts = (
            _intern(name[:317]),
            _intern(namespace[:63]) if is_ref else "",
            _intern(nad[:253]) if is_ref else "",
        )
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        self[name] = parts
        return parts


_NAMESPACES = _Shortened(1 << 30)  # kept whole, as the pod's namespace always was
_NODE_NAMES = _Shortened(253)
_PHASES = _Shortened(16)
_INTERFACES = _Shortened(32)
_NETWORKS = _NetworkParts()

# Rows are built with tuple.__new__: a NamedTuple's own __new__ is a Python function, and
# with keywords it cost more than the rest of an interface row.
_tuple_new = tuple.__new__


def _network_status_fast(raw: str) -> tuple[list[tuple[InterfaceRow, list[str]]], list[str]] | None:
    """network-status as Multus writes it to (interfaces, problems), without netaddr (this
    runs for every pod).

    Returns None as soon as anything is unusual; the caller then uses
    ippam.annotations.parse_network_status, which reports the problems in words. For
    well-formed input both give the same rows.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, list):
        return None
    interfaces: list[tuple[InterfaceRow, list[str]]] = []
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for item in data:
        if not isinstance(item, dict):
            return None
        get = item.get
        name = get("name", "")
        interface = get("interface", "")
        mac = get("mac", "")
        if not (isinstance(name, str) and isinstance(interface, str) and isinstance(mac, str)):
            return None
        raw_ips = get("ips")
        if raw_ips is None:
            ips_text, keys = "[]", []
        elif not isinstance(raw_ips, list):
            return None
        elif len(raw_ips) == 1:  # Multus: one address per interface and family
            parsed = canonical_ip(raw_ips[0])
            if parsed is None:
                return None
            # canonical_ip's text is inet_ntop's: [0-9a-f.:] only, nothing JSON escapes.
            ips_text, keys = f'["{parsed[0]}"]', [parsed[1]]
        else:
            texts = []
            found = set()
            for value in raw_ips:
                parsed = canonical_ip(value)
                if parsed is None:
                    return None
                texts.append(parsed[0])
                found.add(parsed[1])
            ips_text = '["' + '","'.join(texts) + '"]' if texts else "[]"
            keys = sorted(found)
        network_name, nad_namespace, nad_name = _NETWORKS[name]
        short_interface = _INTERFACES[interface]
        identity = (network_name, short_interface)
        if identity in seen:
            problems.append(
                f"network-status lists {name or 'the default network'} on "
                f"{interface or 'no interface'} twice; the second is ignored"
            )
            continue
        seen.add(identity)
        mtu = get("mtu")
        if mtu is not None and not (
            isinstance(mtu, int) and not isinstance(mtu, bool) and 0 <= mtu < 2**31
        ):
            mtu = None
        device_info = get("device-info")
        row: InterfaceRow = _tuple_new(
            InterfaceRow,
            (
                network_name,
                nad_namespace,
                nad_name,
                short_interface,
                ips_text,
                mac[:32],
                get("default") is True,
                mtu,
                dumps(device_info) if isinstance(device_info, dict) else None,
            ),
        )
        interfaces.append((row, keys))
    return interfaces, problems


@functools.lru_cache(maxsize=16384)
def _requested_networks(raw: str, namespace: str) -> tuple[str, tuple[str, ...]]:
    """(requested_networks JSON text, problems) of a networks annotation.

    Cached: the pods of one deployment carry the same annotation (the scale scenario:
    ~14k distinct values over 135k pods), and parse_networks depends on nothing else.
    """
    selections, problems = parse_networks(raw, namespace)
    requested = [
        {
            "namespace": s.namespace,
            "name": s.name,
            "interface": s.interface,
            "ips": list(s.ips),
            "mac": s.mac,
        }
        for s in selections
    ]
    return dumps(requested), tuple(problems)


def _interfaces_careful(raw: str, problems: list[str]) -> list[tuple[InterfaceRow, list[str]]]:
    """network-status through the parser, which says in words what is odd."""
    entries, status_problems = parse_network_status(raw)
    problems.extend(status_problems)
    interfaces: list[tuple[InterfaceRow, list[str]]] = []
    seen: set[tuple[str, str]] = set()
    for entry in entries:
        identity = (entry.name[:317], entry.interface[:32])
        if identity in seen:
            problems.append(
                f"network-status lists {entry.name or 'the default network'} on "
                f"{entry.interface or 'no interface'} twice; the second is ignored"
            )
            continue
        seen.add(identity)
        ref = entry.nad_ref
        interfaces.append(
            (
                InterfaceRow(
                    network_name=_intern(identity[0]),
                    nad_namespace=_intern(ref[0][:63]) if ref else "",
                    nad_name=_intern(ref[1][:253]) if ref else "",
                    interface=_intern(identity[1]),
                    ips=dumps([str(ip) for ip in entry.ips]),
                    mac=entry.mac[:32],
                    default=entry.default,
                    mtu=entry.mtu if entry.mtu is not None and 0 <= entry.mtu < 2**31 else None,
                    device_info=dumps(entry.device_info) if entry.device_info is not None else None,
                ),
                sorted({ip_to_key(ip) for ip in entry.ips}),
            )
        )
    return interfaces


def pod_record(obj: dict[str, Any]) -> PodRecord:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
    namespace = _text_of(meta.get("namespace"))
    annotations = meta.get("annotations")
    if not isinstance(annotations, dict):
        annotations = {}
    spec = obj.get("spec")
    status = obj.get("status")
    if not isinstance(status, dict):
        status = {}
    problems: list[str] = []
    networks_raw = annotations.get(NETWORKS_ANNOTATION) or ""
    if not isinstance(networks_raw, str):
        problems.append(f"networks annotation is {_kind(networks_raw)}, not a string; ignored")
        networks_raw = ""
    requested = "[]"
    if networks_raw:
        requested, networks_problems = _requested_networks(str(networks_raw), namespace)
        if networks_problems:
            problems.extend(networks_problems)
    status_raw = (
        annotations.get(NETWORK_STATUS_ANNOTATION)
        or annotations.get(LEGACY_NETWORK_STATUS_ANNOTATION)
        or ""
    )
    interfaces: list[tuple[InterfaceRow, list[str]]] = []
    if not isinstance(status_raw, str):
        problems.append(f"network-status annotation is {_kind(status_raw)}, not a string; ignored")
        status_raw = ""
    if status_raw:
        fast = _network_status_fast(status_raw)
        if fast is not None:
            interfaces, status_problems = fast
            if status_problems:
                problems.extend(status_problems)
        else:
            interfaces = _interfaces_careful(status_raw, problems)
    disruption = False
    conditions = status.get("conditions")
    if isinstance(conditions, list):
        for c in conditions:
            if (
                isinstance(c, dict)
                and c.get("type") == "DisruptionTarget"
                and c.get("status") == "True"
            ):
                disruption = True
                break
    node_name = spec.get("nodeName") if isinstance(spec, dict) else None
    phase = status.get("phase")
    deleted = meta.get("deletionTimestamp")
    row: PodRow = _tuple_new(
        PodRow,
        (
            _NAMESPACES[namespace],
            _text_of(meta.get("name")),
            _text_of(meta.get("uid")),
            _text_of(meta.get("resourceVersion")),
            timestamp(meta.get("creationTimestamp")),
            _NODE_NAMES[node_name]
            if type(node_name) is str
            else _intern(str(node_name or "")[:253]),
            _PHASES[phase] if type(phase) is str else _intern(str(phase or "")[:16]),
            timestamp(deleted) if deleted is not None else None,
            disruption,
            str(networks_raw),
            str(status_raw),
            requested,
            dumps(problems) if problems else "[]",
        ),
    )
    record: PodRecord = _tuple_new(PodRecord, (row, interfaces))
    return record
