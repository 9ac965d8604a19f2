"""NetworkAttachmentDefinition ``spec.config`` parsing.

Pure module (no Django, no kubernetes client). ``spec.config`` is a JSON string holding
either one CNI config or a conflist (``plugins``). It may be empty (the config then lives
on the nodes' disks, which Multus reads by the NAD's name) or invalid JSON (people paste
configs with ``#`` comments or unquoted values): we keep the text and say what is wrong
and where, and never raise.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["KNOWN_PLUGIN_TYPES", "CNIConfig", "parse_cni_config"]

# Main (interface) plugins, chained meta plugins and IPAM plugins seen in NADs.
KNOWN_PLUGIN_TYPES: frozenset[str] = frozenset(
    {
        "macvlan",
        "ipvlan",
        "bridge",
        "host-device",
        "sriov",
        "ib-sriov",
        "ptp",
        "vlan",
        "tap",
        "loopback",
        "dummy",
        "flannel",
        "calico",
        "cilium-cni",
        "ovn-k8s-cni-overlay",
        "ovs",
        "userspace",
        "bond",
        "vrf",
        "win-bridge",
        "win-overlay",
        "tuning",
        "sbr",
        "portmap",
        "bandwidth",
        "firewall",
        "route-override",
        "static",
        "host-local",
        "whereabouts",
        "dhcp",
        "multus",
        "multus-shim",
        "macvtap",
        "ipoib",
        "antrea",
        "aws-cni",
        "calico-ipam",
        "azure-vnet",
        "weave-net",
        "kube-ovn",
    }
)


@dataclass(frozen=True)
class CNIConfig:
    raw: str
    config: dict | None
    on_node: bool
    is_conflist: bool
    cni_version: str
    name: str
    plugins: tuple[dict, ...]
    cni_type: str
    master: str
    mode: str
    ipam: dict | None
    ipam_type: str
    problems: tuple[str, ...]

    @property
    def is_whereabouts(self) -> bool:
        return self.ipam_type == "whereabouts"


def _empty(raw: str, *, on_node: bool, problems: tuple[str, ...] = ()) -> CNIConfig:
    return CNIConfig(
        raw=raw,
        config=None,
        on_node=on_node,
        is_conflist=False,
        cni_version="",
        name="",
        plugins=(),
        cni_type="",
        master="",
        mode="",
        ipam=None,
        ipam_type="",
        problems=problems,
    )


_UNQUOTED_VALUE = re.compile(r":\s*[A-Za-z_][\w.\-/]*\s*[,}\]\n]")
_UNQUOTED_BARE = re.compile(r":\s*[A-Za-z_][\w.\-/]*")


def _json_error_message(raw: str, err: json.JSONDecodeError) -> str:
    message = f"config is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
    lines = raw.splitlines() or [raw]
    line = lines[err.lineno - 1] if 0 < err.lineno <= len(lines) else ""
    stripped = line.lstrip()
    if stripped.startswith(("#", "//")) or "#" in raw[err.pos : err.pos + 1]:
        return message + " (a '#' or '//' comment? JSON does not allow comments)"
    tail = raw[max(0, err.pos - 1) : err.pos + 80]
    if _UNQUOTED_BARE.match(raw, max(0, err.pos - 2)) or re.match(r"\s*[A-Za-z_]", raw[err.pos :]):
        word = re.match(r"\s*([^\s,}\]]*)", raw[err.pos :])
        token = word.group(1) if word else tail
        if token not in ("true", "false", "null"):
            return message + f" (unquoted value {token!r}? JSON strings need double quotes)"
    if "#" in line:
        return message + " (a '#' comment? JSON does not allow comments)"
    return message


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def parse_cni_config(raw: str) -> CNIConfig:
    """Parse a NAD ``spec.config``. Never raises."""
    if raw is None:
        return _empty("", on_node=True)
    if not isinstance(raw, str):
        return _empty(str(raw), on_node=False, problems=("config is not a string",))
    if not raw.strip():
        return _empty(raw, on_node=True)
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as err:
        return _empty(raw, on_node=False, problems=(_json_error_message(raw, err),))
    except (ValueError, RecursionError) as err:
        return _empty(raw, on_node=False, problems=(f"config is not valid JSON: {err}",))
    if not isinstance(parsed, dict):
        return _empty(raw, on_node=False, problems=("config is valid JSON but not an object",))

    problems: list[str] = []
    is_conflist = "plugins" in parsed
    plugins: list[dict] = []
    if is_conflist:
        raw_plugins = parsed.get("plugins")
        if not isinstance(raw_plugins, list):
            problems.append("plugins is not a list")
        else:
            for i, plugin in enumerate(raw_plugins):
                if isinstance(plugin, dict):
                    plugins.append(plugin)
                else:
                    problems.append(f"plugins[{i}] is not a JSON object and is ignored")
            if not raw_plugins:
                problems.append("plugins is empty: a conflist needs at least one plugin")
    else:
        plugins.append(parsed)

    cni_version = _text(parsed.get("cniVersion"))
    if "cniVersion" in parsed and not isinstance(parsed.get("cniVersion"), str):
        problems.append("cniVersion is not a string")
    name = _text(parsed.get("name"))

    for i, plugin in enumerate(plugins):
        where = f"plugins[{i}]" if is_conflist else "config"
        ptype = plugin.get("type")
        if ptype is None or ptype == "":
            problems.append(f"{where} has no type")
        elif not isinstance(ptype, str):
            problems.append(f"{where} type {ptype!r} is not a string")
        elif ptype not in KNOWN_PLUGIN_TYPES:
            problems.append(f"{where} has unknown plugin type '{ptype}'")
        if "resourceName" in plugin:
            problems.append(
                f"{where} sets resourceName in the config; it belongs in the NAD annotation "
                "k8s.v1.cni.cncf.io/resourceName"
            )

    # whereabouts (and Multus' IPAM view) read the IPAM section from plugins[0] only.
    main = plugins[0] if plugins else {}
    cni_type = _text(main.get("type"))
    ipam_value = main.get("ipam")
    ipam: dict | None = None
    ipam_type = ""
    if ipam_value is not None:
        if isinstance(ipam_value, dict):
            ipam = ipam_value
            ipam_type = _text(ipam_value.get("type"))
            if not ipam_type:
                problems.append("ipam has no type")
            elif ipam_type not in KNOWN_PLUGIN_TYPES:
                problems.append(f"ipam has unknown plugin type '{ipam_type}'")
        else:
            problems.append("ipam is not a JSON object")
    if is_conflist:
        for i, plugin in enumerate(plugins[1:], start=1):
            extra = plugin.get("ipam")
            if isinstance(extra, dict) and extra.get("type") == "whereabouts":
                problems.append(
                    f"plugins[{i}] has whereabouts IPAM; whereabouts' controllers only read "
                    "IPAM from plugins[0]"
                )

    return CNIConfig(
        raw=raw,
        config=parsed,
        on_node=False,
        is_conflist=is_conflist,
        cni_version=cni_version,
        name=name,
        plugins=tuple(plugins),
        cni_type=cni_type,
        master=_text(main.get("master")),
        mode=_text(main.get("mode")),
        ipam=ipam,
        ipam_type=ipam_type,
        problems=tuple(problems),
    )
