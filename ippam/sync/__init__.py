"""Sync: make the database match each cluster.

- `cluster_sync_full(cluster=...)`: list everything, then one transaction (ippam.sync.full).
- `objects_apply(cluster_id=..., kind=..., events=[(type, obj), ...])`: apply watch events
  with the same row-building and writing code (ippam.sync.apply).
- `AFTER_SYNC_HOOKS`: callables run with the cluster after every successful full sync.
- `pools_refresh_usage(cluster_id, pool_ids=None)`: recompute pool usable/utilization.
"""

from __future__ import annotations

from ippam.sync.apply import objects_apply
from ippam.sync.full import AFTER_SYNC_HOOKS, cluster_sync_full, hooks_run
from ippam.sync.store import pools_refresh_usage

__all__ = [
    "AFTER_SYNC_HOOKS",
    "cluster_sync_full",
    "hooks_run",
    "objects_apply",
    "pools_refresh_usage",
]
