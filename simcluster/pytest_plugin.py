"""pytest fixtures for simcluster.

- `simcluster_server` (session): one server on a free 127.0.0.1 port in a daemon thread.
- `simcluster` (function): resets that server to the `empty` scenario and returns a
  `SimCluster` handle (url, kubeconfig, load/seed, store access, faults, request log).

Store access goes straight to the in-memory store (thread-safe): every change bumps the
cluster resourceVersion and emits watch events exactly as the HTTP API would.
"""

from __future__ import annotations

import builtins
import copy
import os
import tempfile
import uuid
from collections.abc import Callable

import pytest

from .resources import BY_PLURAL
from .runtime import Running, write_kubeconfig
from .server import SimServer
from .store import ApiError


class SimCluster:
    def __init__(self, running: Running, kubeconfig: str):
        self._running = running
        self.server: SimServer = running.server
        self.url: str = running.url
        self.kubeconfig: str = kubeconfig
        self._loaded: tuple[str, int, int] = ("empty", 1, self.store.rv)
        self.dead = False

    # ---- scenarios

    @property
    def store(self):
        return self.server.store

    @property
    def ground_truth(self) -> dict:
        return self.server.ground_truth

    def load(self, scenario: str, seed: int = 1) -> None:
        """Replace everything with a scenario (drops watches, clears faults and the request log)."""
        self._loaded = (scenario, seed, self.store.rv)
        self.server.reset(scenario, seed)

    def reset(self) -> None:
        self.load("empty", 1)

    def rebuild(self, change: dict[str, Callable[[dict], None]] | None = None) -> None:
        """The cluster re-created under the same name: the last loaded scenario again, from
        the same resourceVersion counter, so every object gets the same resourceVersion as
        before but a new uid (kind/k3d re-create, etcd restore). `change` maps a plural
        to a function applied to each of its objects afterwards, still keeping their
        resourceVersions (e.g. the new cluster scheduled the pods on other nodes).
        Objects seeded after the load are gone, as they would be. Drops watches."""
        scenario, seed, start_rv = self._loaded
        with self.store.lock:
            self.store.rv = start_rv
            self.server.reset(scenario, seed)
            # Scenarios draw uids from their seed; a new etcd never repeats one.
            for plural in list(self.store.data):
                self.store.rewrite(plural, _new_uid)
            for plural, fn in (change or {}).items():
                self.store.rewrite(plural, fn)

    # ---- a server that can die (only with the `simcluster_own` fixture)

    def kill(self) -> None:
        """Stop serving: open connections drop, new ones are refused. The data stays."""
        self._running.stop()
        self.dead = True

    def revive(self) -> None:
        """Serve the same store again on the same port (the API server restarted)."""
        self._running = Running(self.server, self._running.port)
        self.dead = False

    def seed(self, objects: dict) -> None:
        """Upsert builder output ({plural: [obj, ...]}); emits ADDED/MODIFIED events."""
        self.server.store.load_objects(objects)

    # ---- store access: these plant state (no admission: a test may need an object that no
    # write through a real apiserver makes, e.g. one stored before its CRD tightened). The
    # product's writes go over HTTP and are admitted.

    @staticmethod
    def _ns(plural: str, obj: dict) -> str | None:
        t = BY_PLURAL[plural]
        return (obj.get("metadata") or {}).get("namespace") if t.namespaced else None

    def create(self, plural: str, obj: dict) -> dict:
        return self.store.create(plural, obj, self._ns(plural, obj), admit=False)

    def get(self, plural: str, namespace: str | None, name: str) -> dict | None:
        try:
            return self.store.get(plural, namespace, name)
        except ApiError as err:
            if err.code == 404:
                return None
            raise

    def replace(self, plural: str, obj: dict) -> dict:
        """PUT semantics: a metadata.resourceVersion in obj is a precondition (409 on mismatch).

        Without one, the current version is used (so tests can overwrite custom resources)."""
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        if not md.get("resourceVersion"):
            cur = self.store.get(plural, self._ns(plural, obj), md["name"])
            md["resourceVersion"] = cur["metadata"]["resourceVersion"]
        return self.store.replace(plural, obj, self._ns(plural, obj), md["name"], admit=False)

    def patch(self, plural: str, namespace: str | None, name: str, merge_patch: dict) -> dict:
        return self.store.patch(plural, namespace, name, merge_patch, "merge", admit=False)

    def json_patch(self, plural: str, namespace: str | None, name: str, ops: list) -> dict:
        return self.store.patch(plural, namespace, name, ops, "json", admit=False)

    def delete(self, plural: str, namespace: str | None, name: str) -> None:
        self.store.delete(plural, namespace, name)

    def list(self, plural: str) -> list[dict]:
        _, entries = self.store.select(plural)
        return [e.obj() for e in entries]

    # ---- faults and observation

    def fault(
        self,
        path_regex: str,
        status: int | None = None,
        count: int = 1,
        latency: float = 0.0,
        method: str | None = None,
    ) -> None:
        """The next `count` requests whose path matches get `status` (default 500) after
        `latency` seconds. With latency and no status, they are only delayed."""
        self.server.add_fault(path_regex, status, count, latency, method)

    def clear_faults(self) -> None:
        with self.server.fault_lock:
            self.server.faults.clear()

    def drop_watches(self) -> None:
        self.store.drop_watches()

    def compact(self) -> None:
        self.store.compact()

    @property
    def requests(self) -> builtins.list[dict]:  # `list` is a method of this class
        return [
            {k: r[k] for k in ("method", "path", "query", "status")}
            for r in list(self.server.requests)
        ]

    def open_watches(self, plural: str | None = None) -> int:
        return self.store.open_watches(plural)

    def wait_for_watches(
        self, count: int, timeout: float = 10.0, plural: str | None = None
    ) -> None:
        """Wait until `count` watches are open (a readiness signal; no sleeping in tests)."""
        got = self.store.wait_for_watches(count, timeout, plural)
        if got < count:
            raise AssertionError(f"{got} watches open after {timeout}s, expected {count}")

    def clear_requests(self) -> None:
        self.server.requests.clear()

    def remove_crd(self, plural: str) -> None:
        self.server.remove_crd(plural)

    def start_churn(self, events_per_second: float = 50.0, seed: int = 1) -> None:
        """Live traffic through the store (stopped by the next reset/load)."""
        self.server.start_churn(events_per_second, seed)

    def stop_churn(self) -> None:
        self.server.stop_churn()

    @property
    def resource_version(self) -> str:
        return str(self.store.rv)

    @property
    def bookmark_interval(self) -> float:
        return self.server.bookmark_interval

    @bookmark_interval.setter
    def bookmark_interval(self, value: float) -> None:
        self.server.bookmark_interval = value


def _new_uid(obj: dict) -> None:
    obj.setdefault("metadata", {})["uid"] = str(uuid.uuid4())


@pytest.fixture(scope="session")
def simcluster_server():
    import simcluster

    server = SimServer(bookmark_interval=0.5)
    running = Running(server)
    simcluster._default_store = server.store
    d = tempfile.mkdtemp(prefix="simcluster-")
    kubeconfig = write_kubeconfig(os.path.join(d, "kubeconfig"), running.url)
    handle = SimCluster(running, kubeconfig)
    yield handle
    running.stop()


@pytest.fixture
def simcluster_own():
    """A server of its own (not the session's), for tests that kill and revive it."""
    server = SimServer(bookmark_interval=0.5)
    running = Running(server)
    d = tempfile.mkdtemp(prefix="simcluster-own-")
    handle = SimCluster(running, write_kubeconfig(os.path.join(d, "kubeconfig"), running.url))
    handle.reset()
    yield handle
    if not handle.dead:
        handle._running.stop()


@pytest.fixture
def simcluster(simcluster_server: SimCluster) -> SimCluster:
    simcluster_server.server.bookmark_interval = 0.5
    simcluster_server.reset()
    return simcluster_server
