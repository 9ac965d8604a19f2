"""NetworkAttachmentDefinitions to rows: the NAD, and its whereabouts ranges."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from netaddr import IPAddress

from ippam import naming
from ippam.annotations import (
    NODE_SELECTOR_ANNOTATION,
    RESOURCE_NAME_ANNOTATION,
)
from ippam.cniconfig import parse_cni_config
from ippam.fields import ip_to_key
from ippam.nodeslice import divide_range, slices_usable_total
from ippam.sync.records.common import _common, _dict, _kind, _meta, dumps
from ippam.whereabouts import WhereaboutsRange, parse_whereabouts_ipam


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
    verdict: str


class NadRecord(NamedTuple):
    row: NadRow
    ranges: list[NadRangeRow]


def _key_or_none(ip: IPAddress | None) -> str | None:
    return ip_to_key(ip) if ip is not None else None


def _usable(r: WhereaboutsRange, node_slice_size: str) -> int:
    """Usable addresses of a range. In node-slice mode (the first range only: the
    controller slices IPRanges[0]) every slice loses its own network and broadcast address
    and range_start, range_end and exclude are dropped (ippam.nodeslice); a config
    whereabouts rejects still hands out nothing."""
    if not node_slice_size:
        return r.usable_count()
    if r.refusal:
        return 0
    return slices_usable_total(divide_range(r.cidr, node_slice_size))


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
                    usable=Decimal(_usable(r, wa.node_slice_size if position == 0 else "")),
                    pool_name=naming.pool_name(r.cidr, wa.network_name),
                    # Node-slice mode drops exclude (ippam.nodeslice): only a refusal holds.
                    verdict=r.refusal if wa.node_slice_size and position == 0 else r.verdict,
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
