"""What each kind of finding is for a person reading the leaks page: a reclaimable leak or a
hazard, and its remedy in one sentence.

A leak is an address (or reservation) whereabouts holds for nothing: its CNI DEL never ran,
so the IPPool or the OverlappingRangeIPReservation still names a pod that is gone or no
longer lists the address. Reclaiming removes exactly that record. A hazard is not a leak:
a live pod uses the address, or the configuration lets whereabouts hand an address out
twice; reclaiming would free an address in use, so each has its own remedy instead.
"""

from __future__ import annotations

from typing import Literal

Section = Literal["reclaimable", "hazard"]

# The kinds reclaiming frees (ippam.leaks.rules.registry.RECLAIMABLE_KINDS, checked equal by
# a test). A missing reservation shares the orphaned_reservation kind but is a hazard.
RECLAIMABLE = frozenset({"orphaned_allocation", "stale_allocation", "orphaned_reservation"})
MISSING_RESERVATION = "missing reservation"

SECTION_TITLES: dict[Section, tuple[str, str]] = {
    "reclaimable": (
        "Reclaimable leaks",
        "Whereabouts still holds these for a pod that is gone or no longer uses them: "
        "reclaiming frees them.",
    ),
    "hazard": (
        "Hazards",
        "Not leaks: a live pod uses these addresses, or the configuration lets whereabouts "
        "hand one out twice. Never reclaim them; each has its remedy.",
    ),
}

REMEDIES = {
    "orphaned_allocation": "The pod is gone and its CNI DEL never freed the address: reclaim it.",
    "stale_allocation": (
        "The pod lives but no longer lists this address on the network: reclaim it once "
        "the pod's network status has settled."
    ),
    "orphaned_reservation": (
        "The reservation blocks its address on every range of the network: reclaim deletes it."
    ),
    MISSING_RESERVATION: (
        "Whereabouts can hand this address out again from an overlapping range: restart "
        "the pod so it reserves it again."
    ),
    "untracked_address": (
        "No IPPool records the address, so whereabouts will give it to the next pod: "
        "restart the pod so it gets a tracked address."
    ),
    "duplicate_address": (
        "Several live pods use one address: restart all but one of them; fix overlapping "
        "ranges (one network_name, or enable_overlapping_ranges) if pools disagree."
    ),
    "overlapping_range": (
        "Two ranges overlap without sharing a network_name and enable_overlapping_ranges: "
        "give them disjoint ranges or the same network_name."
    ),
    "slice_stranded": (
        "A node slice still belongs to a node that is gone: the node-slice controller "
        "frees it when the node object is deleted."
    ),
    "node_without_slice": (
        "Pods on this node get no address from the network: enlarge the range or make the "
        "slices smaller."
    ),
    "slices_exhausted": (
        "Every slice is assigned, so the next node gets none: enlarge the range or make the "
        "slices smaller."
    ),
}


def finding_section(kind: str, *, has_reservation: bool) -> Section:
    """A finding's section. An orphaned_reservation finding without a reservation object is
    a missing reservation: there is nothing to delete, and the address is at risk."""
    if kind not in RECLAIMABLE or (kind == "orphaned_reservation" and not has_reservation):
        return "hazard"
    return "reclaimable"


def finding_remedy(kind: str, *, has_reservation: bool) -> str:
    if kind == "orphaned_reservation" and not has_reservation:
        return REMEDIES[MISSING_RESERVATION]
    return REMEDIES.get(kind, "")
