"""Kubernetes Events from Multus and whereabouts to rows (only the reasons we read)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, NamedTuple

from ippam.ipparse import ip_key
from ippam.sync.records.common import EVENT_REASONS, _common, _dict, _meta, timestamp


class EventRow(NamedTuple):
    uid: str
    namespace: str
    name: str
    pod_namespace: str
    pod_name: str
    pod_uid: str
    reason: str
    type: str
    message: str
    count: int  # type: ignore[assignment]  # the Event's count; shadows tuple.count
    first_seen: datetime | None
    last_seen: datetime | None
    interface: str
    ip: str | None


class EventRecord(NamedTuple):
    row: EventRow
    nad: tuple[str, str] | None  # (namespace, name) named in the message
    range: str  # a CIDR named in the message ("range: 10.0.0.0/29"), if any


# Multus: "Add net1 [10.0.0.5/24] from ns/nad" (several IPs are space separated).
_ADDED = re.compile(r"Add (?P<ifname>\S+) \[(?P<ips>[^\]]*)\] from (?P<ns>[^/\s]+)/(?P<nad>\S+)")
# Multus failures name the attachment as "[namespace/pod/uid:network]" and the delegate
# as `error adding container to network "name"`.
_FAILED_NAD = re.compile(r"\[(?P<ns>[^/\s\]]+)/[^/\s\]]+/[^:\s\]]*:(?P<nad>[^\]\s]+)\]")
_FAILED_NETWORK = re.compile(r'(?:adding|add) container to network "(?P<nad>[^"]+)"')
_RANGE = re.compile(r"range:?\s*(?P<cidr>[0-9a-fA-F.:]+/\d{1,3})")
_ANY_IP = re.compile(
    r"(?<![\w.:])(\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7})(?:/\d{1,3})?"
)


def event_record(obj: dict[str, Any], *, not_before: datetime | None = None) -> EventRecord | None:
    """A Multus/whereabouts event about a pod, or None for any other event or one last seen
    before `not_before` (the retention window: a watch's initial ADDED events and a full
    list both carry the whole history the API server still keeps)."""
    reason = str(obj.get("reason") or "")
    involved = _dict(obj.get("involvedObject"))
    if reason not in EVENT_REASONS or (involved.get("kind") not in (None, "Pod")):
        return None
    name, uid, _rv, created = _common(obj)
    meta = _meta(obj)
    message = str(obj.get("message") or obj.get("note") or "")
    series = _dict(obj.get("series"))
    first = timestamp(obj.get("firstTimestamp")) or timestamp(obj.get("eventTime")) or created
    last = (
        timestamp(obj.get("lastTimestamp"))
        or timestamp(series.get("lastObservedTime"))
        or timestamp(obj.get("eventTime"))
        or first
    )
    count = obj.get("count") or series.get("count") or 1
    interface = ""
    ip = None
    nad: tuple[str, str] | None = None
    cidr = ""
    pod_namespace = str(involved.get("namespace") or meta.get("namespace") or "")
    added = _ADDED.search(message)
    if added:
        interface = added["ifname"][:32]
        nad = (added["ns"], added["nad"])
        for text in added["ips"].split():
            ip = ip_key(text)
            if ip is not None:
                break
    else:
        failed = _FAILED_NAD.search(message)
        if failed:
            nad = (failed["ns"], failed["nad"])
        else:
            network = _FAILED_NETWORK.search(message)
            if network and network["nad"] != "multus-cni-network":
                nad = (pod_namespace, network["nad"])
        found = _RANGE.search(message)
        if found:
            cidr = found["cidr"]
        if reason.startswith("IPAddressGarbage"):
            for match in _ANY_IP.finditer(message):
                ip = ip_key(match.group(0))
                if ip is not None:
                    break
    row = EventRow(
        uid=uid or f"{meta.get('namespace')}/{name}",
        namespace=str(meta.get("namespace") or "")[:63],
        name=name[:253],
        pod_namespace=pod_namespace[:63],
        pod_name=str(involved.get("name") or "")[:253],
        pod_uid=str(involved.get("uid") or "")[:64],
        reason=reason,
        type=str(obj.get("type") or "")[:16],
        message=message,
        count=count if isinstance(count, int) and count > 0 else 1,
        first_seen=first,
        last_seen=last,
        interface=interface,
        ip=ip,
    )
    if not_before is not None and last is not None and last < not_before:
        return None
    return EventRecord(row, nad, cidr)
