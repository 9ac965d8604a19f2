"""Many virtual clusters in one process: one SimServer (own store, own resourceVersions,
own watch streams) per cluster, each on its own port and event loop thread.

    python -m simcluster.fleet --clusters 20 --pods 7500 --kubeconfig-dir /tmp/fleet [--churn 200]

writes `fleet-00.yaml` ... one kubeconfig per cluster and serves until Ctrl-C. The `fleet`
scenario of each cluster is `scale` cut down (pods, nodes = pods / 30, NADs = max(10, pods / 75),
namespaces = 10), seeded by its index so the clusters differ; it is streamed into the
store as compact bytes like `scale` (about 5 MB of RSS per 1,000 pods, measured before
issue 25 made pods ~2.5x bigger; not re-measured).

Port per cluster rather than a path prefix: the official client and kubectl then need
nothing but an ordinary kubeconfig, and the server code stays single-cluster.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time

from .runtime import Running, write_kubeconfig
from .scenarios import load_scale
from .server import SimServer

log = logging.getLogger("simcluster.fleet")


def load_fleet_member(server: SimServer, index: int, pods: int) -> dict:
    """One fleet cluster: `scale` cut down to `pods` pods, seeded by its index."""
    with server.store.lock:
        server.store.clear()
        server.store.bootstrap()
        if pods:
            server.ground_truth = load_scale(
                server.store,
                seed=index + 1,
                nodes=max(1, pods // 30),
                pods=pods,
                nads=max(10, pods // 75),
                namespaces=10,
            )
        else:
            server.ground_truth = {"findings": [], "exhausted_pools": [], "failed_pods": []}
        server.scenario = "fleet"
        server.seed = index + 1
        server.store.compact()
    return server.ground_truth


class Fleet:
    """`count` clusters of `pods` pods each, served from this process until `stop()`."""

    def __init__(
        self,
        count: int,
        pods: int = 0,
        *,
        kubeconfig_dir: str,
        bookmark_interval: float = 1.0,
    ):
        self.running: list[Running] = []
        self.kubeconfigs: list[str] = []
        os.makedirs(kubeconfig_dir, exist_ok=True)
        for i in range(count):
            server = SimServer(bookmark_interval=bookmark_interval)
            load_fleet_member(server, i, pods)
            running = Running(server)
            self.running.append(running)
            path = os.path.join(kubeconfig_dir, f"fleet-{i:02d}.yaml")
            self.kubeconfigs.append(write_kubeconfig(path, running.url))

    @property
    def servers(self) -> list[SimServer]:
        return [r.server for r in self.running]

    def start_churn(self, events_per_second: float, seed: int = 1) -> None:
        """Spread `events_per_second` lifecycle steps evenly over the clusters."""
        each = events_per_second / max(1, len(self.running))
        for i, server in enumerate(self.servers):
            server.start_churn(each, seed + i)

    def stop_churn(self) -> None:
        for server in self.servers:
            server.stop_churn()

    def stop(self) -> None:
        self.stop_churn()
        for running in self.running:
            running.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="simcluster.fleet", description=__doc__)
    ap.add_argument("--clusters", type=int, default=20)
    ap.add_argument("--pods", type=int, default=7500, help="pods per cluster")
    ap.add_argument("--kubeconfig-dir", default=os.path.expanduser("~/.kube/simfleet"))
    ap.add_argument("--churn", type=float, default=0.0, help="events per second, whole fleet")
    ap.add_argument("--bookmark-interval", type=float, default=5.0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s simcluster.fleet %(message)s")
    started = time.monotonic()
    fleet = Fleet(
        args.clusters,
        args.pods,
        kubeconfig_dir=args.kubeconfig_dir,
        bookmark_interval=args.bookmark_interval,
    )
    if args.churn > 0:
        fleet.start_churn(args.churn)
    print(
        f"simcluster fleet: {args.clusters} clusters x {args.pods} pods loaded in "
        f"{time.monotonic() - started:.1f}s; kubeconfigs in {args.kubeconfig_dir}",
        flush=True,
    )
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    fleet.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
