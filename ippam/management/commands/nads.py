"""manage.py nads [--cluster NAME] [--json]: every NetworkAttachmentDefinition, parsed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from ippam.management.base import ServiceCommand
from ippam.models import NetworkAttachmentDefinition
from ippam.sync.cli import clusters_selected, dump_json, table


class Command(ServiceCommand):
    help = "List NADs: CNI type, IPAM type, master, mode, whether the config is valid, its ranges."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cluster", help="only this cluster")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        clusters = clusters_selected(options.get("cluster"))
        nads = (
            NetworkAttachmentDefinition.objects.filter(cluster__in=clusters)
            .select_related("cluster")
            .prefetch_related("ranges")
            .order_by("cluster__name", "namespace", "name")
        )
        data = [
            {
                "cluster": nad.cluster.name,
                "namespace": nad.namespace,
                "name": nad.name,
                "cni_type": nad.cni_type,
                "ipam_type": nad.ipam_type,
                "master": nad.master,
                "mode": nad.mode,
                "config_on_node": nad.config_on_node,
                "config_valid": nad.config is not None or nad.config_on_node,
                "problems": nad.problems,
                "ranges": [
                    {
                        "range": r.range,
                        "usable": int(r.usable),
                        "pool": r.pool_name,
                        "network_name": r.network_name,
                    }
                    for r in nad.ranges.all()
                ],
            }
            for nad in nads
        ]
        if options["json"]:
            self.stdout.write(dump_json(data))
            return
        if not data:
            self.stdout.write("no NADs synced yet (run: manage.py sync)")
            return
        rows = []
        for d in data:
            if d["config_on_node"]:
                valid = "on node"
            else:
                valid = "yes" if d["config_valid"] else "INVALID"
            ranges = ", ".join(f"{r['range']} ({r['usable']:,} usable)" for r in d["ranges"]) or "-"
            rows.append(
                (
                    d["cluster"],
                    d["namespace"],
                    d["name"],
                    d["cni_type"] or "-",
                    d["ipam_type"] or "-",
                    d["master"] or "-",
                    d["mode"] or "-",
                    valid,
                    len(d["problems"]),
                    ranges,
                )
            )
        headers = (
            "CLUSTER",
            "NAMESPACE",
            "NAME",
            "CNI",
            "IPAM",
            "MASTER",
            "MODE",
            "CONFIG",
            "PROBLEMS",
            "RANGES",
        )
        self.stdout.write(table(headers, rows))
        for d in data:
            for problem in d["problems"]:
                self.stdout.write(
                    f"problem: {d['cluster']} {d['namespace']}/{d['name']}: {problem}"
                )
