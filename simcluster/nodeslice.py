"""Whereabouts' node-slice mode in simcluster: NodeSlicePools, per-node IPPools, and the
node-slice controller's moves when nodes join and leave.

Modelled on whereabouts (3a262bd0) ``pkg/node-controller/controller.go``: the range is cut
into slices (``iphelpers.DivideRangeBySize``: contiguous, ascending, IPv4); a node that
has no slice takes the first free one (``assignNodeToSlice``), none left and it goes
without; a deleted node's slice is freed (``removeUnusedNodes``, on the Node delete
event) while its IPPool stays. The plugin allocates on a node from the IPPool
``[network_name-]<node>-<slice>`` (``IPPoolName``), between the slice's first and last
usable address (``FirstUsableIP``/``LastUsableIP``), ignoring range_start, range_end and
exclude.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from .builder import WB_API, ClusterBuilder, Pool, pool_name


@dataclass
class SliceNet:
    """One node-slice network: its NodeSlicePool object and the NADs that share it."""

    namespace: str  # whereabouts' namespace: the NodeSlicePool's and the IPPools'
    name: str  # NodeSlicePool name: network_name, or the CNI config name when unset
    network_name: str
    range_key: tuple[str, str]  # the whole range's pool key, as ClusterBuilder keys NADs
    nsp: dict[str, Any]
    nads: list[tuple[str, str]] = field(default_factory=list)

    @property
    def allocations(self) -> list[dict[str, str]]:
        allocations: list[dict[str, str]] = self.nsp["status"]["allocations"]
        return allocations


def _nets(b: ClusterBuilder) -> dict[str, SliceNet]:
    nets: dict[str, SliceNet] = b.slice_nets
    return nets


def node_slice_nad(
    b: ClusterBuilder,
    namespace: str,
    name: str,
    range_: str,
    slice_size: str,
    *,
    network_name: str | None = None,
    exclude: list[str] | None = None,
    pool_namespace: str = "kube-system",
    created_ago: float = 86400 * 10,
) -> SliceNet:
    """A whereabouts NAD with ``node_slice_size`` and the NodeSlicePool the controller
    creates for it, with the current nodes assigned in order."""
    ipam: dict[str, Any] = {"type": "whereabouts", "range": range_, "node_slice_size": slice_size}
    if network_name:
        ipam["network_name"] = network_name
    if exclude:
        ipam["exclude"] = exclude  # dropped by whereabouts in node-slice mode
    config: dict[str, Any] = {"cniVersion": "0.3.1", "name": name, "type": "macvlan"}
    config.update(master="eth1", mode="bridge", ipam=ipam)
    b.nad(namespace, name, config, created_ago=created_ago, pool_namespace=pool_namespace)
    wb = b.wb_nads[(namespace, name)]
    # No IPPool for the whole range exists in this mode: only per-node slice pools.
    b.pools.pop(wb.pool_key, None)
    b.node_slice_nads.add((namespace, name))
    nsp_name = network_name or name
    nets = _nets(b)
    if nsp_name in nets:
        nets[nsp_name].nads.append((namespace, name))
        return nets[nsp_name]
    whole = ipaddress.ip_network(range_)
    prefix = int(slice_size.lstrip("/"))
    nsp = {
        "apiVersion": WB_API,
        "kind": "NodeSlicePool",
        "metadata": b._meta(nsp_name, pool_namespace, created_ago),
        "spec": {"range": range_, "sliceSize": slice_size},
        "status": {
            "allocations": [
                {"nodeName": "", "sliceRange": str(s)} for s in whole.subnets(new_prefix=prefix)
            ]
        },
    }
    b._objs["nodeslicepools"][(pool_namespace, nsp_name)] = nsp
    net = SliceNet(
        pool_namespace, nsp_name, network_name or "", wb.pool_key, nsp, [(namespace, name)]
    )
    nets[nsp_name] = net
    for node in b._nodes:
        _assign(b, net, node)
    return net


def _assign(b: ClusterBuilder, net: SliceNet, node: str) -> str | None:
    """``assignNodeToSlice``: keep the node's slice, else take the first free one."""
    for a in net.allocations:
        if a["nodeName"] == node:
            return a["sliceRange"]
    for a in net.allocations:
        if a["nodeName"] == "":
            a["nodeName"] = node
            _slice_pool(b, net, node, a["sliceRange"])
            return a["sliceRange"]
    return None  # no free slice: whereabouts leaves the node without one, silently


def _slice_pool(b: ClusterBuilder, net: SliceNet, node: str, slice_: str) -> Pool:
    # whereabouts IPPoolName with a node: [network_name-]<node>-<normalized slice>
    normalized = pool_name(slice_, None)
    key = (net.namespace, "-".join(p for p in (net.network_name, node, normalized) if p))
    s = ipaddress.ip_network(slice_)
    if key not in b.pools:
        b.pools[key] = Pool(
            key[0],
            key[1],
            s,
            int(s.network_address) + 1,
            int(s.broadcast_address) - 1,
            [],
            created=b.ts(3600),
            uid=b.uid(),
        )
    b.node_pool_keys[(net.range_key, node)] = key
    return b.pools[key]


def node_join(b: ClusterBuilder, name: str, **node_kwargs: Any) -> dict[str, str | None]:
    """A node joins; the controller gives it a slice of every node-slice network.
    Returns network -> slice (None: no slice was free)."""
    b.node(name, **node_kwargs)
    return {nsp: _assign(b, net, name) for nsp, net in _nets(b).items()}


def node_leave(b: ClusterBuilder, name: str, controller_saw_it: bool = True) -> None:
    """A node is deleted. When the controller handled the delete event its slices are freed
    (``removeUnusedNodes``); otherwise (controller down, event missed) they stay assigned
    to a node that no longer exists. Either way its IPPools stay."""
    b._objs["nodes"].pop(("", name), None)
    b._nodes.pop(name, None)
    for net in _nets(b).values():
        for a in net.allocations:
            if controller_saw_it and a["nodeName"] == name:
                a["nodeName"] = ""
        net.nsp["status"]["allocations"] = net.allocations
        for key in [k for k in b.node_pool_keys if k[1] == name]:
            del b.node_pool_keys[key]


def slice_pool_ref(b: ClusterBuilder, nsp_name: str, node: str) -> str:
    net = _nets(b)[nsp_name]
    key = b.node_pool_keys[(net.range_key, node)]
    return f"{key[0]}/{key[1]}"
