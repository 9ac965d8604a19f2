"""Map node-slice IPPools to their network, node and slice after every write.

A pool's name alone cannot be split into network_name and node (both may contain '-'),
so the mapping needs the NodeSlicePools (their names and ``{nodeName, sliceRange}``
status) and the NADs' ``network_name``; like ``store.links_refresh`` it runs after each
write because the pools, the NodeSlicePools and the NADs arrive independently.
"""

from __future__ import annotations

from typing import Any

from ippam import models as m
from ippam.naming import normalize_range
from ippam.nodeslice import SliceNetwork, map_pool

__all__ = ["slice_networks", "node_slices_refresh"]


def _config_name(config: Any) -> str:
    return str(config.get("name") or "") if isinstance(config, dict) else ""


def slice_networks(cluster_id: int) -> list[SliceNetwork]:
    """The cluster's node-slice networks: one per NodeSlicePool.

    Its network_name is the pool's name when a node-slice NAD sets that network_name;
    when a NAD names the pool through its config ``name`` instead, it is unnamed. With no
    NAD to tell (deleted, or not synced yet) both readings are offered to ``map_pool``.
    """
    named: set[str] = set()
    unnamed: set[str] = set()
    ranges = m.NADRange.objects.filter(cluster_id=cluster_id).exclude(node_slice_size="")
    for network_name, config in ranges.values_list("network_name", "nad__config"):
        if network_name:
            named.add(network_name)
        elif _config_name(config):
            unnamed.add(_config_name(config))
    networks = []
    for name, cidr, size, allocations in m.NodeSlicePool.objects.filter(
        cluster_id=cluster_id
    ).values_list("name", "range", "slice_size", "allocations"):
        pairs = tuple(
            (str(a.get("nodeName") or ""), str(a.get("sliceRange") or ""))
            for a in allocations or ()
            if isinstance(a, dict)
        )
        readings = []
        if name in named or name not in unnamed:
            readings.append(name)
        if name in unnamed or name not in named:
            readings.append("")
        for network_name in readings:
            networks.append(SliceNetwork(name, network_name, cidr, size, pairs))
    return networks


def _plain_network_name(pool_name: str, cidr: str) -> str:
    # What the pool records set for a pool outside node-slice mode: `[network_name-]range`.
    normalized = normalize_range(cidr) if cidr else ""
    if not normalized or pool_name == normalized or not pool_name.endswith("-" + normalized):
        return ""
    return pool_name[: -len(normalized) - 1]


def node_slices_refresh(cluster_id: int) -> int:
    """Set node_name, slice_range and network_name of the cluster's node-slice pools (and
    clear them on pools that no longer map). Returns how many pools changed."""
    networks = slice_networks(cluster_id)
    changed = []
    pools = m.IPPool.objects.filter(cluster_id=cluster_id)
    if not networks:
        pools = pools.exclude(slice_range="")
    for pool in pools.only("id", "name", "range", "network_name", "node_name", "slice_range"):
        hit = map_pool(pool.name, pool.range, networks) if networks else None
        if hit is not None:
            want = (hit.network_name, hit.node_name, hit.slice_range)
        else:
            want = (_plain_network_name(pool.name, pool.range), "", "")
        if (pool.network_name, pool.node_name, pool.slice_range) != want:
            pool.network_name, pool.node_name, pool.slice_range = want
            changed.append(pool)
    m.IPPool.objects.bulk_update(
        changed, ["network_name", "node_name", "slice_range"], batch_size=500
    )
    return len(changed)
