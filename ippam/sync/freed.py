"""Recently freed addresses: allocations that left an IPPool, kept for a bounded window.

Whereabouts frees an address by removing `spec.allocations[<offset>]` from the IPPool (pod
DEL, its reconciler, or ippam's reclaim) and hands it out again at once: allocation scans
from the range start and takes the first offset no allocation holds. So an address that
"belongs" to pod A in someone's ARP cache may already be pod B's. ippam keeps, per freed
address, who held it and when it went, for IPPAM_FREED_RETENTION_SECONDS.

Recorded where the allocation rows of a pool are replaced (ippam.sync.store.pools_write and
the IPPool branch of objects_delete), so both the watcher and the full sync record it, and
only for the pools being written: a resync with nothing changed reads nothing here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from ippam import models as m

_CHUNK = 900  # pool ids per query: under SQLite's 999 parameters


def freed_since() -> datetime:
    """The oldest freed_at still shown (IPPAM_FREED_RETENTION_SECONDS ago)."""
    return timezone.now() - timedelta(seconds=settings.IPPAM_FREED_RETENTION_SECONDS)


def _record(
    pool_ids: Sequence[int],
    kept: dict[int, set[tuple[str, str]]] | None,
    now: datetime,
    held: Iterable[tuple[int, str, str]] = (),
) -> int:
    """Record every allocation row of `pool_ids` whose (key, podref) is not in `kept[pool]`.

    A key kept under another podref is a free and a re-allocation (whereabouts reused the
    offset between two events): the old holder is recorded as freed. `kept` None: the pools
    are deleted, every allocation is freed. `held`: the (pool, key, podref) the pools hold
    now, as the caller already read them (no join, no address parsing: on a forced resync
    every pool is rewritten and nearly nothing is lost); the full rows are read only for the
    pools that lost something, then one insert.
    """
    if not pool_ids:
        return 0
    pools = list(pool_ids)
    if kept is not None:
        pools = sorted(
            {pool_id for pool_id, key, podref in held if (key, podref) not in kept.get(pool_id, ())}
        )
    lost: list[m.FreedAddress] = []
    for start in range(0, len(pools), _CHUNK):
        chunk = pools[start : start + _CHUNK]
        rows = (
            m.Allocation.objects.filter(pool_id__in=chunk)
            .order_by()
            .values_list(
                "pool_id",
                "cluster_id",
                "key",
                "ip",
                "podref",
                "ifname",
                "pool__namespace",
                "pool__name",
            )
        )
        for pool_id, cluster_id, key, ip, podref, ifname, pool_namespace, pool_name in rows:
            if kept is not None and (key, podref) in kept.get(pool_id, ()):
                continue
            lost.append(
                m.FreedAddress(
                    cluster_id=cluster_id,
                    pool_namespace=pool_namespace,
                    pool_name=pool_name,
                    key=key,
                    ip=ip,
                    podref=podref,
                    ifname=ifname,
                    freed_at=now,
                )
            )
    m.FreedAddress.objects.bulk_create(lost, batch_size=500)
    return len(lost)


def pools_freed(
    cluster_id: int,
    pool_ids: dict[tuple[str, str], int],
    records: Iterable[Any],
    now: datetime,
    held: Iterable[tuple[int, str, str]],
) -> int:
    """Before a pool's allocations are replaced by `records`' (PoolRecord): record the lost
    ones. `held`: (pool id, key, podref) of the allocation rows the pools have now."""
    kept: dict[int, set[tuple[str, str]]] = {}
    for rec in records:
        pool_id = pool_ids.get((rec.row.namespace, rec.row.name))
        if pool_id is not None:
            kept[pool_id] = {(alloc.key, alloc.podref) for alloc in rec.allocations}
    # Pruned here, where it is recorded: one indexed DELETE per batch of pools written (the
    # pages filter by the window too, so a cluster whose pools stop changing shows nothing
    # stale; its rows go on the next write or with the cluster).
    freed_expire(cluster_id)
    return _record(list(kept), kept, now, held)


def pools_deleted(pool_ids: Sequence[int], now: datetime | None = None) -> int:
    """Before pools are deleted: every allocation they held is freed."""
    return _record(list(pool_ids), None, now or timezone.now())


def freed_expire(cluster_id: int, retention_seconds: int | None = None) -> int:
    """Delete the cluster's freed addresses older than the window (one set-based DELETE)."""
    seconds = (
        settings.IPPAM_FREED_RETENTION_SECONDS if retention_seconds is None else retention_seconds
    )
    cutoff = timezone.now() - timedelta(seconds=seconds)
    deleted, _ = m.FreedAddress.objects.filter(cluster_id=cluster_id, freed_at__lt=cutoff).delete()
    return deleted
