"""The object store: compact, thread-safe, with an etcd-like revision counter and event log.

Objects are kept as pre-serialized JSON bytes (orjson) plus a small index (labels and the
selectable fields), so 150,000 pods fit in a few hundred MB and a list is a byte join.
Every mutation bumps one cluster-wide resourceVersion, appends to a bounded event log and
notifies the open watches (which may live on another thread's event loop).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import itertools
import re
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping

import orjson

from . import admission, managed
from .resources import BY_PLURAL, CUSTOM, TYPES, RType, crd_object, crd_version


class ApiError(Exception):
    """A Kubernetes Status failure; the HTTP layer renders it as the real body."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(t: RType, name: str) -> ApiError:
    details = {"name": name, "kind": t.plural}
    if t.group:
        details["group"] = t.group
    return ApiError(404, "NotFound", f'{t.qualified} "{name}" not found', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(t: RType, name: str, causes: list[dict], summary: str | None = None) -> ApiError:
    # field.ErrorList's aggregate: one error as is, several in brackets
    msg = summary or ", ".join(f"{c['field']}: {c['message']}" for c in causes)
    if summary is None and len(causes) > 1:
        msg = f"[{msg}]"
    kind_q = f"{t.kind}.{t.group}" if t.group else t.kind
    details = {"name": name, "kind": t.kind, "causes": causes}
    if t.group:
        details["group"] = t.group
    return ApiError(422, "Invalid", f'{kind_q} "{name}" is invalid: {msg}', details)


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


# who wrote an object when a caller names no field manager (in-process writes, seeding)
DEFAULT_MANAGER = "simcluster"


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- selectors


class LabelSelector:
    """=, ==, !=, in, notin, exists, !exists, comma-joined (AND)."""

    _TOKEN = re.compile(r"\s*(\(|\)|,|!=|==|=|!|[^\s(),!=]+)")

    def __init__(self, text: str | None):
        self.reqs: list[tuple[str, str, tuple[str, ...]]] = []
        if text:
            self._parse(text)

    def _parse(self, text: str) -> None:
        toks = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = self._TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise bad_request(f"unable to parse requirement: invalid label selector {text!r}")
            toks.append(m.group(1))
            pos = m.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
        i = 0

        def err() -> ApiError:
            return bad_request(f"unable to parse requirement: found invalid selector {text!r}")

        while i < len(toks):
            if toks[i] == "!":
                if i + 1 >= len(toks):
                    raise err()
                self.reqs.append((toks[i + 1], "!exists", ()))
                i += 2
            else:
                key = toks[i]
                if key in "(),=":
                    raise err()
                i += 1
                if i >= len(toks) or toks[i] == ",":
                    self.reqs.append((key, "exists", ()))
                elif toks[i] in ("=", "==", "!="):
                    op = "!=" if toks[i] == "!=" else "="
                    i += 1
                    val = ""
                    if i < len(toks) and toks[i] not in (",", "(", ")"):
                        val = toks[i]
                        i += 1
                    self.reqs.append((key, op, (val,)))
                elif toks[i] in ("in", "notin"):
                    op = toks[i]
                    i += 1
                    if i >= len(toks) or toks[i] != "(":
                        raise err()
                    i += 1
                    vals = []
                    while i < len(toks) and toks[i] != ")":
                        if toks[i] != ",":
                            vals.append(toks[i])
                        i += 1
                    if i >= len(toks):
                        raise err()
                    i += 1
                    self.reqs.append((key, op, tuple(vals)))
                else:
                    raise err()
            if i < len(toks):
                if toks[i] != ",":
                    raise err()
                i += 1

    def __bool__(self) -> bool:
        return bool(self.reqs)

    def matches(self, labels: dict | None) -> bool:
        labels = labels or {}
        for key, op, vals in self.reqs:
            has = key in labels
            v = labels.get(key)
            if op == "exists" and not has:
                return False
            if op == "!exists" and has:
                return False
            if op == "=" and v != vals[0]:
                return False
            if op == "!=" and has and v == vals[0]:
                return False
            if op == "in" and (not has or v not in vals):
                return False
            if op == "notin" and has and v in vals:
                return False
        return True


class FieldSelector:
    def __init__(self, text: str | None, t: RType):
        self.reqs: list[tuple[str, bool, str]] = []
        if not text:
            return
        allowed = {"metadata.name", "metadata.namespace"}
        probe = t.field_values({}) or {}
        allowed |= set(probe)
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            m = re.match(r"^([^=!]+?)\s*(==|!=|=)\s*(.*)$", part)
            if not m:
                raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
            key, op, val = m.group(1).strip(), m.group(2), m.group(3).strip()
            if key not in allowed:
                raise bad_request(
                    f'"{key}" is not a known field selector: only "metadata.name", "metadata.namespace"'
                )
            self.reqs.append((key, op == "!=", val))

    def __bool__(self) -> bool:
        return bool(self.reqs)

    def matches(self, e: Entry) -> bool:
        for key, neg, val in self.reqs:
            if key == "metadata.name":
                v = e.name
            elif key == "metadata.namespace":
                v = e.ns or ""
            else:
                v = (e.fields or {}).get(key, "")
            if (v == val) == neg:
                return False
        return True


# ---------------------------------------------------------------- patches


def _ptr(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc, parts):
    for p in parts:
        if isinstance(doc, list):
            doc = doc[int(p)]
        elif isinstance(doc, dict):
            doc = doc[p]
        else:
            raise KeyError(p)
    return doc


class PatchTestFailed(Exception):
    pass


def json_patch(doc: dict, ops: list, copy_doc: bool = True) -> dict:
    """RFC 6902 on doc (on a copy unless copy_doc is False: a freshly decoded doc)."""
    if copy_doc:
        doc = copy.deepcopy(doc)
    if not isinstance(ops, list):
        raise ValueError("a JSON patch must be a list of operations")
    for op in ops:
        kind = op.get("op")
        parts = _ptr(op.get("path", ""))
        if kind == "test":
            try:
                cur = _walk(doc, parts)
            except (KeyError, IndexError, ValueError) as exc:
                raise PatchTestFailed(f"testing value {op.get('path')} failed: missing") from exc
            if cur != op.get("value"):
                raise PatchTestFailed(f"testing value {op.get('path')} failed: test failed")
            continue
        if kind in ("move", "copy"):
            src = _ptr(op["from"])
            value = copy.deepcopy(_walk(doc, src))
            if kind == "move":
                parent = _walk(doc, src[:-1])
                if isinstance(parent, list):
                    parent.pop(int(src[-1]))
                else:
                    del parent[src[-1]]
            kind = "add"
        else:
            value = op.get("value")
        if not parts:
            if kind in ("add", "replace"):
                doc = value
                continue
            raise ValueError("cannot remove the root")
        parent = _walk(doc, parts[:-1])
        last = parts[-1]
        if isinstance(parent, list):
            idx = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(idx, value)
            elif kind == "remove":
                parent.pop(idx)
            elif kind == "replace":
                parent[idx] = value
            else:
                raise ValueError(f"unknown op {kind!r}")
        elif isinstance(parent, dict):
            if kind == "add":
                parent[last] = value
            elif kind == "remove":
                del parent[last]
            elif kind == "replace":
                if last not in parent:
                    raise KeyError(last)
                parent[last] = value
            else:
                raise ValueError(f"unknown op {kind!r}")
        else:
            raise KeyError(last)
    return doc


def merge_patch(doc, patch, strategic: bool = False):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(doc, dict):
        doc = {}
    out = dict(doc)
    for k, v in patch.items():
        if strategic and k.startswith("$"):
            continue
        if v is None:
            out.pop(k, None)
        elif strategic and (key := _merge_key(v, out.get(k))):
            out[k] = _merge_keyed(out[k], v, patch.get(f"$setElementOrder/{k}"), key)
        else:
            out[k] = merge_patch(out.get(k), v, strategic)
    return out


def _merge_key(patch, old) -> str | None:
    """The strategic-merge key of a list: `name` (containers, volumes, env) or `type`
    (conditions, node addresses); None for lists that are replaced wholesale."""
    if not (isinstance(patch, list) and patch and isinstance(old, list) and old):
        return None
    for key in ("name", "type"):
        if all(isinstance(x, dict) and key in x for x in patch + old):
            return key
    return None


def _merge_keyed(old: list, patch: list, order: list | None, key: str) -> list:
    by_key = {x[key]: x for x in old}
    for item in patch:
        if item.get("$patch") == "delete":
            by_key.pop(item[key], None)
        elif item[key] in by_key:
            by_key[item[key]] = merge_patch(by_key[item[key]], item, True)
        else:
            by_key[item[key]] = merge_patch({}, item, True)
    keys = [x.get(key) for x in order] if order else [x[key] for x in old] + [x[key] for x in patch]
    seen, out = set(), []
    for n in keys + list(by_key):
        if n in by_key and n not in seen:
            seen.add(n)
            out.append(by_key[n])
    return out


# ---------------------------------------------------------------- the store


class Entry:
    """One stored object. `raw` is its list-item JSON: a built-in kind's without apiVersion
    and kind (the apiserver leaves them empty in core lists), whose `head` puts them back
    for a GET or a watch event (`full()`)."""

    __slots__ = ("ns", "name", "rv", "raw", "labels", "fields", "head")

    def __init__(self, ns, name, rv, raw, labels, fields, head: bytes = b""):
        self.ns = ns
        self.name = name
        self.rv = rv
        self.raw = raw
        self.labels = labels
        self.fields = fields
        self.head = head

    def full(self) -> bytes:
        return self.head + self.raw[1:] if self.head else self.raw

    def obj(self) -> dict:
        return orjson.loads(self.full())


class Watcher:
    def __init__(self, t: RType, ns, labels: LabelSelector, fields: FieldSelector, push):
        self.t = t
        self.ns = ns
        self.labels = labels
        self.fields = fields
        self.push = push  # thread-safe callable(event | None)

    def wants(self, plural: str, e: Entry) -> bool:
        if plural != self.t.plural:
            return False
        if self.ns is not None and e.ns != self.ns:
            return False
        if self.labels and not self.labels.matches(e.labels):
            return False
        return not (self.fields and not self.fields.matches(e))

    def translate(self, etype: str, plural: str, e: Entry, old: Entry | None) -> str | None:
        """The event this watcher sees: like the apiserver's filtered watch, an object that
        starts matching the selectors is ADDED and one that stops matching is DELETED."""
        now = self.wants(plural, e)
        if etype != "MODIFIED" or old is None or not (self.labels or self.fields):
            return etype if now else None
        before = self.wants(plural, old)
        if now and before:
            return "MODIFIED"
        if now:
            return "ADDED"
        if before:
            return "DELETED"
        return None


# what a GET or a watch event puts back in front of a built-in kind's stored item
_HEADS = {
    t.plural: b'{"kind":%s,"apiVersion":%s,' % (orjson.dumps(t.kind), orjson.dumps(t.api_version))
    for t in TYPES
    if not t.group
}


def _key(ns, name):
    return (ns or "", name)


class Store:
    def __init__(self, log_size: int = 100_000, snapshot_limit: int = 64):
        self.lock = threading.RLock()
        self.rv = 100
        self.data: dict[str, dict] = {t.plural: {} for t in TYPES}
        self.log: deque = deque(maxlen=log_size)
        self.floor = self.rv  # every event with rv > floor is in the log
        self.watchers: set[Watcher] = set()
        # Notified whenever a watch opens or closes: tests wait on `wait_for_watches`
        # instead of sleeping until their watcher has (re)connected.
        self.watchers_changed = threading.Condition(self.lock)
        self.snapshots: OrderedDict = OrderedDict()
        self.snapshot_limit = snapshot_limit
        self._snap_ids = itertools.count(1)
        self._schemas: dict[str, tuple[int, dict]] = {}
        self.bootstrap()

    # -- plumbing

    def rtype(self, plural: str) -> RType:
        t = BY_PLURAL.get(plural)
        if t is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if t.custom and not self.served(t):
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        return t

    def served(self, t: RType) -> bool:
        return not t.custom or _key(None, t.crd_name) in self.data["customresourcedefinitions"]

    def _entry(self, t: RType, obj: dict, rv: int) -> Entry:
        md = obj["metadata"]
        md["resourceVersion"] = str(rv)
        head = b""
        body = obj
        if not t.group:
            body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
            head = _HEADS[t.plural]
        return Entry(
            md.get("namespace") if t.namespaced else None,
            md["name"],
            rv,
            # orjson over-allocates its output buffer (~16 KB); copy to a tight bytes object
            memoryview(orjson.dumps(body)).tobytes(),
            md.get("labels") or None,
            t.field_values(obj),
            head,
        )

    def _emit(self, etype: str, plural: str, e: Entry, old: Entry | None = None) -> None:
        if len(self.log) == self.log.maxlen:
            self.floor = self.log[0][0]
        if old is not None:  # keep only what selector matching needs, not the old bytes
            old = Entry(old.ns, old.name, old.rv, b"", old.labels, old.fields)
        self.log.append((e.rv, etype, plural, e, old))
        for w in list(self.watchers):
            typ = w.translate(etype, plural, e, old)
            if typ:
                w.push((typ, e))

    def _next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def _uid(self) -> str:
        return str(uuid.uuid4())

    # -- lifecycle

    def bootstrap(self) -> None:
        """CRDs, default and kube-system: the `empty` scenario."""
        old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self.lock:
            for t in CUSTOM:
                crd = crd_object(t)
                crd["metadata"]["creationTimestamp"] = old
                self.put("customresourcedefinitions", crd, emit=False)
            for ns in ("default", "kube-system"):
                self.put(
                    "namespaces", {"metadata": {"name": ns, "creationTimestamp": old}}, emit=False
                )

    def clear(self) -> None:
        with self.lock:
            for d in self.data.values():
                d.clear()
            self.compact()

    def compact(self) -> None:
        """Forget the event log and the list snapshots: older versions now get 410."""
        with self.lock:
            self.rv += 1
            self.log.clear()
            self.floor = self.rv
            self.snapshots.clear()

    def drop_watches(self) -> None:
        with self.lock:
            ws = list(self.watchers)
            self.watchers.clear()
            self.watchers_changed.notify_all()
        for w in ws:
            w.push(None)

    def open_watches(self, plural: str | None = None) -> int:
        with self.lock:
            return sum(1 for w in self.watchers if plural is None or w.t.plural == plural)

    def wait_for_watches(self, count: int, timeout: float = 10.0, plural: str | None = None) -> int:
        """Block until at least `count` watches are open; returns how many are (maybe fewer
        after `timeout`)."""
        with self.watchers_changed:
            self.watchers_changed.wait_for(
                lambda: self.open_watches(plural) >= count, timeout=timeout
            )
            return self.open_watches(plural)

    def rewrite(self, plural: str, change) -> int:
        """Apply `change(obj)` to every stored object of `plural` in place, keeping each
        one's resourceVersion and emitting nothing (a different cluster that happens to
        hand out the same numbers). Returns how many objects were rewritten."""
        t = BY_PLURAL[plural]
        with self.lock:
            entries = list(self.data[plural].items())
            for k, e in entries:
                obj = e.obj()
                change(obj)
                self.data[plural][k] = self._entry(t, obj, e.rv)
            return len(entries)

    # -- defaults applied to every stored object

    def _complete(self, t: RType, obj: dict, old: dict | None, rv: int) -> dict:
        obj["apiVersion"] = t.api_version
        obj["kind"] = t.kind
        md = obj.setdefault("metadata", {})
        if old is not None:
            omd = old["metadata"]
            md["uid"] = omd["uid"]
            md["creationTimestamp"] = omd["creationTimestamp"]
            gen = omd.get("generation", 1)
            if {k: v for k, v in obj.items() if k not in ("metadata", "status")} != {
                k: v for k, v in old.items() if k not in ("metadata", "status")
            }:
                gen += 1
            md["generation"] = gen
        else:
            md.setdefault("uid", self._uid())
            md.setdefault("creationTimestamp", now_rfc3339())
            md.setdefault("generation", 1)
        if t.plural == "namespaces":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj.setdefault("status", {"phase": "Active"})
            labels = md.setdefault("labels", {})
            labels.setdefault("kubernetes.io/metadata.name", md["name"])
        return obj

    def put(self, plural: str, obj: dict, emit: bool = True) -> dict:
        """Upsert without preconditions (bulk loading and seeding)."""
        t = BY_PLURAL[plural]
        with self.lock:
            md = obj.setdefault("metadata", {})
            if t.namespaced:
                md.setdefault("namespace", "default")
            else:
                md.pop("namespace", None)
            k = _key(md.get("namespace") if t.namespaced else None, md["name"])
            old_e = self.data[plural].get(k)
            old = old_e.obj() if old_e and not md.get("uid") else None
            rv = self._next_rv()
            obj = self._complete(t, obj, old, rv)
            if "managedFields" not in obj["metadata"]:
                obj["metadata"]["managedFields"] = managed.update(
                    None,
                    obj,
                    DEFAULT_MANAGER,
                    "Update",
                    t.api_version,
                    obj["metadata"]["creationTimestamp"],
                )
            e = self._entry(t, obj, rv)
            self.data[plural][k] = e
            if emit:
                self._emit("MODIFIED" if old_e else "ADDED", plural, e, old_e)
            return obj

    def put_raw(self, plural: str, obj: dict) -> None:
        """Fast path for big scenarios: obj is complete (uid, timestamps); no event."""
        t = BY_PLURAL[plural]
        rv = self._next_rv()
        obj["apiVersion"] = t.api_version
        obj["kind"] = t.kind
        e = self._entry(t, obj, rv)
        self.data[plural][_key(e.ns, e.name)] = e

    # -- the API verbs

    def get(self, plural: str, ns: str | None, name: str) -> dict:
        t = self.rtype(plural)
        with self.lock:
            e = self.data[plural].get(_key(ns if t.namespaced else None, name))
        if e is None:
            raise not_found(t, name)
        return e.obj()

    def get_entry(self, plural: str, ns: str | None, name: str) -> Entry:
        t = self.rtype(plural)
        with self.lock:
            e = self.data[plural].get(_key(ns if t.namespaced else None, name))
        if e is None:
            raise not_found(t, name)
        return e

    def create(
        self,
        plural: str,
        obj: dict,
        ns: str | None = None,
        check_ns: bool = False,
        *,
        manager: str = DEFAULT_MANAGER,
        validation: str = "Warn",
        warnings: list[str] | None = None,
        apply: bool = False,
        admit: bool = True,
    ) -> dict:
        """validation: the fieldValidation directive; warnings collects the Warning headers.
        apply: the create of a server-side apply (the manager's entry is an Apply).
        admit=False plants the object as given (state a real cluster can hold but no write
        through its apiserver can make: objects from before a CRD tightened, etcd edits)."""
        t = self.rtype(plural)
        if not isinstance(obj, dict):
            raise bad_request("the body of the request was in an unknown format")
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise bad_request("metadata must be an object")
        if t.namespaced:
            if ns is not None:
                if md.get("namespace") and md["namespace"] != ns:
                    raise bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request"
                    )
                md["namespace"] = ns
            md.setdefault("namespace", "default")
        else:
            md.pop("namespace", None)
        if not md.get("name"):
            if md.get("generateName"):
                md["name"] = md["generateName"] + uuid.uuid4().hex[:5]
            else:
                raise invalid(
                    t,
                    "",
                    [
                        {
                            "reason": "FieldValueRequired",
                            "message": "Required value: name or generateName is required",
                            "field": "metadata.name",
                        }
                    ],
                )
        for k in ("resourceVersion", "uid", "creationTimestamp", "deletionTimestamp", "generation"):
            md.pop(k, None)
        applied = copy.deepcopy(obj) if apply else None
        with self.lock:
            if admit:
                obj = self._admit(t, obj, validation, warnings)
            md = obj["metadata"]
            if (
                check_ns
                and t.namespaced
                and _key(None, md["namespace"]) not in self.data["namespaces"]
            ):
                raise not_found(BY_PLURAL["namespaces"], md["namespace"])
            k = _key(md.get("namespace") if t.namespaced else None, md["name"])
            if k in self.data[plural]:
                details = {"name": md["name"], "kind": t.plural}
                if t.group:
                    details["group"] = t.group
                raise ApiError(
                    409, "AlreadyExists", f'{t.qualified} "{md["name"]}" already exists', details
                )
            rv = self._next_rv()
            obj = self._complete(t, obj, None, rv)
            obj["metadata"]["managedFields"] = managed.update(
                None,
                obj,
                manager,
                "Apply" if apply else "Update",
                t.api_version,
                now_rfc3339(),
                applied=applied,
            )
            e = self._entry(t, obj, rv)
            self.data[plural][k] = e
            self._emit("ADDED", plural, e)
            return obj

    def _schema(self, t: RType) -> dict:
        """The served CRD's openAPIV3Schema for t's version (cached per CRD revision)."""
        e = self.data["customresourcedefinitions"].get(_key(None, t.crd_name))
        if e is None:
            return {}
        hit = self._schemas.get(t.plural)
        if hit is None or hit[0] != e.rv:
            version = crd_version(e.obj(), t.version)
            hit = (e.rv, (version.get("schema") or {}).get("openAPIV3Schema") or {})
            self._schemas[t.plural] = hit
        return hit[1]

    def _admit(self, t: RType, obj: dict, validation: str, warnings: list[str] | None) -> dict:
        """Prune, then validate, as the apiserver admits a write (see simcluster.admission)."""
        if validation not in admission.VALIDATION_DIRECTIVES:
            raise bad_request(
                f"fieldValidation must be one of {', '.join(admission.VALIDATION_DIRECTIVES)}, "
                f"got {validation!r}"
            )
        res = (
            admission.admit_custom(obj, self._schema(t))
            if t.custom
            else admission.admit_builtin(obj)
        )
        if res.unknown:
            if validation == "Strict":
                raise bad_request(admission.strict_message(t.kind, t.version, res.unknown))
            if validation == "Warn" and warnings is not None:
                warnings.extend(admission.warnings(res.unknown))
        md = res.obj.get("metadata") or {}
        causes = admission.name_causes(md.get("name"), label=t.plural == "namespaces")
        if t.namespaced and md.get("namespace"):
            causes += admission.name_causes(md["namespace"], True, "metadata.namespace")
        causes += res.causes
        if causes:
            name = md.get("name")
            raise invalid(t, name if isinstance(name, str) else "", causes)
        return res.obj

    def replace(
        self,
        plural: str,
        obj: dict,
        ns: str | None = None,
        name: str | None = None,
        *,
        manager: str = DEFAULT_MANAGER,
        validation: str = "Warn",
        warnings: list[str] | None = None,
        subresource: str | None = None,
        admit: bool = True,
    ) -> dict:
        t = self.rtype(plural)
        if not isinstance(obj, dict):
            raise bad_request("the body of the request was in an unknown format")
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        if name is not None and md.get("name") and md["name"] != name:
            raise bad_request(
                "the name of the object ({}) does not match the name on the URL ({})".format(
                    md["name"], name
                )
            )
        name = name or md.get("name")
        if not name:
            raise bad_request("name is required")
        md["name"] = name
        if t.namespaced:
            ns = ns or md.get("namespace") or "default"
            if md.get("namespace") and md["namespace"] != ns:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            md["namespace"] = ns
        else:
            ns = None
            md.pop("namespace", None)
        with self.lock:
            k = _key(ns, name)
            old_e = self.data[plural].get(k)
            if old_e is None:
                raise not_found(t, name)
            want = md.get("resourceVersion")
            if not want and t.custom:
                raise invalid(
                    t,
                    name,
                    [
                        {
                            "reason": "FieldValueInvalid",
                            "message": "Invalid value: 0x0: must be specified for an update",
                            "field": "metadata.resourceVersion",
                        }
                    ],
                )
            if want and str(want) != str(old_e.rv):
                raise conflict(t, name)
            if admit:
                obj = self._admit(t, obj, validation, warnings)
            return self._store_update(t, k, obj, old_e, manager, subresource=subresource)

    def _store_update(
        self,
        t: RType,
        k,
        obj: dict,
        old_e: Entry,
        manager: str,
        applied: dict | None = None,
        subresource: str | None = None,
    ) -> dict:
        old = old_e.obj()
        rv = self._next_rv()
        obj = self._complete(t, obj, old, rv)
        obj["metadata"]["managedFields"] = managed.update(
            old,
            obj,
            manager,
            "Update" if applied is None else "Apply",
            t.api_version,
            now_rfc3339(),
            applied=applied,
            subresource=subresource,
        )
        if old["metadata"].get("deletionTimestamp"):
            obj["metadata"]["deletionTimestamp"] = old["metadata"]["deletionTimestamp"]
        e = self._entry(t, obj, rv)
        self.data[t.plural][k] = e
        self._emit("MODIFIED", t.plural, e, old_e)
        return obj

    def patch(
        self,
        plural: str,
        ns: str | None,
        name: str,
        body,
        kind: str = "merge",
        *,
        manager: str = DEFAULT_MANAGER,
        validation: str = "Warn",
        warnings: list[str] | None = None,
        subresource: str | None = None,
        admit: bool = True,
    ) -> dict:
        """kind: json | merge | strategic | apply; admit as in create."""
        t = self.rtype(plural)
        with self.lock:
            k = _key(ns if t.namespaced else None, name)
            old_e = self.data[plural].get(k)
            if old_e is None:
                raise not_found(t, name)
            old = old_e.obj()
            try:
                if kind == "json":
                    new = json_patch(old_e.obj(), body, copy_doc=False)
                else:
                    if not isinstance(body, dict):
                        raise ValueError("a merge patch must be a JSON object")
                    new = merge_patch(old, body, strategic=(kind != "merge"))
            except PatchTestFailed as exc:
                raise invalid(
                    t,
                    name,
                    [{"reason": "FieldValueInvalid", "message": str(exc), "field": "patch"}],
                    summary=str(exc),
                ) from exc
            except (KeyError, IndexError, ValueError, TypeError) as exc:
                raise ApiError(
                    422 if kind == "json" else 400,
                    "Invalid" if kind == "json" else "BadRequest",
                    f"the server rejected our request due to an error in our request: {exc}",
                ) from exc
            if not isinstance(new, dict):
                raise bad_request("the patch produced a non-object")
            md = new.setdefault("metadata", {})
            want = md.get("resourceVersion")
            if want and str(want) != str(old_e.rv):
                raise conflict(t, name)
            md["name"] = name
            if t.namespaced:
                md["namespace"] = old["metadata"]["namespace"]
            # the patched object keeps the stored managedFields; the manager's entry is redone
            md["managedFields"] = old["metadata"].get("managedFields") or []
            if admit:
                new = self._admit(t, new, validation, warnings)
            applied = copy.deepcopy(body) if kind == "apply" else None
            return self._store_update(t, k, new, old_e, manager, applied, subresource)

    def delete(self, plural: str, ns: str | None, name: str, preconditions: dict | None = None):
        t = self.rtype(plural)
        with self.lock:
            k = _key(ns if t.namespaced else None, name)
            old_e = self.data[plural].get(k)
            if old_e is None:
                raise not_found(t, name)
            obj = old_e.obj()
            pre = preconditions or {}
            if pre.get("resourceVersion") and str(pre["resourceVersion"]) != str(old_e.rv):
                raise conflict(t, name)
            if pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]:
                raise conflict(t, name)
            del self.data[plural][k]
            if plural == "namespaces":
                for p, d in self.data.items():
                    if BY_PLURAL[p].namespaced:
                        for kk in [kk for kk in d if kk[0] == name]:
                            ce = d.pop(kk)
                            cobj = ce.obj()
                            self._emit(
                                "DELETED", p, self._entry(BY_PLURAL[p], cobj, self._next_rv())
                            )
            if plural == "customresourcedefinitions":
                gone = next((c for c in CUSTOM if c.crd_name == name), None)
                if gone:
                    for kk in list(self.data[gone.plural]):
                        ce = self.data[gone.plural].pop(kk)
                        self._emit(
                            "DELETED", gone.plural, self._entry(gone, ce.obj(), self._next_rv())
                        )
            rv = self._next_rv()
            obj["metadata"]["deletionTimestamp"] = now_rfc3339()
            if plural == "pods":
                obj["metadata"]["deletionGracePeriodSeconds"] = 0
            e = self._entry(t, obj, rv)
            self._emit("DELETED", plural, e)
            return obj

    # -- lists and watches

    def select(
        self,
        plural: str,
        ns: str | None = None,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
    ) -> tuple[int, list[Entry]]:
        t = self.rtype(plural)
        with self.lock:
            rv = self.rv
            d = self.data[plural]
            if ns is not None and t.namespaced:
                items = [e for k, e in d.items() if k[0] == ns]
            else:
                items = list(d.values())
        items.sort(key=lambda e: (e.ns or "", e.name))
        if labels:
            items = [e for e in items if labels.matches(e.labels)]
        if fields:
            items = [e for e in items if fields.matches(e)]
        return rv, items

    def page(
        self,
        plural: str,
        ns: str | None,
        labels: LabelSelector | None,
        fields: FieldSelector | None,
        limit: int | None,
        cont: str | None,
    ) -> tuple[int, list[Entry], str | None, int | None]:
        """Returns (list rv, items, continue token, remainingItemCount)."""
        self.rtype(plural)
        if cont:
            try:
                tok = orjson.loads(
                    base64.urlsafe_b64decode(cont.encode() + b"=" * (-len(cont) % 4))
                )
                sid, off, rv = int(tok["s"]), int(tok["o"]), int(tok["rv"])
            except Exception as exc:
                raise bad_request(f"continue key is not valid: {cont!r}") from exc
            with self.lock:
                snap = self.snapshots.get(sid)
                if snap is not None:
                    self.snapshots.move_to_end(sid)
            if snap is None or snap[0] != rv or snap[2] != plural:
                raise expired(
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter, or use the continue "
                    "token in this response to retrieve the remainder of the results. Continuing with "
                    "the provided token results in an inconsistent list - objects that were created, "
                    "modified, or deleted between the time the first chunk was returned and now may "
                    "show up in the list."
                )
            rv, items = snap[0], snap[1]
        else:
            rv, items = self.select(plural, ns, labels, fields)
            off = 0
            sid = None
        if not limit or limit <= 0:
            return rv, items[off:], None, None
        end = off + limit
        if end >= len(items):
            return rv, items[off:], None, None
        if sid is None:
            with self.lock:
                sid = next(self._snap_ids)
                self.snapshots[sid] = (rv, items, plural)
                while len(self.snapshots) > self.snapshot_limit:
                    self.snapshots.popitem(last=False)
        token = (
            base64.urlsafe_b64encode(orjson.dumps({"rv": rv, "s": sid, "o": end}))
            .decode()
            .rstrip("=")
        )
        return rv, items[off:end], token, len(items) - end

    def watch(
        self,
        plural: str,
        ns: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        rv: str | None,
        push,
        initial_events: bool = False,
    ) -> tuple[Watcher | None, list, int]:
        """Register a watcher. Returns (watcher or None if expired, initial events, current rv)."""
        t = self.rtype(plural)
        w = Watcher(t, ns if t.namespaced else None, labels, fields, push)
        with self.lock:
            if not rv or rv == "0" or initial_events:
                _, items = self.select(plural, w.ns, labels, fields)
                initial = [("ADDED", e) for e in items]
            else:
                try:
                    want = int(rv)
                except ValueError as exc:
                    raise bad_request(f"invalid resource version: {rv!r}") from exc
                if want < self.floor:
                    return None, [], self.floor
                initial = []
                for erv, typ, p, e, old in self.log:
                    if erv > want:
                        seen = w.translate(typ, p, e, old)
                        if seen:
                            initial.append((seen, e))
            self.watchers.add(w)
            self.watchers_changed.notify_all()
            return w, initial, self.rv

    def unwatch(self, w: Watcher) -> None:
        with self.lock:
            self.watchers.discard(w)
            self.watchers_changed.notify_all()

    # -- bulk

    def load_objects(self, objects: Mapping[str, Iterable[dict]], emit: bool = True) -> None:
        order = [p for p in ("customresourcedefinitions", "namespaces", "nodes") if p in objects]
        order += [p for p in objects if p not in order]
        with self.lock:
            for plural in order:
                if plural not in BY_PLURAL:
                    raise ValueError(f"unknown plural {plural!r}")
                for obj in objects[plural]:
                    # a JSON round trip copies ~10x faster than deepcopy (objects are JSON)
                    self.put(plural, orjson.loads(orjson.dumps(obj)), emit=emit)

    def counts(self) -> dict[str, int]:
        with self.lock:
            return {p: len(d) for p, d in self.data.items()}


def conflict(t: RType, name: str) -> ApiError:
    details = {"name": name, "kind": t.plural}
    if t.group:
        details["group"] = t.group
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {t.qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        details,
    )
