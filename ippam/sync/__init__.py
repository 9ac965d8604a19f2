"""Sync: make the database match each cluster.

- `cluster_sync_full(cluster=...)`: list everything, then one transaction (ippam.sync.full).
- `objects_apply(cluster_id=..., kind=..., events=[(type, obj), ...])`: apply watch events
  with the same row-building and writing code (ippam.sync.apply).
- after every successful full sync, ippam.signals.sync_finished is sent (leak detection listens).
- `pools_refresh_usage(cluster_id, pool_ids=None)`: recompute pool usable/utilization.
"""

from __future__ import annotations

from ippam.sync.apply import objects_apply
from ippam.sync.full import cluster_sync_full
from ippam.sync.store import pools_refresh_usage

__all__ = [
    "cluster_sync_full",
    "objects_apply",
    "pools_refresh_usage",
]
