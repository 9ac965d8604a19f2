"""Who lists an address right now: one fresh, paged read of every pod of the cluster.

Reclamation must not free an address that any live pod lists, not only the pod its
allocation names (a pod that got the address from an overlapping range,
or by hand). Whereabouts' own reconciler (pkg/reconciler, `getFlatIPSet`/`isIpOnPod`) decides
"in use" the same way: the IPs of the pod's Multus network-status. It only looks at the pod
the allocation names; we look at all of them, and keep only an index of the addresses a run
is about to free, so 150,000 pods cost one paged list (limit 500, raw JSON) and a few MB.

Dead pods (Succeeded, Failed) are left out: their sandbox is gone and whereabouts freed their
addresses on CNI DEL; a network-status annotation Multus wrote then is history, not a claim.
An annotation that does not parse is searched as text: if an address appears in it we cannot
say on which network, so the caller treats it as a holder in every scope (skipping is safe,
freeing is not).

Addresses are compared as Go compares them (Multus writes the annotation and whereabouts
reads it, both Go): `::ffff:10.88.0.14` and `::ffff:a58:e` ARE 10.88.0.14 (net.ParseIP gives a
16-byte IP whose To4() is non-nil). Anyone who may annotate a pod may spell its `ips` any
way, so a listing Go cannot parse (`010.088.000.011`, ` 10.88.0.14`, `10.88.0.14/24`) holds
every address a lenient reading of it could denote (ipparse.lenient_listed_ips), and the
sentence names the pod and the listing as written.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from kubernetes import client
from netaddr import IPAddress

from ippam.annotations import (
    LEGACY_NETWORK_STATUS_ANNOTATION,
    NETWORK_STATUS_ANNOTATION,
    pod_network_status,
)
from ippam.ipparse import go_address, go_listed_ip, lenient_listed_ips
from ippam.kube.resources import PODS, Listing

DEAD_PHASES = frozenset({"Succeeded", "Failed"})
# Address-like tokens, for an annotation that is not valid network-status JSON.
_ADDRESS_TOKENS = (re.compile(r"\d{1,3}(?:\.\d{1,3}){3}"), re.compile(r"[0-9A-Fa-f.:]{2,45}"))
_ZERO_DIGIT = re.compile(r"0[0-9]")


@dataclass(frozen=True)
class PodListing:
    """A live pod's network-status entry that lists an address."""

    namespace: str
    name: str
    uid: str
    interface: str = ""
    network: str = ""  # the entry's `name`: "ns/nad" for a Multus attachment
    # (namespace, name) of the NAD, or None when the entry names none (the default network,
    # or an annotation that does not parse): the scope cannot be told.
    nad: tuple[str, str] | None = None
    parsed: bool = True  # False: found as text in an annotation that does not parse
    # The listing as written when Go does not print the address that way ("" when it does).
    written: str = ""
    readable: bool = True  # False: Go cannot parse `written`; a lenient reading gives the IP

    @property
    def podref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def where(self) -> str:
        """ "net1 of default/macvlan-a"."""
        return f"{self.interface or 'an interface'} of {self.network or 'the default network'}"

    def spelled(self, ip: IPAddress) -> str:
        """The listed address, and how it was written when that is not how Go prints it."""
        if not self.written:
            return str(ip)
        if self.readable:
            return f"{ip} (written {self.written!r}, which Go reads as {ip})"
        return f"{self.written!r} (which Go cannot parse, and which could mean {ip})"

    def describe(self, ip: IPAddress) -> str:
        """ "pod default/web-7 lists 10.0.0.7 on net1 of default/macvlan-a"."""
        if not self.parsed:
            return (
                f"pod {self.podref} mentions {self.spelled(ip)} in a network-status annotation "
                "that does not parse, so its network cannot be told"
            )
        where = f" on {self.interface}" if self.interface else ""
        network = self.network or "the default network"
        return f"pod {self.podref} lists {self.spelled(ip)}{where} of {network}"


@dataclass
class HolderIndex:
    """The live pods listing each wanted address, as read at `read_at` (time.monotonic())."""

    listings: dict[IPAddress, list[PodListing]]
    read_at: float
    pods: int  # live pods read
    requests: int  # list pages fetched

    def holders(self, ip: IPAddress) -> list[PodListing]:
        return self.listings.get(go_address(ip), [])


def _scan_text(raw: str, wanted: set[IPAddress]) -> dict[IPAddress, str]:
    """Each wanted address an address-like token of `raw` could denote, with the token."""
    found: dict[IPAddress, str] = {}
    tokens = {t for pattern in _ADDRESS_TOKENS for t in pattern.findall(raw)}
    for token in sorted(tokens):
        for text in (token, token.strip(".:")):
            for ip in lenient_listed_ips(text) & wanted:
                found.setdefault(ip, text)
    return found


def _entry_listings(written: str, wanted: set[IPAddress]) -> list[tuple[IPAddress, str, bool]]:
    """(address, as written or "", Go reads it) for each wanted address one listed `ips`
    value holds: Go's reading when it has one, else every lenient reading."""
    exact = go_listed_ip(written)
    if exact is not None:
        return [(exact, "" if str(exact) == written else written, True)] if exact in wanted else []
    return [(ip, written, False) for ip in sorted(lenient_listed_ips(written) & wanted)]


