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

from ippam.annotations import RESOURCE_NAME_ANNOTATION

__all__ = ["KNOWN_PLUGIN_TYPES", "CNIConfig", "GoObject", "parse_cni_config"]

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


_WORD = re.compile(r"[A-Za-z_$][\w.\-/$]*")


def _json_error_message(raw: str, err: json.JSONDecodeError) -> str:
    """The decoder's complaint with its position, plus the likely cause when we can tell.

    People paste configs with ``#`` comments and unreplaced placeholders (the seeds'
    ``"range": SECONDARY_RANGE_NAME``); naming that cause saves a round trip.
    """
    message = f"config is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
    here = raw[err.pos :]
    lines = raw.splitlines()
    line = lines[err.lineno - 1] if 0 < err.lineno <= len(lines) else ""
    if here.startswith(("#", "//", "/*")):
        return message + " (a comment? JSON does not allow comments; remove it)"
    if here.startswith("'"):
        return message + " (single quotes? JSON strings need double quotes)"
    word = _WORD.match(here)
    if word:
        token = word.group(0)
        if token in ("True", "False", "None"):
            return message + f" ({token!r} is Python; JSON spells it true, false or null)"
        if here[word.end() :].lstrip().startswith(":"):
            return message + f" (unquoted key {token!r}? JSON keys need double quotes)"
        return message + f" (unquoted value {token!r}? JSON strings need double quotes)"
    # A value the decoder started reading as a number, e.g. "range": 10.0.0.0/24.
    start = max(raw.rfind(c, 0, err.pos) for c in ":[,") + 1
    ends = [i for i in (raw.find(c, err.pos) for c in ",}]\n") if i >= 0]
    token = raw[start : min(ends) if ends else len(raw)].strip()
    if token and not re.search(r'[\s"#]', token) and not _is_json(token):
        return message + f" (unquoted value {token!r}? JSON strings need double quotes)"
    if "#" in line:
        return message + " (a '#' comment on this line? JSON does not allow comments)"
    return message


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _go_field(obj: dict, name: str) -> Any:
    """``obj[name]`` as Go's encoding/json finds a struct field's key: ASCII
    case-insensitively, the last matching key winning ("IPAM" fills ``ipam``)."""
    found = None
    for key, value in obj.items():
        if isinstance(key, str) and key.isascii() and key.lower() == name:
            found = value
    return found


class GoObject(dict):
    """A JSON object whose text repeats a key. Python keeps the last value only; Go's
    decoder reads each one in turn, so an earlier value of the wrong type still fails it:
    ``pairs`` keeps every (key, value) in document order."""

    pairs: list[tuple[str, Any]]


def _object(pairs: list[tuple[str, Any]]) -> dict:
    if len({k for k, _ in pairs}) == len(pairs):
        return dict(pairs)
    obj = GoObject(pairs)
    obj.pairs = pairs
    return obj


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _go_strings(value: Any) -> Any:
    """``value`` with each lone surrogate (a "\\ud800" escape without its pair) as U+FFFD,
    as Go's decoder reads it; Python's keeps it, and no UTF-8 writer takes it."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_go_strings(v) for v in value]
    if isinstance(value, dict):
        return _object(
            [(_go_strings(k), _go_strings(v)) for k, v in getattr(value, "pairs", value.items())]
        )
    return value


def _no_constant(name: str) -> Any:
    # Python's json takes NaN and Infinity; Go's decoder (Multus, whereabouts) refuses them.
    raise ValueError(f"{name} is not a JSON value")


def parse_cni_config(raw: str) -> CNIConfig:
    """Parse a NAD ``spec.config``. Never raises."""
    if raw is None:
        return _empty("", on_node=True)
    if not isinstance(raw, str):
        return _empty(str(raw), on_node=False, problems=("config is not a string",))
    if not raw.strip():
        return _empty(raw, on_node=True)
    try:
        parsed = json.loads(raw, parse_constant=_no_constant, object_pairs_hook=_object)
        if "\\u" in raw:  # only an escape can make a lone surrogate
            parsed = _go_strings(parsed)
    except json.JSONDecodeError as err:
        return _empty(raw, on_node=False, problems=(_json_error_message(raw, err),))
    except RecursionError:
        return _empty(raw, on_node=False, problems=("config is not valid JSON: nested too deeply",))
    except ValueError as err:
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
                f"{RESOURCE_NAME_ANNOTATION}"
            )

    # whereabouts (and Multus' IPAM view) read the IPAM section from plugins[0] only, into
    # Go structs: keys match case-insensitively.
    main = plugins[0] if plugins else {}
    cni_type = _text(main.get("type"))
    ipam_value = _go_field(main, "ipam")
    ipam: dict | None = None
    ipam_type = ""
    if ipam_value is not None:
        if isinstance(ipam_value, dict):
            ipam = ipam_value
            ipam_type = _text(_go_field(ipam_value, "type"))
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
