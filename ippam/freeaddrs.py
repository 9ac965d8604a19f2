"""The addresses whereabouts would hand out next, and the free blocks of a pool.

Pure module (no Django, no kubernetes client): it walks the usable intervals that
ippam.ranges computed (the one usable-address implementation) and steps over the taken
addresses (allocations and reservations), given as ascending integers. Nothing enumerates
a range: the cost is the number of taken addresses passed, never the range's size.

The order is whereabouts' own (pkg/allocate ``IterateForAssignment``): from the first usable
address (``range_start`` when whereabouts honours it) upwards, skipping addresses the IPPool
holds, jumping over excluded subnets, stopping at the last usable address (``range_end``
when honoured). There is no wrap and no "next after the last one" cursor: a freed address
is handed out again at once. An OverlappingRangeIPReservation of the same network_name
scope held by another pod makes whereabouts retry with the next address
(pkg/storage/kubernetes ``IPManagementKubernetesUpdate``), so reserved addresses are
skipped too (only when the range has ``enable_overlapping_ranges``, else it never looks).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator

from ippam.ranges import Interval

__all__ = ["free_blocks", "largest_free_blocks", "next_free"]


def free_blocks(blocks: Iterable[Interval], taken: Iterable[int]) -> Iterator[Interval]:
    """The usable ``blocks`` (ascending, merged) minus the ``taken`` addresses (ascending;
    duplicates and addresses outside the blocks are allowed), as ascending intervals."""
    it = iter(taken)
    pending = next(it, None)
    for lo, hi in blocks:
        at = lo
        while pending is not None and pending <= hi:
            if pending >= at:
                if pending > at:
                    yield at, pending - 1
                at = pending + 1
            pending = next(it, None)
        if at <= hi:
            yield at, hi


def next_free(blocks: Iterable[Interval], taken: Iterable[int], count: int) -> list[int]:
    """The first ``count`` addresses of ``blocks`` not in ``taken``, in whereabouts' order.

    ``taken`` may be a lazy ascending stream (e.g. a database cursor): it is read only as
    far as the last address returned."""
    out: list[int] = []
    if count <= 0:
        return out
    for lo, hi in free_blocks(blocks, taken):
        for ip in range(lo, min(hi, lo + count - len(out) - 1) + 1):
            out.append(ip)
        if len(out) >= count:
            break
    return out


def largest_free_blocks(
    blocks: Iterable[Interval], taken: Iterable[int], top: int = 10
) -> list[Interval]:
    """The ``top`` largest free intervals, largest first (ties: lowest address first)."""
    return heapq.nsmallest(top, free_blocks(blocks, taken), key=lambda b: (b[0] - b[1], b[0]))