def pod_listings(
    pod: object, wanted: set[IPAddress], *, dead_too: bool = False
) -> list[tuple[IPAddress, PodListing]]:
    """The (address, listing) pairs of one pod (a raw JSON dict) for the wanted addresses
    (as Go compares them: see go_address). A dead pod lists nothing unless `dead_too`."""
    if not isinstance(pod, dict):
        return []
    metadata = pod.get("metadata")
    status = pod.get("status")
    if not isinstance(metadata, dict):
        return []
    if not dead_too and isinstance(status, dict) and status.get("phase") in DEAD_PHASES:
        return []
    annotations = metadata.get("annotations")
    if not isinstance(annotations, dict):
        return []
    raws: list[str] = [
        raw
        for key in (NETWORK_STATUS_ANNOTATION, LEGACY_NETWORK_STATUS_ANNOTATION)
        if isinstance(raw := annotations.get(key), str)
    ]
    if not raws:
        return []
    wanted = {go_address(ip) for ip in wanted}
    namespace = str(metadata.get("namespace") or "")
    name = str(metadata.get("name") or "")
    uid = str(metadata.get("uid") or "")
    found: list[tuple[IPAddress, PodListing]] = []
    entries, problems = pod_network_status(annotations)
    for entry in entries:
        for value in entry.listed:
            for ip, written, readable in _entry_listings(value, wanted):
                listing = PodListing(
                    namespace,
                    name,
                    uid,
                    entry.interface,
                    entry.name,
                    entry.nad_ref,
                    written=written,
                    readable=readable,
                )
                found.append((ip, listing))
    if problems:
        listed = {ip for ip, _ in found}
        for raw in raws:
            for ip, token in sorted(_scan_text(raw, wanted).items()):
                if ip in listed:
                    continue
                written = "" if token == str(ip) else token
                found.append(
                    (
                        ip,
                        PodListing(
                            namespace,
                            name,
                            uid,
                            parsed=False,
                            written=written,
                            readable=go_listed_ip(token) is not None,
                        ),
                    )
                )
                listed.add(ip)
    return found


def _odd_ipv4(raw: str) -> bool:
    """Whether `raw` may spell an IPv4 address other than as Go prints it: a mapped IPv6
    form (its ffff group), a hex part (0x), or a dotted part with a leading zero. A scan by
    hand: one regex with look-behinds cost ~15 us an annotation, this ~2 us."""
    low = raw.lower()
    if "ffff" in low or "0x" in low:
        return True
    for match in _ZERO_DIGIT.finditer(low):
        start, end = match.span()
        before = low[start - 1] if start else ""
        if before == ".":
            return True  # a later part: 10.088.0.1
        if not before.isalnum():  # a first part: 010.88.0.1
            while end < len(low) and low[end].isdigit():
                end += 1
            if end < len(low) and low[end] == ".":
                return True
    return False


def _could_list(raw: object, needles: tuple[str, ...] | None) -> bool:
    """A cheap pre-filter: False only when the annotation cannot mention a wanted address.
    An IPv4 address is either written as Go prints it (padded, with a /prefix or not: the
    needle is in the text) or spelled oddly (mapped, leading zeros, hex: _odd_ipv4 finds
    those); IPv6 has many spellings, so with an IPv6 address wanted every annotation is
    parsed."""
    if needles is None:
        return True
    return isinstance(raw, str) and (any(n in raw for n in needles) or _odd_ipv4(raw))


def holder_index(
    api: client.ApiClient, wanted: Iterable[IPAddress], *, page_size: int = 500
) -> HolderIndex:
    """One consistent paged list of every pod, indexed by the wanted addresses."""
    wanted_set = {go_address(IPAddress(ip)) for ip in wanted}
    needles = (
        tuple(str(ip) for ip in wanted_set) if all(ip.version == 4 for ip in wanted_set) else None
    )
    started = time.monotonic()  # a paged list is one snapshot, taken when it starts
    listing = Listing(api, PODS, page_size=page_size)
    index: dict[IPAddress, list[PodListing]] = {}
    pods = 0
    for page in listing.pages():
        if page.restarted:  # an expired continue token: only a list from one snapshot counts
            index.clear()
            pods = 0
        for pod in page.items:
            pods += 1
            annotations = ((pod.get("metadata") or {}) if isinstance(pod, dict) else {}).get(
                "annotations"
            ) or {}
            if not isinstance(annotations, dict) or not (
                _could_list(annotations.get(NETWORK_STATUS_ANNOTATION), needles)
                or _could_list(annotations.get(LEGACY_NETWORK_STATUS_ANNOTATION), needles)
            ):
                continue
            for ip, pod_listing in pod_listings(pod, wanted_set):
                index.setdefault(ip, []).append(pod_listing)
    return HolderIndex(listings=index, read_at=started, pods=pods, requests=listing.requests)
