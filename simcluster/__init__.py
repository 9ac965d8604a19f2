"""simcluster: a simulated Kubernetes API server for Multus + Whereabouts (not part of the product).

    python -m simcluster --scenario demo --port 8001 --kubeconfig /tmp/sim.kubeconfig

In tests use the `simcluster` fixture (simcluster.pytest_plugin), or start one yourself:

    from simcluster import start
    running = start(scenario="demo")   # a server on a free port in a daemon thread
    running.url, running.server.store, running.stop()
"""

from __future__ import annotations

from .builder import ClusterBuilder, orip_name, pool_name
from .store import ApiError, Store

__all__ = ["ApiError", "ClusterBuilder", "Store", "load_objects", "orip_name", "pool_name", "start"]

_default_store: Store | None = None


def start(scenario: str = "empty", seed: int = 1, port: int = 0):
    """Start a server in a background thread; returns a runtime.Running."""
    global _default_store
    from .runtime import Running
    from .server import SimServer

    server = SimServer()
    running = Running(server, port)
    if scenario != "empty":
        server.reset(scenario, seed)
    _default_store = server.store
    return running


def load_objects(objects: dict, store: Store | None = None) -> None:
    """Upsert builder output ({plural: [obj, ...]}) into a store (default: the last started)."""
    store = store or _default_store
    if store is None:
        raise RuntimeError("no simcluster is running in this process")
    store.load_objects(objects)
