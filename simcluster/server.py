"""The aiohttp application: Kubernetes paths, watches, faults and the /_sim control API."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import logging
import re
import threading
import time
from collections import deque

import orjson
import yaml
from aiohttp import web

from .admission import field_manager
from .resources import BY_GV, TYPES, crd_version, groups
from .store import ApiError, FieldSelector, LabelSelector, Store, bad_request

log = logging.getLogger("simcluster")

JSON = "application/json"
STREAM_ABOVE = 5000  # items; bigger lists are written in chunks
GIT_VERSION = "v1.31.0-simcluster+simulated"


def _resp(body, status: int = 200, headers: dict | None = None) -> web.Response:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return web.Response(body=raw, status=status, content_type=JSON, headers=headers)


def _written(obj: dict, status: int, warns: list[str]) -> web.Response:
    """A write's answer: the stored object, and one Warning header per dropped field."""
    resp = _resp(obj, status)
    for w in warns:
        resp.headers.add("Warning", w)
    return resp


def _has_status_subresource(store: Store, t) -> bool:
    e = store.data["customresourcedefinitions"].get(("", t.crd_name))
    if e is None:
        return False
    return "status" in (crd_version(e.obj(), t.version).get("subresources") or {})


def _error(err: ApiError, headers: dict | None = None) -> web.Response:
    return _resp(err.status(), err.code, headers)


_FAULT_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class Fault:
    def __init__(
        self,
        path_regex: str,
        status: int,
        count: int,
        latency: float,
        method: str | None,
        after: bool = False,
    ):
        self.rx = re.compile(path_regex)
        self.pattern = path_regex
        self.status = status
        self.count = count
        self.latency = latency
        self.method = method.upper() if method else None
        # after: handle the request first, then hold the answer back (a write the server
        # stored whose answer never reached a client that gave up waiting).
        self.after = after


