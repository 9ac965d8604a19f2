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
    _common,
    _dict,
    _kind,
    _list,
    _meta,
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


class _FastEntry(NamedTuple):
    name: str
    interface: str
    ips: tuple[str, ...]
    keys: tuple[str, ...]
    mac: str
    default: bool
    mtu: int | None
    device_info: dict[str, Any] | None

    @property
    def nad_ref(self) -> tuple[str, str] | None:
        namespace, sep, nad = self.name.partition("/")
        if not sep or not namespace or not nad or "/" in nad:
            return None
        return namespace, nad


def _network_status_fast(raw: str) -> list[_FastEntry] | None:
    """network-status as Multus writes it, read without netaddr (this runs for every pod).

    Returns None as soon as anything is unusual; the caller then uses
    ippam.annotations.pod_network_status, which reports the problems in words. For
    well-formed input both give the same rows.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, list):
        return None
    entries = []
    for item in data:
        if not isinstance(item, dict):
            return None
        name = item.get("name", "")
        interface = item.get("interface", "")
        mac = item.get("mac", "")
        raw_ips = item.get("ips")
        if raw_ips is None:
            raw_ips = []
        if not (isinstance(name, str) and isinstance(interface, str) and isinstance(mac, str)):
            return None
        if not isinstance(raw_ips, list):
            return None
        texts, keys = [], []
        for value in raw_ips:
            parsed = canonical_ip(value)
            if parsed is None:
                return None
            texts.append(parsed[0])
            keys.append(parsed[1])
        mtu = item.get("mtu")
        device_info = item.get("device-info")
        entries.append(
            _FastEntry(
                name=name,
                interface=interface,
                ips=tuple(texts),
                keys=tuple(keys),
                mac=mac,
                default=item.get("default") is True,
                mtu=mtu if isinstance(mtu, int) and not isinstance(mtu, bool) else None,
                device_info=device_info if isinstance(device_info, dict) else None,
            )
        )
    return entries


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


def pod_record(obj: dict[str, Any]) -> PodRecord:
    name, uid, rv, created = _common(obj)
    meta = _meta(obj)
    namespace = str(meta.get("namespace") or "")
    annotations = _dict(meta.get("annotations"))
    spec = _dict(obj.get("spec"))
    status = _dict(obj.get("status"))
    problems: list[str] = []
    networks_raw = annotations.get(NETWORKS_ANNOTATION) or ""
    if not isinstance(networks_raw, str):
        problems.append(f"networks annotation is {_kind(networks_raw)}, not a string; ignored")
        networks_raw = ""
    requested = "[]"
    if networks_raw:
        requested, networks_problems = _requested_networks(str(networks_raw), namespace)
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
            entries: list[Any] = fast
        else:
            entries, status_problems = parse_network_status(status_raw)
            problems.extend(status_problems)
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
            if fast is not None:
                keys = sorted(set(entry.keys))
                ips_text = dumps(list(entry.ips))
            else:
                keys = sorted({ip_to_key(ip) for ip in entry.ips})
                ips_text = dumps([str(ip) for ip in entry.ips])
            interfaces.append(
                (
                    InterfaceRow(
                        network_name=_intern(identity[0]),
                        nad_namespace=_intern(ref[0][:63]) if ref else "",
                        nad_name=_intern(ref[1][:253]) if ref else "",
                        interface=_intern(identity[1]),
                        ips=ips_text,
                        mac=entry.mac[:32],
                        default=entry.default,
                        mtu=entry.mtu if entry.mtu is not None and 0 <= entry.mtu < 2**31 else None,
                        device_info=dumps(entry.device_info)
                        if entry.device_info is not None
                        else None,
                    ),
                    keys,
                )
            )
    disruption = any(
        isinstance(c, dict) and c.get("type") == "DisruptionTarget" and c.get("status") == "True"
        for c in _list(status.get("conditions"))
    )
    row = PodRow(
        namespace=_intern(namespace),
        name=name,
        uid=uid,
        resource_version=rv,
        created_at=created,
        node_name=_intern(str(spec.get("nodeName") or "")[:253]),
        phase=_intern(str(status.get("phase") or "")[:16]),
        deletion_timestamp=timestamp(meta.get("deletionTimestamp")),
        disruption_target=disruption,
        networks_annotation=str(networks_raw),
        network_status_annotation=str(status_raw),
        requested_networks=requested,
        annotation_problems=dumps(problems),
    )
    return PodRecord(row, interfaces)
