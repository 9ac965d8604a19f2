"""The overlapping-range rule: ranges of different NADs that share addresses where
whereabouts may hand one address out twice. The verdict itself is ippam.overlaps.overlap_verdict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ippam.leaks.rules.common import Candidate, Context, Kind, _ordinal
from ippam.models import NADRange
from ippam.overlaps import OverlapSide, OverlapVerdict, overlap_verdict


def overlapping_ranges(ctx: Context) -> list[Candidate]:
    # One query for the cluster's ranges (a few thousand at most), then a sweep in address
    # order: each range is compared only with the ranges still open at its start, instead
    # of the n² pairs a SQL self-join on interval bounds makes the database walk.
    ranges = list(
        NADRange.objects.filter(cluster=ctx.cluster, first_ip__isnull=False, last_ip__isnull=False)
        .order_by("first_ip", "id")
        .values(
            "id",
            "range",
            "network_name",
            "enable_overlapping_ranges",
            "pool_name",
            "first_ip",
            "last_ip",
            "nad_id",
            "nad__namespace",
            "nad__name",
            "nad__created_at",
        )
    )
    found = []
    open_: list[tuple[int, Mapping[str, Any]]] = []  # (last address as an ordinal, range)
    for rng in ranges:
        first = _ordinal(rng["first_ip"])
        open_ = [(last, o) for last, o in open_ if last >= first]
        for _, other in open_:
            # Never across families: an IPv6 range such as ::/64 spans the IPv4 ordinals
            # (mapped into ::ffff:0:0/96) but shares no address with an IPv4 range.
            if other["nad_id"] == rng["nad_id"] or _family(other) != _family(rng):
                continue
            a, b = sorted(
                (other, rng), key=lambda r: (r["nad__namespace"], r["nad__name"], r["id"])
            )
            verdict = overlap_verdict(_side(a), _side(b))
            if verdict.hazard:  # same scope with reservations on both sides: safe, no finding
                found.append(_overlap(a, b, verdict))
        open_.append((_ordinal(rng["last_ip"]), rng))
    return found


def _family(rng: Mapping[str, Any]) -> int:
    return 6 if ":" in rng["range"] else 4


def _side(rng: Mapping[str, Any]) -> OverlapSide:
    return OverlapSide(
        f"NAD {rng['nad__namespace']}/{rng['nad__name']} ({rng['range']})",
        rng["network_name"],
        rng["enable_overlapping_ranges"],
        rng["pool_name"],
    )


def _overlap(a: Mapping[str, Any], b: Mapping[str, Any], verdict: OverlapVerdict) -> Candidate:
    na, nb = f"{a['nad__namespace']}/{a['nad__name']}", f"{b['nad__namespace']}/{b['nad__name']}"
    first = a["first_ip"] if _ordinal(a["first_ip"]) >= _ordinal(b["first_ip"]) else b["first_ip"]
    created = [t for t in (a["nad__created_at"], b["nad__created_at"]) if t]
    return Candidate(
        kind=Kind.OVERLAPPING_RANGE,
        identity=f"{Kind.OVERLAPPING_RANGE}:{na}#{a['range']}:{nb}#{b['range']}",
        reason=verdict.sentence,
        ip=first,
        nad_id=a["nad_id"],
        details={
            "nads": [na, nb],
            "ranges": [a["range"], b["range"]],
            "network_names": [a["network_name"], b["network_name"]],
            "enable_overlapping_ranges": [
                a["enable_overlapping_ranges"],
                b["enable_overlapping_ranges"],
            ],
            "cause": "scope" if a["network_name"] != b["network_name"] else "reservations off",
        },
        changed_at=max(created, default=None),
    )
