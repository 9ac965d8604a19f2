"""Node objects to rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from ippam.sync.records.common import _common, _dict, _kind, _list, _meta, dumps


class NodeRow(NamedTuple):
    name: str
    uid: str
    resource_version: str
    created_at: datetime | None
    labels: str
    ready: bool
    addresses: str
    problems: str = "[]"


def _field_problems(obj: dict[str, Any], where: str, expected: dict[str, type]) -> list[str]:
    """Problems for fields of `obj` present with another JSON type than `expected`."""
    return [
        f"{where}.{key} is {_kind(obj[key])}, not {_kind(kind())}; ignored"
        for key, kind in expected.items()
        if obj.get(key) is not None and not isinstance(obj[key], kind)
    ]


def node_record(obj: dict[str, Any]) -> NodeRow:
    name, uid, rv, created = _common(obj)
    problems = _field_problems(obj, "node", {"metadata": dict, "status": dict})
    problems += _field_problems(_meta(obj), "metadata", {"labels": dict})
    status = _dict(obj.get("status"))
    problems += _field_problems(status, "status", {"conditions": list, "addresses": list})
    conditions = _list(status.get("conditions"))
    ready = any(
        isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in conditions
    )
    addresses = []
    for i, a in enumerate(_list(status.get("addresses"))):
        if not isinstance(a, dict) or not isinstance(a.get("address"), str):
            problems.append(f"status.addresses[{i}] is not an {{type, address}} object; ignored")
            continue
        addresses.append({"type": str(a.get("type") or ""), "address": a["address"]})
    labels = {str(k): str(v) for k, v in _dict(_meta(obj).get("labels")).items()}
    return NodeRow(name, uid, rv, created, dumps(labels), ready, dumps(addresses), dumps(problems))