class SimServer:
    """State shared by the HTTP app and in-process callers (thread-safe where it matters)."""

    def __init__(self, bookmark_interval: float = 1.0, log_size: int = 100_000):
        self.store = Store(log_size=log_size)
        self.faults: list[Fault] = []
        self.fault_lock = threading.Lock()
        self.requests: deque = deque(maxlen=20000)
        self.ground_truth: dict = {}
        self.scenario = "empty"
        self.seed = 1
        self.bookmark_interval = bookmark_interval
        self.port: int | None = None
        self.started = time.time()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._churn: concurrent.futures.Future[None] | None = None

    def start_churn(self, events_per_second: float, seed: int = 1) -> None:
        """Start live traffic on the server's loop (callable from any thread)."""
        from .churn import churn

        self.stop_churn()
        if self.loop is None:
            raise RuntimeError("the server is not running")
        self._churn = asyncio.run_coroutine_threadsafe(
            churn(self, events_per_second, seed), self.loop
        )

    def stop_churn(self) -> None:
        if self._churn is not None:
            self._churn.cancel()
            self._churn = None

    # ---- control

    def reset(self, scenario: str = "empty", seed: int = 1) -> None:
        from .scenarios import load_scenario

        self.stop_churn()
        self.store.drop_watches()
        with self.fault_lock:
            self.faults.clear()
        self.requests.clear()
        with self.store.lock:
            self.store.clear()
            self.store.bootstrap()
            self.ground_truth = load_scenario(self.store, scenario, seed)
            self.scenario = scenario
            self.seed = seed
            self.store.compact()

    def add_fault(
        self,
        path_regex: str,
        status: int | None = 500,
        count: int = 1,
        latency: float = 0.0,
        method: str | None = None,
        after: bool = False,
    ) -> None:
        if status is None:
            status = 0 if latency else 500
        with self.fault_lock:
            self.faults.append(
                Fault(path_regex, int(status), int(count), float(latency), method, after)
            )

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.fault_lock:
            for f in self.faults:
                if f.count > 0 and (f.method is None or f.method == method) and f.rx.search(path):
                    f.count -= 1
                    if f.count <= 0:
                        self.faults.remove(f)
                    return f
        return None

    def remove_crd(self, plural: str) -> None:
        from .resources import BY_PLURAL

        t = BY_PLURAL[plural]
        with contextlib.suppress(ApiError):
            self.store.delete("customresourcedefinitions", None, t.crd_name)

    # ---- app

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=1024**3)
        app.router.add_route("*", "/_sim/{tail:.*}", self._control)
        app.router.add_route("*", "/{tail:.*}", self._kube)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        path = request.path
        entry = {
            "method": request.method,
            "path": path,
            "query": request.query_string,
            "status": None,
            "time": time.time(),
        }
        hold_answer = 0.0
        if not path.startswith("/_sim"):
            self.requests.append(entry)
            f = self._take_fault(request.method, path)
            if f is not None and f.after:
                hold_answer = f.latency
            elif f is not None:
                if f.latency:
                    await asyncio.sleep(f.latency)
                if f.status:
                    reason = _FAULT_REASONS.get(f.status, "InternalError")
                    err = ApiError(
                        f.status, reason, f"simcluster injected fault ({f.pattern})", {"causes": []}
                    )
                    headers = {"Retry-After": "1"} if f.status == 429 else None
                    entry["status"] = f.status
                    return _error(err, headers)
        try:
            resp = await handler(request)
        except ApiError as err:
            resp = _error(err)
        except web.HTTPException as exc:
            entry["status"] = exc.status
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # a simcluster bug: still answer like an apiserver would
            log.exception("simcluster failed on %s %s", request.method, path)
            resp = _error(ApiError(500, "InternalError", f"simcluster internal error: {exc!r}"))
        entry["status"] = resp.status
        if hold_answer:
            await asyncio.sleep(hold_answer)
        return resp

    # ---- /_sim

    async def _control(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"].strip("/")
        body: dict = {}
        if request.can_read_body:
            raw = await request.read()
            body = orjson.loads(raw) if raw.strip() else {}
        q = request.query
        loop = asyncio.get_running_loop()
        if tail == "health":
            return _resp(
                {"ok": True, "scenario": self.scenario, "resourceVersion": str(self.store.rv)}
            )
        if tail in ("reset", "load") and request.method == "POST":
            scenario = body.get("scenario") or q.get("scenario") or "empty"
            seed = int(body.get("seed") or q.get("seed") or 1)
            await loop.run_in_executor(None, self.reset, scenario, seed)
            return _resp({"ok": True, "scenario": scenario, "counts": self.store.counts()})
        if tail == "seed" and request.method == "POST":
            objs = body.get("objects", body)
            await loop.run_in_executor(None, self.store.load_objects, objs)
            return _resp({"ok": True, "counts": self.store.counts()})
        if tail == "compact" and request.method == "POST":
            self.store.compact()
            return _resp({"ok": True, "resourceVersion": str(self.store.rv)})
        if tail == "fault" and request.method == "POST":
            self.add_fault(
                body.get("path", ".*"),
                body.get("status"),
                body.get("count", 1),
                body.get("latency", 0.0),
                body.get("method"),
                bool(body.get("after", False)),
            )
            return _resp({"ok": True})
        if tail == "fault" and request.method == "DELETE":
            with self.fault_lock:
                self.faults.clear()
            return _resp({"ok": True})
        if tail == "drop-watches" and request.method == "POST":
            self.store.drop_watches()
            return _resp({"ok": True})
        if tail == "remove-crd" and request.method == "POST":
            self.remove_crd(body.get("plural") or q.get("plural") or "")
            return _resp({"ok": True})
        if tail == "requests":
            if request.method == "DELETE":
                self.requests.clear()
                return _resp({"ok": True})
            return _resp(
                {
                    "requests": [
                        {k: r[k] for k in ("method", "path", "query", "status")}
                        for r in list(self.requests)
                    ]
                }
            )
        if tail == "ground-truth":
            return _resp(self.ground_truth)
        if tail == "stats":
            return _resp(
                {
                    "scenario": self.scenario,
                    "seed": self.seed,
                    "resourceVersion": str(self.store.rv),
                    "counts": self.store.counts(),
                    "watches": len(self.store.watchers),
                }
            )
        raise web.HTTPNotFound()

    # ---- Kubernetes paths

    async def _kube(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        m = request.method
        if m == "GET":
            d = self._discovery(parts)
            if d is not None:
                return d
        if not parts or parts[0] not in ("api", "apis"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if parts[0] == "api":
            if len(parts) < 2:
                raise ApiError(
                    404, "NotFound", "the server could not find the requested resource", {}
                )
            group, version, rest = "", parts[1], parts[2:]
        else:
            if len(parts) < 3:
                raise ApiError(
                    404, "NotFound", "the server could not find the requested resource", {}
                )
            group, version, rest = parts[1], parts[2], parts[3:]

        def rt(plural):
            t = BY_GV.get((group, version, plural))
            if t is None:
                raise ApiError(
                    404, "NotFound", "the server could not find the requested resource", {}
                )
            return self.store.rtype(t.plural)

        ns = name = sub = None
        if (
            len(rest) >= 3
            and rest[0] == "namespaces"
            and BY_GV.get((group, version, rest[2])) is not None
        ):
            ns = rest[1]
            t = rt(rest[2])
            if not t.namespaced:
                raise ApiError(
                    404, "NotFound", "the server could not find the requested resource", {}
                )
            name = rest[3] if len(rest) > 3 else None
            sub = rest[4] if len(rest) > 4 else None
            if len(rest) > 5:
                raise ApiError(
                    404, "NotFound", "the server could not find the requested resource", {}
                )
        elif rest:
            t = rt(rest[0])
            name = rest[1] if len(rest) > 1 else None
            sub = rest[2] if len(rest) > 2 else None
            if len(rest) > 3 or (name is not None and t.namespaced):
                raise ApiError(
                    404, "NotFound", "the server could not find the requested resource", {}
                )
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if sub not in (None, "status"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        q = request.query
        store = self.store
        if m == "GET":
            if name is None:
                if q.get("watch") in ("true", "1", "True"):
                    return await self._watch(request, t, ns)
                return await self._list(request, t, ns)
            e = store.get_entry(t.plural, ns, name)
            if _wants_table(request):
                return _resp(_table(t, [e], store.rv))
            return _resp(e.full())
        body = await _read_body(request)
        if sub == "status" and t.custom and not _has_status_subresource(store, t):
            # none of the published CRDs declares subresources: /status does not exist
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        warns: list[str] = []
        manager = field_manager(q.get("fieldManager"), request.headers.get("User-Agent"), "unknown")
        validation = q.get("fieldValidation") or "Warn"
        if m == "POST" and name is None:
            if ns is None and t.namespaced:
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method", {})
            obj = store.create(
                t.plural,
                body,
                ns,
                check_ns=True,
                manager=manager,
                validation=validation,
                warnings=warns,
            )
            return _written(obj, 201, warns)
        if name is None:
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
                {},
            )
        if m == "PUT":
            obj = store.replace(
                t.plural,
                body,
                ns,
                name,
                subresource=sub,
                manager=manager,
                validation=validation,
                warnings=warns,
            )
            return _written(obj, 200, warns)
        if m == "PATCH":
            ctype = request.content_type or ""
            kind = {
                "application/json-patch+json": "json",
                "application/merge-patch+json": "merge",
                "application/strategic-merge-patch+json": "strategic",
                "application/apply-patch+yaml": "apply",
                "application/apply-patch+cbor": "apply",
            }.get(ctype)
            if kind is None:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format: {ctype}",
                    {},
                )
            if kind == "strategic" and t.custom:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: "
                    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                    {},
                )
            if kind == "apply":
                if not q.get("fieldManager"):
                    raise bad_request(
                        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                        "is required for apply patch"
                    )
                try:
                    store.get_entry(t.plural, ns, name)
                except ApiError as err:
                    if err.code != 404:
                        raise
                    obj = store.create(
                        t.plural,
                        body,
                        ns,
                        check_ns=True,
                        apply=True,
                        manager=manager,
                        validation=validation,
                        warnings=warns,
                    )
                    return _written(obj, 201, warns)
            obj = store.patch(
                t.plural,
                ns,
                name,
                body,
                kind,
                subresource=sub,
                manager=manager,
                validation=validation,
                warnings=warns,
            )
            return _written(obj, 200, warns)
        if m == "DELETE":
            pre = (body or {}).get("preconditions") if isinstance(body, dict) else None
            obj = store.delete(t.plural, ns, name, pre)
            if t.plural == "pods":
                return _resp(obj)
            details = {"name": name, "kind": t.plural, "uid": obj["metadata"]["uid"]}
            if t.group:
                details["group"] = t.group
            return _resp(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": details,
                }
            )
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method", {})

    async def _list(self, request: web.Request, t, ns) -> web.StreamResponse:
        q = request.query
        labels = LabelSelector(q.get("labelSelector"))
        fields = FieldSelector(q.get("fieldSelector"), t)
        limit = None
        if q.get("limit"):
            try:
                limit = int(q["limit"])
            except ValueError as exc:
                raise bad_request(f"invalid limit {q['limit']!r}") from exc
        rv, items, cont, remaining = self.store.page(
            t.plural, ns, labels, fields, limit, q.get("continue")
        )
        if _wants_table(request):
            tbl = _table(t, items, rv)
            if cont:
                tbl["metadata"]["continue"] = cont
                tbl["metadata"]["remainingItemCount"] = remaining
            return _resp(tbl)
        md = b'{"resourceVersion":"%d"' % rv
        if cont:
            md += (
                b',"continue":'
                + orjson.dumps(cont)
                + b',"remainingItemCount":%d' % (remaining or 0)
            )
        md += b"}"
        head = b"".join(
            [
                b'{"kind":',
                orjson.dumps(t.list_kind),
                b',"apiVersion":',
                orjson.dumps(t.api_version),
                b',"metadata":',
                md,
                b',"items":[',
            ]
        )
        if len(items) <= STREAM_ABOVE:
            return _resp(head + b",".join(e.raw for e in items) + b"]}")
        return await self._stream_list(request, head, items)

    async def _stream_list(self, request, head: bytes, items) -> web.StreamResponse:
        """Big lists go out in chunks, so 150k pods never sit in memory twice."""
        resp = web.StreamResponse(status=200)
        resp.content_type = JSON
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(head)
        for i in range(0, len(items), 2000):
            chunk = b",".join(e.raw for e in items[i : i + 2000])
            await resp.write((b"," if i else b"") + chunk)
        await resp.write(b"]}")
        await resp.write_eof()
        return resp

    async def _watch(self, request: web.Request, t, ns) -> web.StreamResponse:
        q = request.query
        labels = LabelSelector(q.get("labelSelector"))
        fields = FieldSelector(q.get("fieldSelector"), t)
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1", "True")
        timeout = float(q.get("timeoutSeconds") or 1800)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def push(ev):
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(queue.put_nowait, ev)

        send_initial = q.get("sendInitialEvents") in ("true", "1", "True")
        w, initial, cur = self.store.watch(
            t.plural, ns, labels, fields, q.get("resourceVersion"), push, send_initial
        )
        resp = web.StreamResponse(status=200)
        resp.content_type = JSON
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        kind = orjson.dumps(t.kind)
        apiv = orjson.dumps(t.api_version)
        if w is None:
            err = ApiError(
                410,
                "Expired",
                f"too old resource version: {q.get('resourceVersion')} ({cur})",
            )
            await resp.write(b'{"type":"ERROR","object":' + orjson.dumps(err.status()) + b"}\n")
            await resp.write_eof()
            return resp
        try:
            table = _wants_table(request)  # kubectl get -w

            def obj_bytes(e) -> bytes:
                return orjson.dumps(_table(t, [e], e.rv)) if table else e.full()

            chunk = [
                b'{"type":"%s","object":%s}\n' % (typ.encode(), obj_bytes(e)) for typ, e in initial
            ]
            for i in range(0, len(chunk), 500):
                await resp.write(b"".join(chunk[i : i + 500]))
            if send_initial and bookmarks:
                # the watch-list protocol: a bookmark marks the end of the initial state
                await resp.write(
                    b'{"type":"BOOKMARK","object":{"kind":%s,"apiVersion":%s,"metadata":{"resourceVersion":"%d","annotations":{"k8s.io/initial-events-end":"true"}}}}\n'
                    % (orjson.dumps(t.kind), orjson.dumps(t.api_version), cur)
                )
            deadline = loop.time() + timeout
            next_bm = loop.time() + self.bookmark_interval

            def render(item) -> bytes:
                typ, e = item
                if typ == "BOOKMARK":
                    return (
                        b'{"type":"BOOKMARK","object":{"kind":%s,"apiVersion":%s,"metadata":{"resourceVersion":"%d"}}}\n'
                        % (kind, apiv, e)
                    )
                return b'{"type":"%s","object":%s}\n' % (typ.encode(), obj_bytes(e))

            while True:
                now = loop.time()
                if now >= deadline:
                    break
                wait = deadline - now
                if bookmarks:
                    wait = min(wait, max(0.0, next_bm - now))
                try:
                    ev = await asyncio.wait_for(queue.get(), timeout=wait)
                except TimeoutError:
                    if bookmarks and loop.time() >= next_bm:
                        # Read the revision under the store lock and enqueue the bookmark
                        # behind every event already pushed with a revision <= it, so a
                        # client resuming from the bookmark never skips an event.
                        with self.store.lock:
                            push(("BOOKMARK", self.store.rv))
                        next_bm = loop.time() + self.bookmark_interval
                    continue
                if ev is None:
                    break
                lines = [ev]
                while not queue.empty() and len(lines) < 500:
                    nxt = queue.get_nowait()
                    lines.append(nxt)
                    if nxt is None:
                        break
                out = b"".join(render(x) for x in lines if x is not None)
                if out:
                    await resp.write(out)
                if lines[-1] is None:
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            self.store.unwatch(w)
            raise
        finally:
            self.store.unwatch(w)
        with contextlib.suppress(ConnectionResetError):
            await resp.write_eof()
        return resp

    # ---- discovery

    def _openapi_v3(self, rest: list[str]) -> web.Response:
        served = [t for t in TYPES if self.store.served(t)]

        def gv_path(t):
            return f"apis/{t.group}/{t.version}" if t.group else "api/v1"

        if not rest:
            paths = {}
            for t in served:
                p = gv_path(t)
                paths[p] = {"serverRelativeURL": f"/openapi/v3/{p}?hash=simcluster{len(served)}"}
            return _resp({"paths": paths})
        want = "/".join(rest)
        doc_paths: dict = {}
        schemas: dict = {}
        for t in served:
            if gv_path(t) == want:
                schema = self._crd_schema(t) if t.custom else None
                if schema is not None:
                    schemas[_schema_name(t)] = schema
                doc_paths.update(_openapi_paths(t, schema is not None))
        if not doc_paths:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        return _resp(
            {
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes (simcluster)", "version": GIT_VERSION},
                "paths": doc_paths,
                "components": {"schemas": schemas},
            }
        )

    def _crd_schema(self, t) -> dict | None:
        """A custom kind's schema as the apiserver publishes it from the served CRD."""
        e = self.store.data["customresourcedefinitions"].get(("", t.crd_name))
        if e is None:
            return None
        version = crd_version(e.obj(), t.version)
        schema = dict((version.get("schema") or {}).get("openAPIV3Schema") or {})
        schema["x-kubernetes-group-version-kind"] = [
            {"group": t.group, "version": t.version, "kind": t.kind}
        ]
        return schema

    def _discovery(self, parts: list[str]) -> web.Response | None:
        store = self.store
        if parts == ["version"]:
            return _resp(
                {
                    "major": "1",
                    "minor": "31",
                    "gitVersion": GIT_VERSION,
                    "gitCommit": "0000000000000000000000000000000000000000",
                    "gitTreeState": "clean",
                    "buildDate": "2024-01-01T00:00:00Z",
                    "goVersion": "simulated",
                    "compiler": "simcluster",
                    "platform": "linux/amd64",
                }
            )
        if parts == ["healthz"] or parts == ["readyz"] or parts == ["livez"]:
            return web.Response(text="ok", content_type="text/plain")
        if parts[:2] == ["openapi", "v3"]:
            return self._openapi_v3(parts[2:])
        if parts and parts[0] == "openapi":
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if parts == ["api"]:
            return _resp(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port or 0}"}
                    ],
                }
            )
        if parts == ["api", "v1"]:
            return _resp(
                {
                    "kind": "APIResourceList",
                    "groupVersion": "v1",
                    "resources": [t.discovery() for t in TYPES if not t.group],
                }
            )
        served_groups = {}
        for g, versions in groups().items():
            vs = [
                v
                for v in versions
                if any(t.group == g and t.version == v and store.served(t) for t in TYPES)
            ]
            if vs:
                served_groups[g] = vs

        def group_doc(g):
            vs = served_groups[g]
            return {
                "name": g,
                "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
            }

        if parts == ["apis"]:
            return _resp(
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [group_doc(g) for g in served_groups],
                }
            )
        if len(parts) == 2 and parts[0] == "apis":
            if parts[1] not in served_groups:
                raise ApiError(
                    404, "NotFound", "the server could not find the requested resource", {}
                )
            return _resp({"kind": "APIGroup", "apiVersion": "v1", **group_doc(parts[1])})
        if len(parts) == 3 and parts[0] == "apis":
            g, v = parts[1], parts[2]
            res = [
                t.discovery() for t in TYPES if t.group == g and t.version == v and store.served(t)
            ]
            if not res:
                raise ApiError(
                    404, "NotFound", "the server could not find the requested resource", {}
                )
            return _resp(
                {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": f"{g}/{v}",
                    "resources": res,
                }
            )
        return None


