"""whereabouts NodeSlicePools to rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from netaddr import AddrFormatError, IPNetwork

from ippam.sync.records.common import (
    _common,
    _dict,
    _kind,
    _list,
    _meta,
    _show,
    _text,
    dumps,
)
from ippam.sync.records.nodes import _field_problems
from ippam.sync.records.pools import _capped


class NodeSlicePoolRow(NamedTuple):
    namespace: str
    name: str
    uid: str
    resource_version: str
    created_at: datetime | None
    range: str
    slice_size: str
    allocations: str
    problems: str = "[]"


def nodeslicepool_record(obj: dict[str, Any]) -> NodeSlicePoolRow:
    """A NodeSlicePool; what its CRD would reject (range and sliceSize strings, status
    allocations a list of {nodeName, sliceRange} strings) is a problem on the row."""
    name, uid, rv, created = _common(obj)
    problems = _field_problems(obj, "nodeslicepool", {"spec": dict, "status": dict})
    spec = _dict(obj.get("spec"))
    problems += _field_problems(spec, "spec", {"range": str, "sliceSize": str})
    if not spec.get("range"):
        problems.append("spec.range is missing")
    elif isinstance(spec.get("range"), str):
        try:
            IPNetwork(_text(spec.get("range")))
        except (AddrFormatError, ValueError, TypeError):
            problems.append(f"spec.range {_show(spec.get('range'))} is not a CIDR")
    status = _dict(obj.get("status"))
    problems += _field_problems(status, "status", {"allocations": list})
    allocations = []
    for i, a in enumerate(_list(status.get("allocations"))):
        if not isinstance(a, dict):
            problems.append(f"status.allocations[{i}] is {_kind(a)}, not an object; ignored")
            continue
        wrong = [k for k in ("nodeName", "sliceRange") if not isinstance(a.get(k), str)]
        if wrong:
            problems.append(f"status.allocations[{i}]: {' and '.join(wrong)} not a string; ignored")
            continue
        allocations.append({"nodeName": a["nodeName"], "sliceRange": a["sliceRange"]})
    return NodeSlicePoolRow(
        namespace=str(_meta(obj).get("namespace") or ""),
        name=name,
        uid=uid,
        resource_version=rv,
        created_at=created,
        range=_text(spec.get("range"))[:64],
        slice_size=_text(spec.get("sliceSize"))[:8],
        allocations=dumps(allocations),
        problems=dumps(_capped(problems)),
    )
