"""manage.py cluster add|list|remove: the clusters ippam syncs."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from ippam.clusters import ClusterError, cluster_add, cluster_remove
from ippam.management.base import ServiceCommand
from ippam.models import Cluster
from ippam.sync.cli import dump_json, table


class Command(ServiceCommand):
    help = "Register, list and remove the Kubernetes clusters ippam syncs."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="register a cluster")
        add.add_argument("name", help="a short name (letters, digits, - and _)")
        how = add.add_mutually_exclusive_group(required=True)
        how.add_argument("--kubeconfig", help="path to a kubeconfig file")
        how.add_argument("--in-cluster", action="store_true", help="use this pod's service account")
        add.add_argument(
            "--context", default="", help="kubeconfig context (default: its current-context)"
        )
        add.add_argument("--simulated", action="store_true", help="served by simcluster")
        add.add_argument(
            "--no-check", action="store_true", help="do not try to load the kubeconfig now"
        )
        lst = sub.add_parser("list", help="list the registered clusters")
        lst.add_argument("--json", action="store_true", help="machine-readable output")
        rm = sub.add_parser("remove", help="forget a cluster and all its synced data")
        rm.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "add":
                cluster = cluster_add(
                    name=options["name"],
                    kubeconfig=options.get("kubeconfig") or "",
                    context=options.get("context") or "",
                    in_cluster=bool(options.get("in_cluster")),
                    simulated=bool(options.get("simulated")),
                    check=not options.get("no_check"),
                )
                how = "in-cluster service account" if cluster.in_cluster else cluster.kubeconfig
                self.stdout.write(
                    f"registered cluster {cluster.name} ({how}); a first sync is queued"
                )
            elif action == "remove":
                cluster_remove(name=options["name"])
                self.stdout.write(f"removed cluster {options['name']} and its synced data")
            else:
                self._list(as_json=options["json"])
        except ClusterError as exc:
            raise CommandError(str(exc)) from exc
        except Exception as exc:
            from django.core.exceptions import ValidationError

            if isinstance(exc, ValidationError):
                raise CommandError("; ".join(exc.messages)) from exc
            raise

    def _list(self, *, as_json: bool) -> None:
        clusters = list(Cluster.objects.order_by("name"))
        data = [
            {
                "name": c.name,
                "connection": "in-cluster" if c.in_cluster else c.kubeconfig,
                "context": c.context,
                "simulated": c.simulated,
                "enabled": c.enabled,
                "sync_state": c.sync_state,
                "sync_error": c.sync_error,
                "sync_notice": c.sync_notice,
                "last_good_sync": c.last_good_sync.isoformat() if c.last_good_sync else None,
            }
            for c in clusters
        ]
        if as_json:
            self.stdout.write(dump_json(data))
            return
        if not data:
            self.stdout.write(
                "no clusters; add one with: manage.py cluster add NAME --kubeconfig PATH"
            )
            return
        rows = [
            (
                d["name"],
                d["connection"],
                d["context"] or "-",
                d["sync_state"],
                d["last_good_sync"] or "never",
                str(d["sync_error"])[:60],
            )
            for d in data
        ]
        self.stdout.write(
            table(("NAME", "CONNECTION", "CONTEXT", "STATE", "LAST GOOD SYNC", "ERROR"), rows)
        )
