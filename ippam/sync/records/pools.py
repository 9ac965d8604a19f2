"""whereabouts IPPools to rows: the pool and one row per allocation."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from netaddr import IPAddress, IPNetwork

from ippam import naming
from ippam.fields import ip_to_key
from ippam.ipparse import go_strict_cidr_ip
from ippam.ranges import MAX_OFFSET
from ippam.sync.records.common import (
    _common,
    _dict,
    _kind,
    _meta,
    _podref_problem,
    _show,
    dumps,
)


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


def _odd_key_offset(key: str, size: int, problems: list[str]) -> int | None:
    """The offset of a key that is not plain digits, as whereabouts' strconv.ParseInt reads
    it (a "+" and leading zeros allowed), or None with a problem when it is skipped."""
    digits = key[1:] if key.startswith("+") else key
    if not digits.isascii() or not digits.isdigit():
        if key.startswith("-") and key[1:].isascii() and key[1:].isdigit():
            problems.append(
                f"allocation key {_show(key)} is negative; whereabouts "
                "only writes offsets 0 and up; not counted as allocated"
            )
        else:
            problems.append(
                f"allocation key {_show(key)} is not a decimal offset (whereabouts "
                "skips it); not counted as allocated"
            )
        return None
    # A bounded int(): Python refuses to convert more than 4300 digits.
    return int(digits) if len(digits.lstrip("0")) <= MAX_KEY_DIGITS else size


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
        # whereabouts reads the pool with Go's strict net.ParseCIDR (IPPool.ParseCIDR) and
        # counts offsets from the address as written (toIPReservationList).
        parsed = go_strict_cidr_ip(cidr)
        if parsed is None:
            problems.append(
                f"spec.range {_show(cidr)} is not a CIDR as Go's net.ParseCIDR reads it: "
                "whereabouts cannot read this pool, and every allocation from it fails"
            )
        else:
            written, network = parsed
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
        base = int(written)
        size = network.size
        mapped = 0xFFFF00000000 if network.version == 4 else 0
        offsets: dict[int, str] = {}
        new = tuple.__new__  # rows without the NamedTuple's Python-level __new__ (hot path)
        for key, value in raw_allocations.items():
            if type(key) is not str:
                key = str(key)
            offset: int | None
            if key.isdigit() and key.isascii() and len(key) <= MAX_KEY_DIGITS:
                offset = int(key)  # what whereabouts writes: a plain decimal offset
            else:
                offset = _odd_key_offset(key, size, problems)
                if offset is None:
                    continue
            if offset > MAX_OFFSET:
                problems.append(
                    f"allocation key {_show(key)} is beyond what whereabouts reads back "
                    "(strconv.ParseInt, 64 bits): it skips the key and may hand the address "
                    "out again; not counted as allocated"
                )
                continue
            if offset >= size or len(key) > 40:
                problems.append(
                    f"allocation key {_show(key)} points outside {cidr} (offsets "
                    f"0..{size - 1}); not counted as allocated"
                )
                continue
            if not isinstance(value, dict):
                problems.append(
                    f"allocation key {_show(key)} is {_kind(value)}, not an {{id, podref}} "
                    "object (the IPPool CRD requires one); not counted as allocated"
                )
                continue
            if offset in offsets:
                shown = _show(key)
                problems.append(
                    f"allocation keys {_show(offsets[offset])} and {shown} are the same offset; "
                    f"{shown} is not counted twice"
                )
                continue
            offsets[offset] = key
            # Any: the checks below make them strings (mypy cannot follow the `and` chain).
            podref: Any = value.get("podref")
            id_: Any = value.get("id")
            ifname: Any = value.get("ifname")
            if isinstance(podref, str):
                pod_namespace, sep, pod_name = podref.partition("/")
            else:
                sep = ""
            # The usual value: podref "namespace/name", id and (optional) ifname strings.
            if not (
                sep
                and pod_namespace
                and pod_name
                and "/" not in pod_name
                and isinstance(id_, str)
                and (ifname is None or isinstance(ifname, str))
            ):
                problems.extend(_allocation_value_problems(key, value))
                podref = podref if isinstance(podref, str) else ""
                id_ = id_ if isinstance(id_, str) else ""
                ifname = ifname if isinstance(ifname, str) else ""
                pod_namespace, sep, pod_name = podref.partition("/")
                if not sep:  # naming.split_podref: no slash, no namespace
                    pod_namespace, pod_name = "", podref
            allocations.append(
                new(
                    AllocationRow,
                    (
                        key,
                        f"{(base + offset) | mapped:032x}",
                        id_[:128],
                        podref[:317],
                        pod_namespace[:63],
                        pod_name[:253],
                        (ifname or "")[:32],
                    ),
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
