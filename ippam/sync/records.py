"""From Kubernetes objects (plain dicts) to database rows (plain tuples).

No database access here: every function takes one object as the API returned it and gives
back the rows it becomes, with whatever was malformed recorded as a problem on the row.
Nothing here raises on bad input; a sync never stops because one object is odd.
"""

from __future__ import annotations

import functools
import re
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

import orjson
from netaddr import AddrFormatError, IPAddress, IPNetwork

from ippam import naming
from ippam.annotations import (
    LEGACY_NETWORK_STATUS_ANNOTATION,
    NETWORK_STATUS_ANNOTATION,
    NETWORKS_ANNOTATION,
    NODE_SELECTOR_ANNOTATION,
    RESOURCE_NAME_ANNOTATION,
    parse_network_status,
    parse_networks,
)
from ippam.cniconfig import parse_cni_config
from ippam.fields import ip_to_key
from ippam.ipparse import canonical_ip, ip_key
from ippam.whereabouts import parse_whereabouts_ipam

EVENT_REASONS = frozenset(
    {
        "AddedInterface",
        "FailedCreatePodSandBox",
        "IPAddressGarbageCollected",
        "IPAddressGarbageCollectionFailed",
    }
)


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    # The API server writes RFC 3339 with a zone ("Z"); a zone-less stamp from anything
    # else is read as UTC rather than left naive (naive and aware datetimes do not compare).
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _kind(value: Any) -> str:
    """A JSON value's type in JSON's words, for problems ("null", "a string", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _show(value: Any, limit: int = 60) -> str:
    """A short quotation of an odd value for a problem sentence."""
    if isinstance(value, str):
        return f"'{value}'" if len(value) <= limit else f"'{value[: limit - 5]}...'"
    try:
        text = dumps(value)
    except TypeError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _podref_problem(podref: Any) -> str | None:
    """What is wrong with a podref, or None. whereabouts writes `namespace/name`
    (pkg/allocate: fmt.Sprintf("%s/%s", ...)); anything else names no pod it can check."""
    if not isinstance(podref, str):
        return f"podref is {_kind(podref)}, not a string 'namespace/name'"
    namespace, sep, name = podref.partition("/")
    if not sep or not namespace or not name or "/" in name:
        return f"podref {_show(podref)} is not 'namespace/name'"
    return None


def object_key(obj: dict[str, Any], namespaced: bool = True) -> tuple[str, str]:
    meta = _meta(obj)
    return (str(meta.get("namespace") or "") if namespaced else "", str(meta.get("name") or ""))


def resource_version(obj: dict[str, Any]) -> str:
    return str(_meta(obj).get("resourceVersion") or "")


def _common(obj: dict[str, Any]) -> tuple[str, str, str, datetime | None]:
    meta = _meta(obj)
    return (
        str(meta.get("name") or ""),
        str(meta.get("uid") or ""),
        str(meta.get("resourceVersion") or ""),
        timestamp(meta.get("creationTimestamp")),
    )


# --- nodes --------------------------------------------------------------------------------


class NodeRow(NamedTuple):
    name: str
    uid: str
    resource_version: str
    created_at: datetime | None
    labels: str
    ready: bool
    addresses: str
    problems: str = "[]"


def _field_problems(obj: dict[str, Any], where: str, expected: dict[str, type]) -> list[str]:
    """Problems for fields of `obj` present with another JSON type than `expected`."""
    return [
        f"{where}.{key} is {_kind(obj[key])}, not {_kind(kind())}; ignored"
        for key, kind in expected.items()
        if obj.get(key) is not None and not isinstance(obj[key], kind)
    ]


def node_record(obj: dict[str, Any]) -> NodeRow:
    name, uid, rv, created = _common(obj)
    problems = _field_problems(obj, "node", {"metadata": dict, "status": dict})
    problems += _field_problems(_meta(obj), "metadata", {"labels": dict})
    status = _dict(obj.get("status"))
    problems += _field_problems(status, "status", {"conditions": list, "addresses": list})
    conditions = _list(status.get("conditions"))
    ready = any(
        isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in conditions
    )
    addresses = []
    for i, a in enumerate(_list(status.get("addresses"))):
        if not isinstance(a, dict) or not isinstance(a.get("address"), str):
            problems.append(f"status.addresses[{i}] is not an {{type, address}} object; ignored")
            continue
        addresses.append({"type": str(a.get("type") or ""), "address": a["address"]})
    labels = {str(k): str(v) for k, v in _dict(_meta(obj).get("labels")).items()}
    return NodeRow(name, uid, rv, created, dumps(labels), ready, dumps(addresses), dumps(problems))


# --- NADs ---------------------------------------------------------------------------------


class NadRow(NamedTuple):
    namespace: str
    name: str
    uid: str
    resource_version: str
    created_at: datetime | None
    annotations: str
    config_raw: str
    config: str | None
    config_on_node: bool
    is_conflist: bool
    cni_version: str
    cni_type: str
    ipam_type: str
    master: str
    mode: str
    resource_name: str
    node_selector: str
    problems: str


class NadRangeRow(NamedTuple):
    position: int
    range: str
    range_start: str | None
    range_end: str | None
    first_ip: str | None
    last_ip: str | None
    exclude: str
    gateway: str | None
    network_name: str
    enable_overlapping_ranges: bool
    node_slice_size: str
    usable: Decimal
    pool_name: str


class NadRecord(NamedTuple):
    row: NadRow
    ranges: list[NadRangeRow]


def _key_or_none(ip: IPAddress | None) -> str | None:
    return ip_to_key(ip) if ip is not None else None


def nad_record(obj: dict[str, Any]) -> NadRecord:
    name, uid, rv, created = _common(obj)
    meta = _meta(obj)
    annotations = {str(k): str(v) for k, v in _dict(meta.get("annotations")).items()}
    problems: list[str] = []
    if obj.get("spec") is None:
        # The NAD CRD does not require spec; Multus then reads the config from the
        # nodes' disks by the NAD's name, which is rarely what was meant.
        problems.append(
            "spec is missing: Multus will look for the config on each node's disk under "
            "this NAD's name; add spec.config (or an empty one to mean that on purpose)"
        )
    elif not isinstance(obj.get("spec"), dict):
        problems.append(f"spec is {_kind(obj.get('spec'))}, not an object; Multus cannot read it")
    spec = _dict(obj.get("spec"))
    raw = spec.get("config")
    if raw is not None and not isinstance(raw, str):
        problems.append("spec.config is not a string")
        raw = dumps(raw)
    cni = parse_cni_config(raw if raw is not None else "")
    problems.extend(cni.problems)
    ranges: list[NadRangeRow] = []
    if cni.ipam_type == "whereabouts" and cni.ipam is not None:
        wa = parse_whereabouts_ipam(cni.ipam)
        problems.extend(f"whereabouts: {p}" for p in wa.problems)
        for position, r in enumerate(wa.ranges):
            net = r.network.cidr
            ranges.append(
                NadRangeRow(
                    position=position,
                    range=r.cidr,
                    range_start=_key_or_none(r.range_start),
                    range_end=_key_or_none(r.range_end),
                    first_ip=ip_to_key(IPAddress(net.first, net.version)),
                    last_ip=ip_to_key(IPAddress(net.last, net.version)),
                    exclude=dumps([str(e) for e in r.exclude] + list(r.bad_exclude)),
                    gateway=_key_or_none(wa.gateway),
                    network_name=wa.network_name,
                    enable_overlapping_ranges=wa.enable_overlapping_ranges,
                    node_slice_size=wa.node_slice_size[:8],
                    usable=Decimal(r.usable_count()),
                    pool_name=naming.pool_name(r.cidr, wa.network_name),
                )
            )
    row = NadRow(
        namespace=str(meta.get("namespace") or ""),
        name=name,
        uid=uid,
        resource_version=rv,
        created_at=created,
        annotations=dumps(annotations),
        config_raw=cni.raw or "",
        config=dumps(cni.config) if cni.config is not None else None,
        config_on_node=cni.on_node,
        is_conflist=cni.is_conflist,
        cni_version=cni.cni_version[:16],
        cni_type=cni.cni_type[:64],
        ipam_type=cni.ipam_type[:64],
        master=cni.master[:64],
        mode=cni.mode[:32],
        resource_name=annotations.get(RESOURCE_NAME_ANNOTATION, "")[:253],
        node_selector=annotations.get(NODE_SELECTOR_ANNOTATION, "")[:253],
        problems=dumps(problems),
    )
    return NadRecord(row, ranges)


# --- IPPools ------------------------------------------------------------------------------


class PoolRow(NamedTuple):
    namespace: str
    name: str
    uid: str
    resource_version: str
    created_at: datetime | None
    range: str
    first_ip: str | None
    last_ip: str | None
    network_name: str
    node_name: str
    allocated: int
    problems: str
    usable: Decimal = Decimal(0)  # set by store.pools_refresh_usage (depends on the NADs)
    utilization: float = 0.0


class AllocationRow(NamedTuple):
    key: str
    ip: str
    container_id: str
    podref: str
    pod_namespace: str
    pod_name: str
    ifname: str


class PoolRecord(NamedTuple):
    row: PoolRow
    allocations: list[AllocationRow]


def pool_network_name(pool_name: str, cidr: str) -> str:
    """The `network_name` part of a pool name (`[network_name-]normalized range`)."""
    normalized = naming.normalize_range(cidr)
    if pool_name == normalized or not pool_name.endswith("-" + normalized):
        return ""
    return pool_name[: -len(normalized) - 1]


MAX_PROBLEMS = 25  # per object: a pool with 60k odd allocations says so in one line


def _capped(problems: list[str]) -> list[str]:
    if len(problems) <= MAX_PROBLEMS:
        return problems
    more = len(problems) - MAX_PROBLEMS + 1
    return [*problems[: MAX_PROBLEMS - 1], f"... and {more} more problems of the same kind"]


MAX_KEY_DIGITS = 39  # 2**128 has 39 digits; longer keys are outside every range


def _allocation_value_problems(key: str, value: dict[str, Any]) -> list[str]:
    """What is odd about an allocation's value, per the IPPool CRD (id and podref are
    required strings, ifname an optional string). The address still counts as allocated:
    whereabouts decodes the key and holds the address whatever the value says."""
    problems = []
    podref_problem = _podref_problem(value.get("podref"))
    if podref_problem:
        problems.append(f"allocation key {_show(key)}: {podref_problem}; no pod can be checked")
    for field_name, required in (("id", True), ("ifname", False)):
        field_value = value.get(field_name)
        if field_value is None and not required:
            continue
        if not isinstance(field_value, str):
            problems.append(
                f"allocation key {_show(key)}: {field_name} is {_kind(field_value)}, not a string"
            )
    return problems


def pool_record(obj: dict[str, Any]) -> PoolRecord:
    """An IPPool and the allocations whereabouts holds in it.

    Whatever the CRD schema would have rejected (an older whereabouts installs none) is a
    problem on the pool. A key whereabouts skips (strconv.ParseInt fails, or the offset is
    outside the range) or a value that is not an object is not counted as allocated; a
    value that is an object with an odd podref is (whereabouts holds the address), and
    the problem says so.
    """
    name, uid, rv, created = _common(obj)
    meta = _meta(obj)
    problems: list[str] = []
    if not isinstance(obj.get("spec"), dict):
        problems.append(f"spec is {_kind(obj.get('spec'))}, not an object")
    spec = _dict(obj.get("spec"))
    cidr = spec.get("range")
    network: IPNetwork | None = None
    if cidr is None or cidr == "":
        problems.append("spec.range is missing")
        cidr = ""
    elif not isinstance(cidr, str):
        problems.append(f"spec.range is {_kind(cidr)}, not a CIDR string")
        cidr = ""
    elif "/" not in cidr:
        problems.append(f"spec.range {_show(cidr)} is not a CIDR (no /prefix)")
    else:
        try:
            network = IPNetwork(cidr)
        except (AddrFormatError, ValueError, TypeError):
            problems.append(f"spec.range {_show(cidr)} is not a CIDR")
    allocations: list[AllocationRow] = []
    raw_allocations = spec.get("allocations")
    if raw_allocations is None:
        raw_allocations = {}
    if not isinstance(raw_allocations, dict):
        problems.append(
            f"spec.allocations is {_kind(raw_allocations)}, not a map of offsets; ignored"
        )
        raw_allocations = {}
    if network is not None:
        base = int(network.network)
        size = network.size
        mapped = 0xFFFF00000000 if network.version == 4 else 0
        offsets: dict[int, str] = {}
        for key, value in raw_allocations.items():
            key = str(key)
            shown = _show(key)
            digits = key[1:] if key.startswith("+") else key
            if not digits.isascii() or not digits.isdigit():
                if key.startswith("-") and key[1:].isascii() and key[1:].isdigit():
                    problems.append(
                        f"allocation key {shown} is negative; whereabouts "
                        "only writes offsets 0 and up; not counted as allocated"
                    )
                else:
                    problems.append(
                        f"allocation key {shown} is not a decimal offset (whereabouts "
                        "skips it); not counted as allocated"
                    )
                continue
            # A bounded int(): Python refuses to convert more than 4300 digits.
            offset = int(digits) if len(digits.lstrip("0")) <= MAX_KEY_DIGITS else size
            if offset >= size or len(key) > 40:
                problems.append(
                    f"allocation key {shown} points outside {cidr} (offsets "
                    f"0..{size - 1}); not counted as allocated"
                )
                continue
            if not isinstance(value, dict):
                problems.append(
                    f"allocation key {shown} is {_kind(value)}, not an {{id, podref}} object "
                    "(the IPPool CRD requires one); not counted as allocated"
                )
                continue
            if offset in offsets:
                problems.append(
                    f"allocation keys {_show(offsets[offset])} and {shown} are the same offset; "
                    f"{shown} is not counted twice"
                )
                continue
            offsets[offset] = key
            podref = value.get("podref")
            id_ = value.get("id")
            ifname = value.get("ifname")
            if not (
                isinstance(podref, str)
                and isinstance(id_, str)
                and (ifname is None or isinstance(ifname, str))
                and podref.count("/") == 1
                and not podref.startswith("/")
                and not podref.endswith("/")
            ):
                problems.extend(_allocation_value_problems(key, value))
                podref = podref if isinstance(podref, str) else ""
                id_ = id_ if isinstance(id_, str) else ""
                ifname = ifname if isinstance(ifname, str) else ""
            pod_namespace, pod_name = naming.split_podref(podref)
            allocations.append(
                AllocationRow(
                    key=key,
                    ip=f"{(base + offset) | mapped:032x}",
                    container_id=id_[:128],
                    podref=podref[:317],
                    pod_namespace=pod_namespace[:63],
                    pod_name=pod_name[:253],
                    ifname=(ifname or "")[:32],
                )
            )
    elif raw_allocations:
        problems.append(
            f"{len(raw_allocations)} allocations not counted: the pool's range is not usable"
        )
    row = PoolRow(
        namespace=str(meta.get("namespace") or ""),
        name=name,
        uid=uid,
        resource_version=rv,
        created_at=created,
        range=cidr[:64],
        first_ip=ip_to_key(IPAddress(network.first, network.version))
        if network is not None
        else None,
        last_ip=ip_to_key(IPAddress(network.last, network.version))
        if network is not None
        else None,
        network_name=pool_network_name(name, cidr) if cidr else "",
        node_name="",
        allocated=len(allocations),
        problems=dumps(_capped(problems)),
    )
    return PoolRecord(row, allocations)


# --- OverlappingRangeIPReservations -------------------------------------------------------


class ReservationRow(NamedTuple):
    namespace: str
    name: str
    uid: str
    resource_version: str
    created_at: datetime | None
    ip: str | None
    network_name: str
    podref: str
    pod_namespace: str
    pod_name: str
    ifname: str
    container_id: str
    problems: str = "[]"


def reservation_record(obj: dict[str, Any], network_names: list[str]) -> ReservationRow:
    """`network_names`: the network_name of every whereabouts NAD, longest first.

    A reservation's name is `[network_name-]ip`; which prefix applies can only be told
    by trying the network names that exist. A name that is no address whereabouts could
    have written, or a spec the CRD would reject (spec and spec.podref are required), is
    a problem on the row; leak rules never call such a reservation orphaned (nothing
    trustworthy says whose it is).
    """
    name, uid, rv, created = _common(obj)
    problems: list[str] = []
    raw_spec = obj.get("spec")
    if not isinstance(raw_spec, dict):
        problems.append(
            f"spec is {_kind(raw_spec)}, not an object with podref (the CRD requires one)"
        )
    spec = _dict(raw_spec)
    ip = None
    network_name = ""
    for candidate in network_names:
        if candidate and name.startswith(candidate + "-"):
            ip = naming.reservation_ip(name, candidate)
            if ip is not None:
                network_name = candidate
                break
    if ip is None:
        ip = naming.reservation_ip(name)
    if ip is None:
        problems.append(
            f"name is not an address whereabouts could have written: {_show(name)} is not "
            "[network_name-]address (IPv4 as is, IPv6 with ':' as '-') for any known "
            "network_name; no address is attributed to it"
        )
    raw_podref = spec.get("podref")
    if isinstance(raw_spec, dict):
        podref_problem = _podref_problem(raw_podref)
        if podref_problem:
            problems.append(f"spec.{podref_problem}")
    podref = raw_podref if isinstance(raw_podref, str) else ""
    problems += _field_problems(spec, "spec", {"ifname": str, "containerid": str})
    pod_namespace, pod_name = naming.split_podref(podref)
    return ReservationRow(
        namespace=str(_meta(obj).get("namespace") or ""),
        name=name,
        uid=uid,
        resource_version=rv,
        created_at=created,
        ip=ip_to_key(ip) if ip is not None else None,
        network_name=network_name,
        podref=podref[:317],
        pod_namespace=pod_namespace[:63],
        pod_name=pod_name[:253],
        ifname=_text(spec.get("ifname"))[:32],
        container_id=_text(spec.get("containerid"))[:128],
        problems=dumps(problems),
    )


# --- NodeSlicePools -----------------------------------------------------------------------


class NodeSlicePoolRow(NamedTuple):
    namespace: str
    name: str
    uid: str
    resource_version: str
    created_at: datetime | None
    range: str
    slice_size: str
    allocations: str
    problems: str = "[]"


def nodeslicepool_record(obj: dict[str, Any]) -> NodeSlicePoolRow:
    """A NodeSlicePool; what its CRD would reject (range and sliceSize strings, status
    allocations a list of {nodeName, sliceRange} strings) is a problem on the row."""
    name, uid, rv, created = _common(obj)
    problems = _field_problems(obj, "nodeslicepool", {"spec": dict, "status": dict})
    spec = _dict(obj.get("spec"))
    problems += _field_problems(spec, "spec", {"range": str, "sliceSize": str})
    if not spec.get("range"):
        problems.append("spec.range is missing")
    elif isinstance(spec.get("range"), str):
        try:
            IPNetwork(_text(spec.get("range")))
        except (AddrFormatError, ValueError, TypeError):
            problems.append(f"spec.range {_show(spec.get('range'))} is not a CIDR")
    status = _dict(obj.get("status"))
    problems += _field_problems(status, "status", {"allocations": list})
    allocations = []
    for i, a in enumerate(_list(status.get("allocations"))):
        if not isinstance(a, dict):
            problems.append(f"status.allocations[{i}] is {_kind(a)}, not an object; ignored")
            continue
        wrong = [k for k in ("nodeName", "sliceRange") if not isinstance(a.get(k), str)]
        if wrong:
            problems.append(f"status.allocations[{i}]: {' and '.join(wrong)} not a string; ignored")
            continue
        allocations.append({"nodeName": a["nodeName"], "sliceRange": a["sliceRange"]})
    return NodeSlicePoolRow(
        namespace=str(_meta(obj).get("namespace") or ""),
        name=name,
        uid=uid,
        resource_version=rv,
        created_at=created,
        range=_text(spec.get("range"))[:64],
        slice_size=_text(spec.get("sliceSize"))[:8],
        allocations=dumps(allocations),
        problems=dumps(_capped(problems)),
    )


# --- pods ---------------------------------------------------------------------------------


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


# --- events -------------------------------------------------------------------------------


class EventRow(NamedTuple):
    uid: str
    namespace: str
    name: str
    pod_namespace: str
    pod_name: str
    pod_uid: str
    reason: str
    type: str
    message: str
    count: int  # type: ignore[assignment]  # the Event's count; shadows tuple.count
    first_seen: datetime | None
    last_seen: datetime | None
    interface: str
    ip: str | None


class EventRecord(NamedTuple):
    row: EventRow
    nad: tuple[str, str] | None  # (namespace, name) named in the message
    range: str  # a CIDR named in the message ("range: 10.0.0.0/29"), if any


# Multus: "Add net1 [10.0.0.5/24] from ns/nad" (several IPs are space separated).
_ADDED = re.compile(r"Add (?P<ifname>\S+) \[(?P<ips>[^\]]*)\] from (?P<ns>[^/\s]+)/(?P<nad>\S+)")
# Multus failures name the attachment as "[namespace/pod/uid:network]" and the delegate
# as `error adding container to network "name"`.
_FAILED_NAD = re.compile(r"\[(?P<ns>[^/\s\]]+)/[^/\s\]]+/[^:\s\]]*:(?P<nad>[^\]\s]+)\]")
_FAILED_NETWORK = re.compile(r'(?:adding|add) container to network "(?P<nad>[^"]+)"')
_RANGE = re.compile(r"range:?\s*(?P<cidr>[0-9a-fA-F.:]+/\d{1,3})")
_ANY_IP = re.compile(
    r"(?<![\w.:])(\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7})(?:/\d{1,3})?"
)


def event_record(obj: dict[str, Any], *, not_before: datetime | None = None) -> EventRecord | None:
    """A Multus/whereabouts event about a pod, or None for any other event or one last seen
    before `not_before` (the retention window: a watch's initial ADDED events and a full
    list both carry the whole history the API server still keeps)."""
    reason = str(obj.get("reason") or "")
    involved = _dict(obj.get("involvedObject"))
    if reason not in EVENT_REASONS or (involved.get("kind") not in (None, "Pod")):
        return None
    name, uid, _rv, created = _common(obj)
    meta = _meta(obj)
    message = str(obj.get("message") or obj.get("note") or "")
    series = _dict(obj.get("series"))
    first = timestamp(obj.get("firstTimestamp")) or timestamp(obj.get("eventTime")) or created
    last = (
        timestamp(obj.get("lastTimestamp"))
        or timestamp(series.get("lastObservedTime"))
        or timestamp(obj.get("eventTime"))
        or first
    )
    count = obj.get("count") or series.get("count") or 1
    interface = ""
    ip = None
    nad: tuple[str, str] | None = None
    cidr = ""
    pod_namespace = str(involved.get("namespace") or meta.get("namespace") or "")
    added = _ADDED.search(message)
    if added:
        interface = added["ifname"][:32]
        nad = (added["ns"], added["nad"])
        for text in added["ips"].split():
            ip = ip_key(text)
            if ip is not None:
                break
    else:
        failed = _FAILED_NAD.search(message)
        if failed:
            nad = (failed["ns"], failed["nad"])
        else:
            network = _FAILED_NETWORK.search(message)
            if network and network["nad"] != "multus-cni-network":
                nad = (pod_namespace, network["nad"])
        found = _RANGE.search(message)
        if found:
            cidr = found["cidr"]
        if reason.startswith("IPAddressGarbage"):
            for match in _ANY_IP.finditer(message):
                ip = ip_key(match.group(0))
                if ip is not None:
                    break
    row = EventRow(
        uid=uid or f"{meta.get('namespace')}/{name}",
        namespace=str(meta.get("namespace") or "")[:63],
        name=name[:253],
        pod_namespace=pod_namespace[:63],
        pod_name=str(involved.get("name") or "")[:253],
        pod_uid=str(involved.get("uid") or "")[:64],
        reason=reason,
        type=str(obj.get("type") or "")[:16],
        message=message,
        count=count if isinstance(count, int) and count > 0 else 1,
        first_seen=first,
        last_seen=last,
        interface=interface,
        ip=ip,
    )
    if not_before is not None and last is not None and last < not_before:
        return None
    return EventRecord(row, nad, cidr)


# --- compact forms for the full sync ------------------------------------------------------
# A full sync holds every changed pod and reservation until all lists are complete. As
# Python objects a pod's rows take ~2 KB (150k pods: ~300 MB); packed as one orjson
# bytes object they take ~40% of that. They are unpacked one at a time while written.


class Packed:
    """A re-iterable, sized view that unpacks `items` with `unpack` on each pass."""

    def __init__(self, unpack: Any) -> None:
        self.items: list[bytes] = []
        self.unpack = unpack
        self.interfaces = 0  # pods: how many interface rows the records hold

    def append(self, item: bytes) -> None:
        self.items.append(item)

    def clear(self) -> None:
        self.items.clear()
        self.interfaces = 0

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Any:
        unpack = self.unpack
        return (unpack(item) for item in self.items)


def _exact(data: bytes) -> bytes:
    # orjson hands back its whole output buffer (~4.5 KB for a 1 KB pod): copy it to size.
    return memoryview(data).tobytes()


def pack_pod(record: PodRecord) -> bytes:
    interfaces = [[list(iface), keys] for iface, keys in record.interfaces]
    return _exact(orjson.dumps([list(record.row), interfaces]))


def unpack_pod(data: bytes) -> PodRecord:
    row, interfaces = orjson.loads(data)
    pod = PodRow(*row)
    pod = pod._replace(
        created_at=timestamp(pod.created_at), deletion_timestamp=timestamp(pod.deletion_timestamp)
    )
    return PodRecord(pod, [(InterfaceRow(*iface), keys) for iface, keys in interfaces])


def pack_reservation(row: ReservationRow) -> bytes:
    return _exact(orjson.dumps(list(row)))


def unpack_reservation(data: bytes) -> ReservationRow:
    row = ReservationRow(*orjson.loads(data))
    return row._replace(created_at=timestamp(row.created_at))
