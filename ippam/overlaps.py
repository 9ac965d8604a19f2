"""Whether two overlapping whereabouts ranges can hand out the same address: one verdict,
used by the leak rule (ippam.leaks.rules.overlaps.overlapping_ranges) and the NAD form's warning
(ippam.nads.nad_range_overlaps), so the two cannot disagree.

Pure module (no Django, no kubernetes client). What whereabouts does
(pkg/storage/kubernetes/ipam.go ``IPManagementKubernetesUpdate``, README "Overlapping
ranges"):

- Each range allocates from its own IPPool (named ``[network_name-]<range>``); two NADs
  with the same range and network_name share one IPPool, so they never hand out one
  address twice.
- Across IPPools the only guard is the OverlappingRangeIPReservation: with
  ``enable_overlapping_ranges`` on (the default), whereabouts GETs the reservation named
  ``[network_name-]<ip>`` before taking an address, and creates it after. The reservation's
  name carries the network_name, so reservations only keep apart ranges of the *same*
  network_name ("scoped per network name").
- With ``enable_overlapping_ranges: false`` a range neither checks nor creates
  reservations: it can take an address the other range holds, and the other range finds
  no reservation for the addresses it took.

Two ranges of different IP families never share an address; callers must not ask.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OverlapSide", "OverlapVerdict", "overlap_verdict"]


@dataclass(frozen=True)
class OverlapSide:
    """One of the two ranges: how a person names it, its scope and its reservation switch."""

    label: str  # "NAD team-a/blue (10.0.0.0/24)"
    network_name: str
    reservations: bool  # enable_overlapping_ranges
    pool_name: str = ""

    @property
    def scope(self) -> str:
        return f"network_name '{self.network_name}'" if self.network_name else "no network_name"


@dataclass(frozen=True)
class OverlapVerdict:
    """``hazard``: both can hand out the same address. ``cause`` says why (or why not),
    ``fix`` what to change (empty when nothing needs to)."""

    hazard: bool
    cause: str
    fix: str = ""
    shared_pool: bool = False

    @property
    def sentence(self) -> str:
        return f"{self.cause}; {self.fix}" if self.fix else self.cause


def overlap_verdict(a: OverlapSide, b: OverlapSide) -> OverlapVerdict:
    """The verdict on two ranges whose addresses intersect (same IP family)."""
    if a.pool_name and a.pool_name == b.pool_name:
        return OverlapVerdict(
            False,
            f"{a.label} and {b.label} draw from the same IPPool {a.pool_name}, so whereabouts "
            "never hands one address out twice; fine if they are meant to share the network",
            shared_pool=True,
        )
    if a.network_name != b.network_name:
        return OverlapVerdict(
            True,
            f"{a.label} ({a.scope}) and {b.label} ({b.scope}) overlap in different network_name "
            "scopes: whereabouts keeps overlapping-range reservations per network_name, so "
            "nothing stops both from handing out the same address",
            "give them the same network_name or disjoint ranges (with one network_name, keep "
            "enable_overlapping_ranges on for both)",
        )
    off = [side for side in (a, b) if not side.reservations]
    if off:
        names = " and ".join(side.label for side in off)
        return OverlapVerdict(
            True,
            f"{a.label} and {b.label} overlap in the same scope ({a.scope}), but {names} "
            f"{'sets' if len(off) == 1 else 'set'} enable_overlapping_ranges: false, so "
            "whereabouts keeps no reservation there and each side can take an address the "
            "other holds",
            f"set enable_overlapping_ranges: true on {names} (or drop the key: true is the "
            "default), or make the ranges disjoint",
        )
    return OverlapVerdict(
        False,
        f"{a.label} and {b.label} overlap in the same scope ({a.scope}) with "
        "overlapping-range reservations on both: whereabouts checks the reservation before "
        "handing an address out, so each address goes to one pod only",
    )
