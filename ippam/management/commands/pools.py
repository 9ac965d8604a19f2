"""manage.py pools [--cluster NAME] [--json]: every IPPool with its usage."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser
from django.db.models import Prefetch

from ippam.management.base import ServiceCommand
from ippam.models import IPPool, NADRange
from ippam.sync.cli import clusters_selected, dump_json, table


class Command(ServiceCommand):
    help = "List IPPools: range, network, usable, allocated, free, utilization, feeding NADs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cluster", help="only this cluster")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        clusters = clusters_selected(options.get("cluster"))
        pools = (
            IPPool.objects.filter(cluster__in=clusters)
            .select_related("cluster")
            .prefetch_related(
                Prefetch("nad_ranges", queryset=NADRange.objects.select_related("nad"))
            )
            .order_by("cluster__name", "namespace", "name")
        )
        data = []
        shown = []
        for pool in pools:
            nads = sorted({f"{r.nad.namespace}/{r.nad.name}" for r in pool.nad_ranges.all()})
            numbers = pool.numbers
            shown.append(numbers)
            data.append(
                {
                    "cluster": pool.cluster.name,
                    "namespace": pool.namespace,
                    "name": pool.name,
                    "range": pool.range,
                    "network_name": pool.network_name,
                    "usable": numbers.usable,
                    "allocated": numbers.allocated,
                    "free": numbers.free,
                    "utilization_percent": round(numbers.utilization * 100, 1),
                    "nads": nads,
                    "problems": pool.problems,
                }
            )
        if options["json"]:
            self.stdout.write(dump_json(data))
            return
        if not data:
            self.stdout.write("no IPPools synced yet (run: manage.py sync)")
            return
        rows = [
            (
                d["cluster"],
                d["namespace"],
                d["name"],
                d["range"],
                d["network_name"] or "-",
                f"{n.usable:,}",
                f"{n.allocated:,}",
                f"{n.free:,}",
                n.percent,
                ", ".join(d["nads"]) or "(no NAD)",
            )
            for d, n in zip(data, shown, strict=True)
        ]
        headers = (
            "CLUSTER",
            "NAMESPACE",
            "NAME",
            "RANGE",
            "NETWORK",
            "USABLE",
            "ALLOCATED",
            "FREE",
            "USED",
            "NADS",
        )
        self.stdout.write(table(headers, rows))
        for d in data:
            for problem in d["problems"]:
                self.stdout.write(
                    f"problem: {d['cluster']} {d['namespace']}/{d['name']}: {problem}"
                )
