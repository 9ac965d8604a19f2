"""whereabouts OverlappingRangeIPReservations to rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from ippam import naming
from ippam.fields import ip_to_key
from ippam.sync.records.common import (
    _common,
    _dict,
    _kind,
    _meta,
    _podref_problem,
    _show,
    _text,
    dumps,
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
