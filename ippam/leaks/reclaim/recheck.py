"""Step 2 of reclamation, re-check: who holds the address right now, read live
from the cluster (the podref's pod by name and uid, and every live pod listing the address in
the same network scope)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.utils.dateparse import parse_datetime
from netaddr import IPAddress

from ippam.kube.holders import pod_listings
from ippam.kube.writes import HolderIndex, KubeWrites, PodListing
from ippam.leaks.reclaim.common import holders_max_age
from ippam.models import Cluster, NADRange, NetworkAttachmentDefinition, ReclaimItem, ReclaimRun


def _parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    parsed = parse_datetime(str(value))
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def _pod_listing(pod: dict[str, Any], ip: IPAddress) -> str:
    """How `pod` lists `ip`, as Go reads its network-status ("net1 of ns/nad lists
    10.0.0.7"), or "". The same reading as every other live pod's (ippam.kube.holders)."""
    for _, listing in pod_listings(pod, {ip}, dead_too=True):
        return f"{listing.where()} lists {listing.spelled(ip)}"
    return ""


def _podref_verdict(
    pod: dict[str, Any] | None, item: ReclaimItem, ip: IPAddress, run: ReclaimRun
) -> str:
    """Why the pod the allocation names keeps the address, or "" when it may be freed.

    The pod is matched by name *and* uid: a pod found under the same name with another uid
    (a StatefulSet re-created it) is another pod. If it lists the address it holds it; if it
    is still starting, whereabouts hands it the podref's allocation back on CNI ADD (it looks
    allocations up by podref), so it is left alone whatever the plan's override says.
    """
    if pod is None:
        return ""
    podref = item.podref
    metadata = pod.get("metadata") or {}
    uid = str(metadata.get("uid") or "")
    other = bool(item.pod_uid) and uid != item.pod_uid
    who = f"pod {podref}, re-created under the same name (uid {uid}, the plan saw {item.pod_uid}),"
    who = who if other else f"pod {podref}"
    listed = _pod_listing(pod, ip)
    if listed:
        return f"{who} holds it ({listed} in its network-status)"
    phase = (pod.get("status") or {}).get("phase") or ""
    created = _parse_time(metadata.get("creationTimestamp"))
    if created is not None and created > run.created_at:
        return (
            f"{who} was created at {created:%H:%M:%S}, after this plan; "
            "its CNI ADD may be under way: plan again after the grace period"
        )
    new_pod = other or not item.pod_uid
    if new_pod and phase == "Pending":
        return (
            f"{who} is Pending: whereabouts gives a starting pod the allocation of its podref "
            "back on CNI ADD; plan again once it runs"
        )
    if run.include_suspect:
        return ""
    if metadata.get("deletionTimestamp"):
        return f"{who} is terminating; whereabouts frees the address itself on CNI DEL"
    if phase == "Pending":
        return f"{who} is Pending and Multus may not have written its network-status yet"
    return ""


NadScopes = dict[tuple[str, str], list[tuple[IPAddress, IPAddress, str]]]


def _nad_scopes(cluster: Cluster) -> NadScopes:
    """(namespace, name) of each synced NAD -> its whereabouts ranges and their network_name.

    A NAD attached with a network_name lands in that name's pools (and reservations); two
    NADs with different network_names hand out the same address independently. The synced
    config is the right one to judge by: the pod got its address with the config of its
    CNI ADD, and a NAD created since is unknown here, which counts as "same scope".
    """
    scopes: NadScopes = {}
    nads = NetworkAttachmentDefinition.objects.filter(cluster=cluster).values_list(
        "pk", "namespace", "name"
    )
    by_pk = {pk: (namespace, name) for pk, namespace, name in nads}
    for key in by_pk.values():
        scopes[key] = []
    ranges = NADRange.objects.filter(cluster=cluster).values_list(
        "nad_id", "first_ip", "last_ip", "network_name"
    )
    for nad_id, first, last, network_name in ranges:
        if nad_id in by_pk and first is not None and last is not None:
            scopes[by_pk[nad_id]].append((first, last, network_name))
    return scopes


def _listing_in_scope(
    listing: PodListing, ip: IPAddress, network_name: str | None, scopes: NadScopes
) -> bool:
    """Whether a pod's listing of `ip` is in the network scope `network_name` of the address
    being freed. Only a listing provably in *another* whereabouts network is out of scope: an
    unknown NAD, a NAD not managed by whereabouts (an address set by hand), a range that does
    not contain the address or an annotation that does not parse all count as the same
    scope, because skipping is safe and freeing is not."""
    if network_name is None or not listing.parsed or listing.nad is None:
        return True
    ranges = scopes.get(listing.nad)
    if not ranges:
        return True
    names = {name for first, last, name in ranges if first <= ip <= last}
    return not names or network_name in names


class Recheck:
    """The live state one run re-checks each address against, just before freeing it.

    The index of live holders comes from one paged list of every pod, read after the run
    started (so after the plan) and before the first write, and read again whenever it is
    older than IPPAM_RECLAIM_HOLDERS_MAX_AGE_SECONDS (a long run re-reads between items).
    """

    def __init__(self, writes: KubeWrites, run: ReclaimRun, items: list[ReclaimItem]) -> None:
        self.w = writes
        self.run = run
        self.addresses = {IPAddress(i.ip) for i in items if i.ip is not None}
        self.scopes = _nad_scopes(run.cluster)
        self.index: HolderIndex | None = None
        self.reads = 0

    def holders(self) -> HolderIndex:
        if self.index is None or time.monotonic() - self.index.read_at > holders_max_age():
            self.index = self.w.holder_index(self.addresses)
            self.reads += 1
        return self.index

    def live_holder(self, ip: IPAddress, network_name: str | None) -> str:
        """A sentence naming a live pod that lists `ip` in the same network, or ""."""
        for listing in self.holders().holders(ip):
            if _listing_in_scope(listing, ip, network_name, self.scopes):
                return listing.describe(ip)
        return ""


def _odd(value: Any) -> str:
    if value is None:
        return "null"
    return {
        str: "a string",
        list: "a list",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)
