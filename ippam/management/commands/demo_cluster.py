"""manage.py demo_cluster --if-none | --serve: the simulated cluster `make run` shows.

--if-none  registers a cluster named `demo` (simulated, kubeconfig var/demo-kubeconfig)
           when no cluster is configured at all.
--serve    (Procfile.dev) runs simcluster's demo scenario with live churn for that cluster,
           writes the kubeconfig, runs a first sync and seeds a month of pool history
           where there is none (ippam.demoseries); it removes the kubeconfig when it
           stops. Without a simulated `demo` cluster it idles quietly, so honcho does not stop
           the other processes. IPPAM_DEMO_PORT picks the port (default 6443).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ippam.clusters import cluster_add
from ippam.kube.client import KubeError
from ippam.models import Cluster

DEMO_NAME = "demo"
DEFAULT_PORT = 6443


def demo_kubeconfig() -> Path:
    return Path(settings.VAR_DIR) / "demo-kubeconfig"


def kubeconfig_port(path: Path) -> int:
    try:
        config = yaml.safe_load(path.read_text()) or {}
        server = config["clusters"][0]["cluster"]["server"]
        return urlparse(server).port or DEFAULT_PORT
    except (OSError, KeyError, IndexError, TypeError, yaml.YAMLError):
        return DEFAULT_PORT


class Command(BaseCommand):
    help = "Register (--if-none) or serve (--serve) the simulated demo cluster."

    def add_arguments(self, parser: CommandParser) -> None:
        mode = parser.add_mutually_exclusive_group(required=True)
        mode.add_argument(
            "--if-none", action="store_true", help="register `demo` when no cluster exists"
        )
        mode.add_argument(
            "--serve", action="store_true", help="run simcluster for the `demo` cluster"
        )
        parser.add_argument("--churn", type=float, default=2.0, help="simulated changes per second")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_none"]:
            self._register(verbosity=options["verbosity"])
        else:
            self._serve(options["churn"])

    def _register(self, *, verbosity: int = 1) -> None:
        if Cluster.objects.exists():
            if verbosity:
                self.stdout.write("clusters are configured; no demo cluster added")
            return
        path = demo_kubeconfig()
        cluster_add(name=DEMO_NAME, kubeconfig=str(path), simulated=True, check=False)
        self.stdout.write(
            f"no cluster configured: registered the simulated cluster `demo` ({path})"
        )

    def _serve(self, churn: float) -> None:
        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        signal.signal(signal.SIGINT, lambda *_: stopping.set())
        cluster = Cluster.objects.filter(name=DEMO_NAME, simulated=True).first()
        if cluster is None:
            self.stdout.write("no simulated `demo` cluster; nothing to serve (idle)")
            while not stopping.wait(3600):
                pass
            return
        path = Path(cluster.kubeconfig) if cluster.kubeconfig else demo_kubeconfig()
        port = int(os.environ.get("IPPAM_DEMO_PORT") or 0) or (
            kubeconfig_port(path) if path.exists() else DEFAULT_PORT
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "simcluster", "--scenario", "demo", "--port", str(port),
            "--kubeconfig", str(path), "--churn", str(churn),
        ]  # fmt: skip
        before = path.stat().st_mtime if path.exists() else 0.0
        child = subprocess.Popen(command, cwd=settings.BASE_DIR)
        try:
            if not self._wait_ready(child, path, before, stopping):
                if child.poll() is not None:
                    raise CommandError(
                        f"simcluster exited with {child.returncode}; is port {port} free? "
                        "(set IPPAM_DEMO_PORT to use another port)"
                    )
                return
            self._first_sync(cluster)
            while child.poll() is None and not stopping.wait(1):
                pass
        finally:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()
            # Nothing serves the demo cluster now: without its kubeconfig the watcher and the
            # worker wait for the next `make run` quietly instead of failing to connect.
            path.unlink(missing_ok=True)

    def _wait_ready(
        self, child: subprocess.Popen[bytes], path: Path, before: float, stopping: threading.Event
    ) -> bool:
        deadline = time.monotonic() + 300  # the scale scenario takes a while to build
        while time.monotonic() < deadline and not stopping.is_set():
            if child.poll() is not None:
                return False
            if path.exists() and path.stat().st_mtime > before:
                return True
            stopping.wait(0.2)
        return False

    def _first_sync(self, cluster: Cluster) -> None:
        from ippam.history import demo_history_seed
        from ippam.locks import cluster_sync_lock
        from ippam.sync import cluster_sync_full

        cluster.refresh_from_db()
        with cluster_sync_lock(cluster) as held:
            if not held:
                return
            try:
                run = cluster_sync_full(cluster=cluster)
                self.stdout.write(f"demo cluster synced: {run.counts.get('pods', 0)} pods")
                # A month of history for pools that have none, so the charts and the
                # forecast show on the first run.
                demo_history_seed(cluster=cluster)
            except KubeError as exc:
                self.stderr.write(
                    f"first sync of the demo cluster failed: {exc} (the next scheduled sync retries)"
                )
