"""Multus pod annotations: ``network-status`` (observed) and ``networks`` (requested).

Pure module (no Django, no kubernetes client). Formats follow multus-cni's
``network-attachment-definition-client`` types (``NetworkStatus``, ``NetworkSelectionElement``).
Parsers never raise: bad entries are skipped and reported in plain words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from netaddr import IPAddress

from ippam.ipparse import listed_ip

__all__ = [
    "DEFAULT_NETWORK_ANNOTATION",
    "LEGACY_NETWORK_STATUS_ANNOTATION",
    "NETWORKS_ANNOTATION",
    "NETWORK_STATUS_ANNOTATION",
    "NODE_SELECTOR_ANNOTATION",
    "RESOURCE_NAME_ANNOTATION",
    "NetworkSelection",
    "NetworkStatusEntry",
    "parse_network_status",
    "parse_networks",
    "pod_network_status",
]

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# The annotation names Multus and its companions read and write: the only copy in the
# product (simcluster, not the product, keeps its own).
# Pod: the attachments asked for (Multus reads it).
NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
# Pod: the attachments made (Multus writes it); "networks-status" before Multus v3.7.
NETWORK_STATUS_ANNOTATION = "k8s.v1.cni.cncf.io/network-status"
LEGACY_NETWORK_STATUS_ANNOTATION = "k8s.v1.cni.cncf.io/networks-status"
# Pod: a NAD that replaces the cluster network (Multus; KubeVirt sets it for a VM's
# default multus network).
DEFAULT_NETWORK_ANNOTATION = "v1.multus-cni.io/default-network"
# NAD: the SR-IOV device pool (device plugin) and the node selector honoured by
# network-resources-injector.
RESOURCE_NAME_ANNOTATION = "k8s.v1.cni.cncf.io/resourceName"
NODE_SELECTOR_ANNOTATION = "k8s.v1.cni.cncf.io/nodeSelector"


@dataclass(frozen=True)
class NetworkStatusEntry:
    name: str
    interface: str = ""
    ips: tuple[IPAddress, ...] = ()
    mac: str = ""
    default: bool = False
    dns: dict = field(default_factory=dict, hash=False)
    gateway: tuple[str, ...] = ()
    mtu: int | None = None
    device_info: dict | None = field(default=None, hash=False)
    # The `ips` strings as written, readable or not: reclamation reads them as Go does
    # (ippam.kube.holders), where a listing `ips` above drops can still hold an address.
    listed: tuple[str, ...] = ()

    @property
    def nad_ref(self) -> tuple[str, str] | None:
        """(namespace, name) of the NAD when ``name`` is ``ns/nad``; else None."""
        namespace, sep, nad = self.name.partition("/")
        if not sep or not namespace or not nad or "/" in nad:
            return None
        return namespace, nad


def _load_json(raw: str, what: str) -> tuple[Any, str | None]:
    try:
        return json.loads(raw), None
    except json.JSONDecodeError as err:
        return None, (
            f"{what} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
        )
    except (ValueError, RecursionError) as err:
        return None, f"{what} is not valid JSON: {err}"


def parse_network_status(raw: str) -> tuple[list[NetworkStatusEntry], list[str]]:
    """Parse a ``network-status`` annotation (a JSON array). Never raises."""
    entries: list[NetworkStatusEntry] = []
    problems: list[str] = []
    if not isinstance(raw, str) or not raw.strip():
        return entries, problems
    data, error = _load_json(raw, "network-status")
    if error:
        return entries, [error]
    # Multus writes a list (even of one) and reads it back into a []NetworkStatus; an
    # object fails that decode, so no interface is taken from it.
    if isinstance(data, dict):
        return entries, [
            "network-status is a JSON object, not a list of objects; no interface is read from it"
        ]
    if not isinstance(data, list):
        return entries, ["network-status is not a JSON array"]
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            problems.append(f"network-status entry {i} is not a JSON object and is skipped")
            continue
        name = item.get("name", "")
        if not isinstance(name, str):
            problems.append(f"network-status entry {i} has a non-string name and is skipped")
            continue
        label = f"network-status entry {i} ({name or 'unnamed'})"
        ips: list[IPAddress] = []
        raw_ips = item.get("ips")
        if raw_ips is None:
            raw_ips = []
        if isinstance(raw_ips, str):
            # Kept: the pod may well hold it, and an address a live pod lists must never
            # look free (reclamation checks these).
            problems.append(f"{label}: ips is a string, not a list; read as one address")
            raw_ips = [raw_ips]
        if not isinstance(raw_ips, list):
            problems.append(f"{label}: ips is not a list; no address is read from it")
            raw_ips = []
        for value in raw_ips:
            ip = listed_ip(value)
            if ip is None:
                problems.append(f"{label}: {value!r} is not an IP address and is ignored")
            else:
                ips.append(ip)
        gateway_raw = item.get("gateway") or []
        if isinstance(gateway_raw, str):
            gateway_raw = [gateway_raw]
        # Multus writes a nil Go net.IP as "<nil>"; it means "no gateway".
        gateway = (
            tuple(g for g in gateway_raw if isinstance(g, str) and g != "<nil>")
            if isinstance(gateway_raw, list)
            else ()
        )
        mtu_raw = item.get("mtu")
        mtu = mtu_raw if isinstance(mtu_raw, int) and not isinstance(mtu_raw, bool) else None
        dns = item.get("dns")
        device_info = item.get("device-info")
        interface = item.get("interface", "")
        mac = item.get("mac", "")
        for key, value in (("interface", interface), ("mac", mac)):
            if value is not None and not isinstance(value, str):
                problems.append(f"{label}: {key} is not a string and is ignored")
        entries.append(
            NetworkStatusEntry(
                name=name,
                interface=interface if isinstance(interface, str) else "",
                ips=tuple(ips),
                listed=tuple(v for v in raw_ips if isinstance(v, str)),
                mac=mac if isinstance(mac, str) else "",
                default=item.get("default") is True,
                dns=dns if isinstance(dns, dict) else {},
                gateway=gateway,
                mtu=mtu,
                device_info=device_info if isinstance(device_info, dict) else None,
            )
        )
    return entries, problems


def pod_network_status(
    annotations: Mapping[str, str],
) -> tuple[list[NetworkStatusEntry], list[str]]:
    """network-status of a pod, falling back to the legacy ``networks-status``."""
    if not isinstance(annotations, Mapping):
        return [], []
    raw = annotations.get(NETWORK_STATUS_ANNOTATION)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raw = annotations.get(LEGACY_NETWORK_STATUS_ANNOTATION)
    if raw is None:
        return [], []
    return parse_network_status(raw)


@dataclass(frozen=True)
class NetworkSelection:
    namespace: str
    name: str
    interface: str = ""
    ips: tuple[str, ...] = ()
    mac: str = ""
    default_route: tuple[str, ...] = ()


def _str_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def parse_networks(raw: str, pod_namespace: str) -> tuple[list[NetworkSelection], list[str]]:
    """Parse a ``k8s.v1.cni.cncf.io/networks`` annotation. Never raises.

    Like Multus: JSON when the text contains ``[``, ``{`` or ``"``; otherwise a comma
    list of ``[ns/]name[@ifname]``. The namespace defaults to the pod's.
    """
    selections: list[NetworkSelection] = []
    problems: list[str] = []
    if not isinstance(raw, str) or not raw.strip():
        return selections, problems
    if any(c in raw for c in '[{"'):
        data, error = _load_json(raw, "networks annotation")
        if error:
            return selections, [error]
        if isinstance(data, dict):
            problems.append("networks annotation is a JSON object; Multus expects a list of them")
            data = [data]
        if not isinstance(data, list):
            return selections, ["networks annotation is JSON but not a list of objects"]
        for i, item in enumerate(data):
            if not isinstance(item, dict):
                problems.append(f"networks entry {i} is not a JSON object and is skipped")
                continue
            name = item.get("name")
            if not isinstance(name, str) or not name.strip():
                problems.append(f"networks entry {i} has no name and is skipped")
                continue
            namespace = item.get("namespace")
            if not isinstance(namespace, str) or not namespace:
                namespace = pod_namespace
            interface = item.get("interface") or item.get("interfaceRequest") or ""
            mac = item.get("mac", "")
            selections.append(
                NetworkSelection(
                    namespace=namespace,
                    name=name.strip(),
                    interface=interface if isinstance(interface, str) else "",
                    ips=_str_list(item.get("ips")),
                    mac=mac if isinstance(mac, str) else "",
                    default_route=_str_list(item.get("default-route")),
                )
            )
        return selections, problems
    for i, part in enumerate(raw.split(",")):
        text = part.strip()
        if not text:
            continue
        # Multus parsePodNetworkObjectName: at most one "/" and one "@", DNS-1123 labels.
        ref, at, interface = text.partition("@")
        namespace, sep, name = ref.partition("/")
        if not sep:
            namespace, name = pod_namespace, ref
        namespace, name, interface = namespace.strip(), name.strip(), interface.strip()
        if "/" in name or "@" in interface:
            problems.append(f"networks entry {i} '{text}' is not [namespace/]name[@interface]")
            continue
        bad = [v for v in ((namespace if sep else ""), name) if v and not _DNS1123.match(v)]
        if not name or bad:
            problems.append(
                f"networks entry {i} '{text}' is not [namespace/]name[@interface] with "
                "lower-case DNS-1123 names"
            )
            continue
        if sep and not namespace:
            namespace = pod_namespace
        if len(interface) > 15 or any(c.isspace() for c in interface):
            problems.append(
                f"networks entry {i}: interface name '{interface}' must be at most 15 "
                "characters without spaces"
            )
        selections.append(NetworkSelection(namespace=namespace, name=name, interface=interface))
    return selections, problems
