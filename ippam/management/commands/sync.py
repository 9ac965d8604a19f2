"""manage.py sync [--cluster NAME] [--json]: one full sync now, with progress and counts."""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import CommandError, CommandParser

from ippam.kube.client import KubeError
from ippam.locks import cluster_sync_lock
from ippam.management.base import ServiceCommand
from ippam.selectors.clusters import sync_running_since
from ippam.sync import cluster_sync_full
from ippam.sync.cli import clusters_selected, dump_json, table

KIND_LABELS = {
    "nads": "NetworkAttachmentDefinitions",
    "ippools": "IPPools",
    "reservations": "OverlappingRangeIPReservations",
    "nodeslicepools": "NodeSlicePools",
    "nodes": "Nodes",
    "pods": "Pods",
    "events": "Events (pods)",
}


class Command(ServiceCommand):
    help = "Run one full sync of every cluster (or --cluster NAME) and print what it found."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--cluster", help="sync only this cluster (see: manage.py cluster list)"
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.add_argument(
            "--force", action="store_true", help="re-parse objects even if unchanged"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        clusters = clusters_selected(options.get("cluster"))
        as_json = options["json"]
        tty = not as_json and hasattr(self.stdout, "isatty") and self.stdout.isatty()
        results: list[dict[str, Any]] = []
        failed: list[str] = []
        for cluster in clusters:
            started = time.monotonic()
            progress = self._progress(cluster.name) if tty else None
            with cluster_sync_lock(cluster) as held:
                if not held:
                    since = sync_running_since(cluster)
                    running = (
                        f"another sync is running (started {since:%Y-%m-%d %H:%M:%S} UTC)"
                        if since
                        else "another sync or a watcher's batch holds its lock"
                    )
                    message = (
                        f"cluster {cluster.name}: {running}; wait for it and look at "
                        "manage.py cluster list"
                    )
                    results.append({"cluster": cluster.name, "outcome": "locked", "error": message})
                    failed.append(message)
                    continue
                try:
                    run = cluster_sync_full(
                        cluster=cluster, progress=progress, force=options["force"]
                    )
                except KubeError as exc:
                    if tty:
                        self.stdout.write("\r\033[K", ending="")
                    message = (
                        f"cluster {cluster.name}: {exc}. Nothing was deleted; the last good data is kept. "
                        "Check that the API server answers (kubectl --kubeconfig "
                        f"{cluster.kubeconfig or '<in-cluster>'} get nodes) and run the sync again."
                    )
                    results.append(
                        {"cluster": cluster.name, "outcome": "failed", "error": str(exc)}
                    )
                    failed.append(message)
                    continue
            seconds = time.monotonic() - started
            if tty:
                self.stdout.write("\r\033[K", ending="")
            results.append(
                {
                    "cluster": cluster.name,
                    "outcome": run.outcome,
                    "seconds": round(seconds, 3),
                    "counts": {k: run.counts.get(k, 0) for k in KIND_LABELS},
                    "written": run.counts.get("written", {}),
                    "deleted": run.counts.get("deleted", {}),
                    "absent": run.counts.get("absent", []),
                    "run": run.pk,
                }
            )
        if as_json:
            self.stdout.write(dump_json(results))
        else:
            for result in results:
                if result["outcome"] != "ok":
                    continue
                self.stdout.write(
                    f"cluster {result['cluster']}: synced in {result['seconds']:.2f}s"
                )
                rows = []
                for kind, label in KIND_LABELS.items():
                    listed = "absent" if kind in result["absent"] else result["counts"][kind]
                    rows.append(
                        (
                            label,
                            listed,
                            result["written"].get(kind, 0),
                            result["deleted"].get(kind, 0),
                        )
                    )
                self.stdout.write(table(("KIND", "LISTED", "WRITTEN", "DELETED"), rows))
        if failed:
            if as_json:
                sys.exit(1)
            raise CommandError("\n".join(failed))

    def _progress(self, name: str):
        def show(kind: str, phase: str, count: int) -> None:
            text = (
                f"{name}: writing to the database"
                if phase == "writing"
                else f"{name}: listing {kind}: {count:,}"
            )
            self.stdout.write(f"\r\033[K{text}", ending="")
            self.stdout.flush()

        return show