_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


def _schema_name(t) -> str:
    """The apiserver's definition name: the group reversed, the version, the kind."""
    return ".".join([*reversed(t.group.split(".")), t.version, t.kind])


def _openapi_paths(t, with_schema: bool = False) -> dict:
    """OpenAPI v3 paths with a fieldValidation parameter, so kubectl sees that the server
    validates fields itself (`kubectl apply` works without --validate=false); custom kinds'
    bodies refer to their CRD's schema, built-in kinds' are untyped objects."""
    base = f"/apis/{t.group}/{t.version}" if t.group else "/api/v1"
    coll = f"{base}/namespaces/{{namespace}}/{t.plural}" if t.namespaced else f"{base}/{t.plural}"
    gvk = {"group": t.group, "version": t.version, "kind": t.kind}
    qp = [
        {"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
        for n in ("dryRun", "fieldManager", "fieldValidation", "pretty")
    ]
    obj: dict = {"schema": {"type": "object"}}
    if with_schema:
        obj = {"schema": {"$ref": f"#/components/schemas/{_schema_name(t)}"}}
    resp = {"200": {"description": "OK", "content": {"application/json": obj}}}

    def op(action, body_types=("application/json",)):
        d = {
            "operationId": f"{action}{t.kind}",
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
            "parameters": qp,
            "responses": resp,
        }
        if action in ("post", "put", "patch"):
            d["requestBody"] = {"content": {ct: obj for ct in body_types}}
        return d

    return {
        coll: {"get": op("list"), "post": op("post")},
        f"{coll}/{{name}}": {
            "get": op("get"),
            "put": op("put"),
            "patch": op("patch", _PATCH_TYPES),
            "delete": op("delete"),
        },
    }


async def _read_body(request: web.Request):
    raw = await request.read()
    if not raw.strip():
        return {}
    ctype = request.content_type or ""
    try:
        if "yaml" in ctype:
            return yaml.safe_load(raw)
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise bad_request(f"the body of the request could not be decoded: {exc}") from exc


# ---- server-side printing for kubectl


def _wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "as=Table" in accept


def _age(ts: str | None) -> str:
    if not ts:
        return "<unknown>"
    try:
        t = dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return "<unknown>"
    s = int((dt.datetime.now(dt.UTC) - t).total_seconds())
    if s < 120:
        return f"{max(s, 0)}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 86400 * 2:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def _cols(*names):
    out = []
    for n in names:
        pri = 1 if n.startswith("*") else 0
        n = n.lstrip("*")
        out.append(
            {
                "name": n,
                "type": "string",
                "format": "name" if n == "Name" else "",
                "description": n,
                "priority": pri,
            }
        )
    return out


def _table(t, entries, rv: int) -> dict:
    rows = []
    if t.plural == "pods":
        cols = _cols("Name", "Ready", "Status", "Restarts", "Age", "*IP", "*Node")
    elif t.plural == "nodes":
        cols = _cols("Name", "Status", "Roles", "Age", "Version")
    elif t.plural == "namespaces":
        cols = _cols("Name", "Status", "Age")
    elif t.plural == "events":
        cols = _cols("Last Seen", "Type", "Reason", "Object", "Message")
    else:
        cols = _cols("Name", "Age")
    for e in entries:
        o = e.obj()
        md = o["metadata"]
        age = _age(md.get("creationTimestamp"))
        if t.plural == "pods":
            st = o.get("status") or {}
            cs = st.get("containerStatuses") or []
            n = len((o.get("spec") or {}).get("containers") or [])
            ready = sum(1 for c in cs if c.get("ready"))
            reason = st.get("phase") or "Unknown"
            for c in cs:
                w = (c.get("state") or {}).get("waiting")
                if w and w.get("reason"):
                    reason = w["reason"]
            restarts = sum(c.get("restartCount", 0) for c in cs)
            cells = [
                md["name"],
                f"{ready}/{n}",
                reason,
                restarts,
                age,
                st.get("podIP") or "<none>",
                (o.get("spec") or {}).get("nodeName") or "<none>",
            ]
        elif t.plural == "nodes":
            conds = {
                c["type"]: c["status"] for c in (o.get("status") or {}).get("conditions") or []
            }
            node_ready = "Ready" if conds.get("Ready") == "True" else "NotReady"
            roles = (
                ",".join(
                    k.split("/", 1)[1]
                    for k in (md.get("labels") or {})
                    if k.startswith("node-role.kubernetes.io/")
                )
                or "<none>"
            )
            ver = ((o.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")
            cells = [md["name"], node_ready, roles, age, ver]
        elif t.plural == "namespaces":
            cells = [md["name"], (o.get("status") or {}).get("phase", "Active"), age]
        elif t.plural == "events":
            io = o.get("involvedObject") or {}
            cells = [
                _age(o.get("lastTimestamp") or md.get("creationTimestamp")),
                o.get("type", ""),
                o.get("reason", ""),
                f"{(io.get('kind') or '').lower()}/{io.get('name', '')}",
                o.get("message", ""),
            ]
        else:
            cells = [md["name"], age]
        rows.append(
            {
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": md,
                },
            }
        )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": str(rv)},
        "columnDefinitions": cols,
        "rows": rows,
    }
