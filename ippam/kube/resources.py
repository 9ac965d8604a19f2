"""Paged lists and watches of the resources ippam syncs, as plain dicts.

Bulk data never goes through the client's typed models: every call passes
`_preload_content=False` and the raw body is decoded with orjson (150,000 pods are ~258 MB
of JSON; typed models cost ~0.3 s per 500 pods). Lists page with `limit` + `continue` so
one answer never holds the whole cluster; a `continue` token that expired (HTTP 410) restarts
the list from scratch, because only a list read from one snapshot is consistent.

A missing optional CRD (NodeSlicePools before whereabouts 0.9, or whereabouts or Multus not
installed at all) answers 404: that is "absent", an empty list with a flag, not an error.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from ippam.kube.client import KubeError, error_from_api_exception

logger = logging.getLogger(__name__)

LIST_TIMEOUT = (10.0, 120.0)  # (connect, read) seconds per page
MAX_LIST_RESTARTS = 3


@dataclass(frozen=True)
class Resource:
    """One kind of object ippam lists and watches."""

    kind: str  # the key in Cluster.resource_versions and SyncRun.counts
    group: str  # "" for the core API
    version: str
    plural: str
    namespaced: bool = True
    optional: bool = False  # a 404 on the list means "not installed": absent, not an error
    field_selector: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def full_name(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


NODES = Resource("nodes", "", "v1", "nodes", namespaced=False)
PODS = Resource("pods", "", "v1", "pods")
# Multus and whereabouts report attachments only through Pod events.
EVENTS = Resource("events", "", "v1", "events", field_selector="involvedObject.kind=Pod")
NADS = Resource("nads", "k8s.cni.cncf.io", "v1", "network-attachment-definitions", optional=True)
IPPOOLS = Resource("ippools", "whereabouts.cni.cncf.io", "v1alpha1", "ippools", optional=True)
ORIPS = Resource(
    "reservations",
    "whereabouts.cni.cncf.io",
    "v1alpha1",
    "overlappingrangeipreservations",
    optional=True,
)
NODESLICEPOOLS = Resource(
    "nodeslicepools", "whereabouts.cni.cncf.io", "v1alpha1", "nodeslicepools", optional=True
)

# The order a full sync lists them in: NADs first (reservations and events are read in
# their light), pods last but one (the biggest list), events last.
RESOURCES: tuple[Resource, ...] = (NADS, IPPOOLS, ORIPS, NODESLICEPOOLS, NODES, PODS, EVENTS)
BY_KIND = {r.kind: r for r in RESOURCES}


def _list_call(api: client.ApiClient, resource: Resource) -> Callable[..., Any]:
    """The client method that lists (or, with watch=True, watches) `resource` cluster-wide."""
    if not resource.group:
        core = client.CoreV1Api(api)
        calls: dict[str, Callable[..., Any]] = {
            "pods": core.list_pod_for_all_namespaces,
            "nodes": core.list_node,
            "events": core.list_event_for_all_namespaces,
        }
        return calls[resource.plural]
    custom = client.CustomObjectsApi(api)

    def call(**kwargs: Any) -> Any:
        return custom.list_cluster_custom_object(
            resource.group, resource.version, resource.plural, **kwargs
        )

    return call


@dataclass
class Page:
    items: list[dict[str, Any]]
    # True on the first page after an expired continue token: drop what came before.
    restarted: bool = False


@dataclass
class Listing:
    """A paged list in progress. Iterate `pages()`; afterwards `resource_version`/`absent`."""

    api: client.ApiClient
    resource: Resource
    page_size: int = 500
    resource_version: str = ""
    absent: bool = False
    count: int = 0
    requests: int = 0
    restarts: int = 0
    restart_reason: str = ""  # the error that restarted the list last
    _call: Callable[..., Any] | None = field(default=None, repr=False)

    def pages(self) -> Iterator[Page]:
        call = self._call or _list_call(self.api, self.resource)
        token = ""
        restarted = False
        while True:
            kwargs: dict[str, Any] = {"limit": self.page_size, "_preload_content": False}
            if token:
                kwargs["_continue"] = token
            if self.resource.field_selector:
                kwargs["field_selector"] = self.resource.field_selector
            try:
                self.requests += 1
                body = _read(call, kwargs, f"listing {self.resource.full_name}")
            except KubeError as exc:
                if exc.status == 404 and self.resource.optional and not token:
                    self.absent = True
                    self.resource_version = ""
                    return
                if exc.status == 410 and token and self.restarts < MAX_LIST_RESTARTS:
                    # The continue token expired: a consistent list must start again.
                    logger.info(
                        "%s: continue token expired, restarting the list", self.resource.full_name
                    )
                    self.restarts += 1
                    self.restart_reason = str(exc)
                    self.count = 0
                    token = ""
                    restarted = True
                    continue
                raise
            metadata = body.get("metadata") or {}
            items = body.get("items") or []
            self.count += len(items)
            token = metadata.get("continue") or ""
            if not token:
                self.resource_version = str(metadata.get("resourceVersion") or "")
            yield Page(items=items, restarted=restarted)
            restarted = False
            if not token:
                return

    def pages_prefetched(self, depth: int = 2) -> Iterator[Page]:
        """`pages()`, with the next page requested and decoded while this one is processed.

        The API server takes most of a big list's time producing pages; reading ahead in a
        thread lets the caller turn a page into rows meanwhile. Errors surface in order.
        """
        out: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
        stop = threading.Event()

        def produce() -> None:
            try:
                for page in self.pages():
                    while not stop.is_set():
                        try:
                            out.put(("page", page), timeout=0.5)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                out.put(("end", None))
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                out.put(("error", exc))

        thread = threading.Thread(target=produce, name=f"list-{self.resource.kind}", daemon=True)
        thread.start()
        try:
            while True:
                kind, value = out.get()
                if kind == "page":
                    yield value
                elif kind == "end":
                    return
                else:
                    raise value
        finally:
            stop.set()
            thread.join(timeout=5)

    def all(self) -> list[dict[str, Any]]:
        """Every item (fine for small lists; big ones should consume `pages()`)."""
        items: list[dict[str, Any]] = []
        for page in self.pages():
            if page.restarted:
                items.clear()
            items.extend(page.items)
        return items


def objects_list(api: client.ApiClient, resource: Resource, *, page_size: int = 500) -> Listing:
    return Listing(api=api, resource=resource, page_size=page_size)


def _read(call: Callable[..., Any], kwargs: dict[str, Any], doing: str) -> dict[str, Any]:
    """One request, decoded with orjson; every failure becomes a KubeError."""
    kwargs.setdefault("_request_timeout", LIST_TIMEOUT)
    try:
        response = call(**kwargs)
        try:
            raw = response.data
        finally:
            response.release_conn()
    except ApiException as exc:
        raise error_from_api_exception(exc, doing) from exc
    except (Urllib3Error, OSError) as exc:
        raise KubeError(f"{doing}: no answer from the API server ({exc})") from exc
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise KubeError(
            f"{doing}: the API server answered something that is not JSON ({exc})"
        ) from exc
    if not isinstance(body, dict):
        raise KubeError(
            f"{doing}: the API server answered a JSON {type(body).__name__}, not an object"
        )
    return body


# --- which cluster is this? ---------------------------------------------------------------


@dataclass(frozen=True)
class ClusterIdentity:
    """What tells one incarnation of a cluster from another that has the same name.

    `uid`: the kube-system namespace's uid ("" when it cannot be read: 403 without get on
    namespaces, or 404). `resource_version`: the API server's current resourceVersion
    (from a one-item list of nodes), which only grows within one etcd.
    """

    uid: str
    resource_version: str


def cluster_identity(api: client.ApiClient) -> ClusterIdentity:
    """Two small reads. Raises KubeError when the API server cannot be read at all."""
    core = client.CoreV1Api(api)
    uid = ""
    try:
        body = _read(
            core.read_namespace,
            {"name": "kube-system", "_preload_content": False},
            "reading namespace kube-system",
        )
        uid = str((body.get("metadata") or {}).get("uid") or "")
    except KubeError as exc:
        # Not being allowed to read namespaces (or a cluster without kube-system) only
        # costs the uid check; the resourceVersion check below still works.
        if exc.status not in (403, 404):
            raise
    nodes = _read(
        core.list_node, {"limit": 1, "_preload_content": False}, "listing nodes (limit 1)"
    )
    version = str((nodes.get("metadata") or {}).get("resourceVersion") or "")
    return ClusterIdentity(uid=uid, resource_version=version)


# --- watches ------------------------------------------------------------------------------


class WatchExpired(KubeError):
    """The resourceVersion a watch resumed from is too old (410 Gone): list again."""


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    object: dict[str, Any]

    @property
    def resource_version(self) -> str:
        return str((self.object.get("metadata") or {}).get("resourceVersion") or "")


def objects_watch(
    api: client.ApiClient,
    resource: Resource,
    *,
    resource_version: str,
    timeout_seconds: int = 300,
    on_response: Callable[[Any], None] | None = None,
) -> Iterator[WatchEvent]:
    """Events after `resource_version`, with bookmarks, until the server ends the watch.

    Raises WatchExpired when the version is too old (the caller re-lists and resumes from
    the list's resourceVersion), KubeError on any other failure. `on_response` receives
    the raw HTTP response so another thread can close it to stop the watch.
    """
    doing = f"watching {resource.full_name}"
    kwargs: dict[str, Any] = {
        "watch": True,
        "allow_watch_bookmarks": True,
        "timeout_seconds": timeout_seconds,
        "_preload_content": False,
        "_request_timeout": (10.0, timeout_seconds + 30.0),
    }
    if resource_version:
        kwargs["resource_version"] = resource_version
    if resource.field_selector:
        kwargs["field_selector"] = resource.field_selector
    try:
        response = _list_call(api, resource)(**kwargs)
    except ApiException as exc:
        error = error_from_api_exception(exc, doing)
        if exc.status == 410:
            raise WatchExpired(error.message, status=410, reason=error.reason) from exc
        raise error from exc
    except (Urllib3Error, OSError) as exc:
        raise KubeError(f"{doing}: no answer from the API server ({exc})") from exc
    if on_response is not None:
        on_response(response)
    try:
        for line in _lines(response, doing):
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                logger.warning("%s: skipped a line that is not JSON: %.200r", doing, line)
                continue
            kind = event.get("type")
            obj = event.get("object") or {}
            if kind == "ERROR":
                code = int(obj.get("code") or 0)
                message = f"{doing}: {obj.get('message') or 'error'} (HTTP {code})"
                if code == 410:
                    raise WatchExpired(message, status=410, reason=obj.get("reason") or "Expired")
                raise KubeError(message, status=code, reason=obj.get("reason") or "")
            if kind in {"ADDED", "MODIFIED", "DELETED", "BOOKMARK"} and isinstance(obj, dict):
                yield WatchEvent(kind, obj)
    finally:
        response.release_conn()


def _lines(response: Any, doing: str) -> Iterator[bytes]:
    buffer = b""
    try:
        for chunk in response.stream(amt=None, decode_content=False):
            buffer += chunk
            while True:
                cut = buffer.find(b"\n")
                if cut < 0:
                    break
                line, buffer = buffer[:cut], buffer[cut + 1 :]
                if line.strip():
                    yield line
    except (Urllib3Error, OSError) as exc:
        if getattr(response, "closed", False):
            return  # closed on purpose (stop requested)
        raise KubeError(f"{doing}: the connection broke ({exc})") from exc
    if buffer.strip():
        yield buffer
