"""whereabouts OverlappingRangeIPReservations to rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from ippam import naming
from ippam.sync.records.common import (
    _kind,
    _podref_problem,
    _show,
    _text_of,
    dumps,
    timestamp,
)
from ippam.sync.records.nodes import _field_problems


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


_tuple_new = tuple.__new__  # rows without the NamedTuple's Python-level __new__ (hot path)


def reservation_record(obj: dict[str, Any], network_names: list[str]) -> ReservationRow:
    """`network_names`: the network_name of every whereabouts NAD, longest first.

    A reservation's name is `[network_name-]ip`; which prefix applies can only be told
    by trying the network names that exist. A name that is no address whereabouts could
    have written, or a spec the CRD would reject (spec and spec.podref are required), is
    a problem on the row; leak rules never call such a reservation orphaned (nothing
    trustworthy says whose it is).
    """
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
    name = _text_of(meta.get("name"))
    problems: list[str] = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        problems.append(f"spec is {_kind(spec)}, not an object with podref (the CRD requires one)")
        spec = None
    ip = None
    network_name = ""
    for candidate in network_names:
        if candidate and name.startswith(candidate + "-"):
            ip = naming.reservation_key(name, candidate)
            if ip is not None:
                network_name = candidate
                break
    if ip is None:
        ip = naming.reservation_key(name)
    if ip is None:
        problems.append(
            f"name is not an address whereabouts could have written: {_show(name)} is not "
            "[network_name-]address (IPv4 as is, IPv6 with ':' as '-') for any known "
            "network_name; no address is attributed to it"
        )
    podref = ifname = container_id = None
    if spec is not None:
        podref = spec.get("podref")
        if not (
            isinstance(podref, str)
            and podref.count("/") == 1
            and not podref.startswith("/")
            and not podref.endswith("/")
        ):
            podref_problem = _podref_problem(podref)
            if podref_problem:
                problems.append(f"spec.{podref_problem}")
        ifname = spec.get("ifname")
        container_id = spec.get("containerid")
        if not (
            (ifname is None or isinstance(ifname, str))
            and (container_id is None or isinstance(container_id, str))
        ):
            problems += _field_problems(spec, "spec", {"ifname": str, "containerid": str})
    podref = podref if isinstance(podref, str) else ""
    pod_namespace, sep, pod_name = podref.partition("/")
    if not sep:  # naming.split_podref: no slash, no namespace
        pod_namespace, pod_name = "", podref
    row: ReservationRow = _tuple_new(
        ReservationRow,
        (
            _text_of(meta.get("namespace")),
            name,
            _text_of(meta.get("uid")),
            _text_of(meta.get("resourceVersion")),
            timestamp(meta.get("creationTimestamp")),
            ip,
            network_name,
            podref[:317],
            pod_namespace[:63],
            pod_name[:253],
            ifname[:32] if isinstance(ifname, str) else "",
            container_id[:128] if isinstance(container_id, str) else "",
            dumps(problems) if problems else "[]",
        ),
    )
    return row
