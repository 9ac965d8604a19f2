"""Leak rules as set-based queries over the synced rows of one cluster (docs/design.md §3).

Every rule is one or two SQL statements (anti-joins with NOT EXISTS, GROUP BY ... HAVING,
a self-join for ranges) that return only the *candidates*; Python then touches candidates
only, to fetch the context a person needs (the pod's phase, node, what its network-status
does list) with a few bulk queries, and to write the sentence. Nothing loops over every
allocation or pod of the cluster in Python, so detection stays within seconds at 150k
allocations (bench/leaks_bench.py).

Grace. A rule only fires once the objects involved have been stable for
settings.IPPAM_LEAK_GRACE_SECONDS (read at call time; 0 turns it off). Which timestamp says
"the object changed" differs per rule, and we only use timestamps the API server wrote,
never `synced_at` (a full resync may rewrite every row, which would hold every finding
forever):
- a pod's `creationTimestamp` for rules that read its network-status: Multus writes the
  annotation only after CNI ADD returns, seconds after the pod is created, and
  whereabouts allocates before that (whereabouts issues #162, #207 are exactly this race);
- for an allocation whose pod is gone, the creationTimestamp of its
  OverlappingRangeIPReservation (whereabouts creates it in the same ADD that allocates), or
  the last event ippam saw for the pod: a pod created after our pod list but allocated
  before our pool list would otherwise look orphaned for one sync;
- a reservation's own creationTimestamp; the newer NAD's for overlapping ranges;
- and when none of these dates an allocation (no reservation, no event, a pod without
  creationTimestamp), when ippam first saw it (Allocation.first_seen, kept across syncs):
  "no timestamp" must not read as "long ago", or the first sync raises it at once.

Suspicion. A finding about a pod that is Pending, terminating, on a NotReady (or vanished)
node, or whose only whereabouts attachment Multus marks `default: true` is "suspect", not
"leaked": the kubelet or Multus may simply not have caught up, and the whereabouts
reconciler makes the same exception for Pending pods (pkg/reconciler/iploop.go).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import OuterRef, Subquery
from netaddr import IPAddress

from ippam.models import Cluster, Finding, InterfaceAddress, Node, Pod, PodInterface

Kind = Finding.Kind
State = Finding.State

DEAD_PHASES = ("Succeeded", "Failed")
CHUNK = 2000


@dataclass
class Candidate:
    """A finding as the rules computed it, before it is upserted."""

    kind: str
    identity: str
    reason: str
    state: str = State.LEAKED
    ip: IPAddress | None = None
    pool_id: int | None = None
    allocation_key: str = ""
    reservation_id: int | None = None
    nad_id: int | None = None
    podref: str = ""
    node_name: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    # When the objects involved last changed, per the rule; None: long ago.
    changed_at: dt.datetime | None = None


@dataclass
class PodInfo:
    id: int
    namespace: str
    name: str
    node_name: str
    phase: str
    deletion_timestamp: dt.datetime | None
    created_at: dt.datetime | None
    has_network_status: bool
    # interface -> addresses, from the pod's network-status (non-default entries)
    addresses: dict[str, list[str]] = field(default_factory=dict)
    only_default_whereabouts: bool = False

    @property
    def podref(self) -> str:
        return f"{self.namespace}/{self.name}"


class Context:
    """What the rules share: the cluster, `now`, node readiness, and a pod cache."""

    def __init__(self, cluster: Cluster, now: dt.datetime) -> None:
        self.cluster = cluster
        self.now = now
        nodes = dict(Node.objects.filter(cluster=cluster).values_list("name", "ready"))
        self.node_ready: dict[str, bool] = nodes
        self._pods: dict[int, PodInfo] = {}

    def pods(self, ids: Iterable[int]) -> dict[int, PodInfo]:
        """PodInfo for these pod ids, loaded in bulk (three queries per chunk)."""
        ids = [i for i in ids if i is not None]
        missing = sorted({i for i in ids if i not in self._pods})
        for chunk in _chunks(missing):
            rows = Pod.objects.filter(id__in=chunk).values_list(
                "id",
                "namespace",
                "name",
                "node_name",
                "phase",
                "deletion_timestamp",
                "created_at",
                "network_status_annotation",
            )
            for pid, ns, name, node, phase, deleting, created, status in rows:
                self._pods[pid] = PodInfo(
                    pid, ns, name, node, phase, deleting, created, bool(status)
                )
            addresses = InterfaceAddress.objects.filter(
                interface__pod_id__in=chunk, interface__default=False
            ).values_list("interface__pod_id", "interface__interface", "ip")
            for pid, iface, ip in addresses:
                self._pods[pid].addresses.setdefault(iface or "?", []).append(str(ip))
            # Pods whose every whereabouts-managed attachment is the default network.
            managed = PodInterface.objects.filter(
                pod_id__in=chunk, nad__ranges__isnull=False
            ).values_list("pod_id", "default")
            defaults: dict[int, set[bool]] = defaultdict(set)
            for pid, is_default in managed:
                defaults[pid].add(is_default)
            for pid, flags in defaults.items():
                self._pods[pid].only_default_whereabouts = flags == {True}
        return {i: self._pods[i] for i in ids if i in self._pods}

    def suspicion(self, pod: PodInfo) -> str:
        """Why a finding about this pod is only suspect, or "" when it is a leak."""
        if pod.deletion_timestamp is not None and pod.node_name and self.node_ready:
            ready = self.node_ready.get(pod.node_name)
            if not ready:
                # Stuck Terminating: the kubelet that would tear the sandbox down (and run
                # CNI DEL, which frees the address) is down or gone, so the pod object stays
                # and nothing says whether the address is still in use. Never a leak while
                # the pod object exists.
                where = "which no longer exists" if ready is None else "which is NotReady"
                return (
                    f"pod {pod.podref} is stuck terminating (deletion requested "
                    f"{_when(pod.deletion_timestamp)}) on node {pod.node_name}, {where}: its "
                    "address is freed only once the pod object is gone"
                )
        if pod.deletion_timestamp is not None:
            return f"pod {pod.podref} is terminating (deletion requested {_when(pod.deletion_timestamp)})"
        if pod.phase == "Pending":
            return f"pod {pod.podref} is Pending, so Multus may not have written its network-status yet"
        if pod.node_name and self.node_ready:  # no Node rows at all: nodes not synced
            ready = self.node_ready.get(pod.node_name)
            if ready is None:
                return f"pod {pod.podref} is on node {pod.node_name}, which no longer exists"
            if not ready:
                return f"pod {pod.podref} is on node {pod.node_name}, which is NotReady, so its status may be out of date"
        if pod.only_default_whereabouts:
            return (
                f"the only whereabouts attachment of pod {pod.podref} is its default network "
                "(network-status marks it default: true)"
            )
        return ""


def _chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _when(moment: dt.datetime | None) -> str:
    if moment is None:
        return "at an unknown time"
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _pool_label(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def _listing(pod: PodInfo) -> str:
    if not pod.has_network_status:
        return "it has no network-status annotation"
    if not pod.addresses:
        return "its network-status lists no secondary address"
    shown = "; ".join(f"{iface}: {', '.join(ips)}" for iface, ips in sorted(pod.addresses.items()))
    return f"its network-status lists {shown}"


def _pod_id(cluster: Cluster) -> Subquery:
    return Subquery(
        Pod.objects.filter(
            cluster=cluster, namespace=OuterRef("pod_namespace"), name=OuterRef("pod_name")
        ).values("id")[:1]
    )


def _ordinal(ip: IPAddress) -> int:
    """An address as one comparable number (IPv4 mapped into ::ffff:0:0/96, like the keys)."""
    return int(ip) | (0xFFFF00000000 if ip.version == 4 else 0)
