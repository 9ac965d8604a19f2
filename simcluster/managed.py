"""metadata.managedFields as the apiserver's field manager keeps them.

Each entry names a manager and operation (`Update` for create/update/patch, `Apply` for
server-side apply) and the set of fields it owns, in the `FieldsV1` trie format: `f:<field>`
for a field, `k:{"name":"x"}` for an item of a list keyed by a merge key, `.` for a map or
keyed item that is itself owned. The identity fields (apiVersion, kind, metadata.name,
namespace, uid, resourceVersion, generation, creationTimestamp, managedFields) are never
owned. On an update the writer takes the fields it changed; a field removed from the
object leaves every set.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

_NOT_OWNED_META = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "managedFields",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    }
)
# Maps (string keys chosen by the user) are owned as a whole ("."), structs are not.
_MAPS = frozenset(
    {
        "labels",
        "annotations",
        "nodeSelector",
        "capacity",
        "allocatable",
        "limits",
        "requests",
        "allocations",
    }
)
# The merge keys of the keyed lists in the objects simcluster serves; other lists are atomic.
_LIST_KEYS = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "volumes": ("name",),
    "env": ("name",),
    "volumeMounts": ("mountPath",),
    "ownerReferences": ("uid",),
    "conditions": ("type",),
    "podIPs": ("ip",),
    "hostIPs": ("ip",),
    "addresses": ("type",),
    "ports": ("containerPort", "protocol"),
}


def _item_key(keys: tuple[str, ...], item: Any) -> str | None:
    if not isinstance(item, dict) or any(k not in item for k in keys):
        return None
    return "k:" + orjson.dumps({k: item[k] for k in keys}).decode()


def fields_v1(obj: dict) -> dict:
    """The FieldsV1 trie of every field set in `obj`."""
    out = {}
    for k, v in obj.items():
        if k in ("apiVersion", "kind"):
            continue
        if k == "metadata" and isinstance(v, dict):
            md = {kk: vv for kk, vv in v.items() if kk not in _NOT_OWNED_META}
            sub = _trie(md, False)
            if sub:
                out["f:metadata"] = sub
            continue
        out["f:" + k] = _node(k, v)
    return out


def _node(key: str, v: Any) -> dict:
    if isinstance(v, dict):
        return _trie(v, key in _MAPS) if v else {}
    if isinstance(v, list) and v and key in _LIST_KEYS:
        keys = _LIST_KEYS[key]
        out: dict = {}
        for item in v:
            ik = _item_key(keys, item)
            if ik is None:  # not keyable after all: owned as one value
                return {}
            out[ik] = {".": {}, **_trie(item, False)}
        return out
    return {}


def _trie(d: dict, is_map: bool) -> dict:
    out: dict = {".": {}} if is_map else {}
    for k, v in d.items():
        node = _node(k, v)
        if is_map and node:  # a map's struct value is owned as a whole too
            node = {".": {}, **node}
        out["f:" + k] = node
    return out


@functools.lru_cache(maxsize=4096)
def _cached(raw: bytes) -> bytes:
    return orjson.dumps(fields_v1(orjson.loads(raw)))


def fields_v1_shared(obj: dict) -> dict:
    """fields_v1 for objects of the same shape over and over (scenario builders): the trie is
    computed once per distinct key structure."""
    return orjson.loads(_cached(orjson.dumps(_shape(obj))))


def _shape(v: Any, key: str = "") -> Any:
    if isinstance(v, dict):
        return {k: _shape(x, k) for k, x in v.items()}
    if isinstance(v, list) and key in _LIST_KEYS:
        keys = _LIST_KEYS[key]
        return [
            {**{k: x[k] for k in keys if k in x}, **{k: _shape(y, k) for k, y in x.items()}}
            if isinstance(x, dict)
            else 0
            for x in v
        ]
    if isinstance(v, list):
        return [0] if v else []
    return 0


def entry(
    manager: str,
    operation: str,
    api_version: str,
    time: str,
    fields: dict,
    subresource: str | None = None,
) -> dict:
    e = {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": time,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }
    if subresource:
        e["subresource"] = subresource
    return e


# ------------------------------------------------------------------ updates


def _flatten(trie: dict, prefix: tuple = (), out: set | None = None) -> set:
    out = set() if out is None else out
    for k, v in trie.items():
        p = (*prefix, k)
        if v:
            if "." in v:
                out.add(p)
            _flatten({kk: vv for kk, vv in v.items() if kk != "."}, p, out)
        elif k != ".":
            out.add(p)
    return out


def _unflatten(paths: set) -> dict:
    """The trie of a set of owned paths: a path that is also the prefix of others was owned
    as a whole and gets its "." first, then its fields in order, as the apiserver writes."""
    parents = {p[:i] for p in paths for i in range(1, len(p))}
    out: dict = {}
    for p in sorted(paths):
        node = out
        for i in range(1, len(p) + 1):
            part = p[i - 1]
            nxt = node.get(part)
            if nxt is None:
                prefix = p[:i]
                nxt = {".": {}} if prefix in paths and prefix in parents else {}
                node[part] = nxt
            node = nxt
    return out


def _owned_view(obj: dict) -> dict:
    """obj as far as fields can be owned (no apiVersion/kind, no identity metadata)."""
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    md = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _NOT_OWNED_META}
    if md:
        out["metadata"] = md
    return out


def _changed(old: Any, new: Any, trie: dict, key: str, p: tuple, out: set) -> None:
    """The owned paths of `trie` (new's) whose values differ between old and new. Equal
    subtrees are skipped whole (the comparison runs in C), so a small change to a big
    object costs little. A map or keyed item counts as changed only when it appears."""
    if old == new:
        return
    if not trie:
        # a map emptied (its members removed) is not a new value of the map
        if p and not (isinstance(old, dict) and isinstance(new, dict)):
            out.add(p)
        return
    if "." in trie and not isinstance(old, dict):
        out.add(p)
    if isinstance(new, dict):
        o = old if isinstance(old, dict) else {}
        for k, sub in trie.items():
            if k != ".":
                _changed(o.get(k[2:]), new.get(k[2:]), sub, k[2:], (*p, k), out)
    elif isinstance(new, list):
        keys = _LIST_KEYS.get(key, ())
        before = {_item_key(keys, x): x for x in old} if isinstance(old, list) else {}
        now = {_item_key(keys, x): x for x in new}
        for k, sub in trie.items():
            _changed(before.get(k), now.get(k), sub, "", (*p, k), out)


def update(
    old: dict | None,
    new: dict,
    manager: str,
    operation: str,
    api_version: str,
    time: str,
    applied: dict | None = None,
    subresource: str | None = None,
) -> list[dict]:
    """The managedFields of `new` after `manager` wrote it over `old` (None: a create).

    `applied`: the server-side apply configuration; the manager then owns exactly its fields.
    """
    entries = [] if old is None else list((old.get("metadata") or {}).get("managedFields") or [])
    trie = fields_v1(new)
    present = _flatten(trie)
    if applied is not None:
        mine = _flatten(fields_v1(applied)) & present
        changed = mine
    elif old is None:
        mine = changed = present
    else:
        changed = set()
        _changed(_owned_view(old), _owned_view(new), trie, "", (), changed)
        mine = changed
    out = []
    found = False
    for e in entries:
        before = _flatten(e.get("fieldsV1") or {})
        owned = before & present
        same = (
            e.get("manager") == manager
            and e.get("operation") == operation
            and e.get("subresource") == subresource
        )
        if same:
            found = True
            owned = mine if applied is not None else (owned | mine)
            out.append(entry(manager, operation, api_version, time, _unflatten(owned), subresource))
            continue
        if operation == "Update" or e.get("operation") == "Update":
            owned -= changed
        if owned == before:  # untouched: kept as it was
            out.append(e)
        elif owned:
            kept = dict(e)
            kept["fieldsV1"] = _unflatten(owned)
            out.append(kept)
    if not found and mine:
        out.append(entry(manager, operation, api_version, time, _unflatten(mine), subresource))
    return out
