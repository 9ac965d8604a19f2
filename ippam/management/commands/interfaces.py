"""manage.py interfaces [--cluster NAME] [--node NAME] [--json]: every pod interface."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from ippam.management.base import ServiceCommand
from ippam.models import Node, Pod, PodInterface
from ippam.sync.cli import clusters_selected, dump_json, table


class Command(ServiceCommand):
    help = (
        "List pod interfaces from Multus network-status: node, pod, interface, network, IPs, MAC."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cluster", help="only this cluster")
        parser.add_argument("--node", help="only pods on this node")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        clusters = clusters_selected(options.get("cluster"))
        node = options.get("node")
        interfaces = PodInterface.objects.filter(cluster__in=clusters).select_related(
            "pod", "cluster"
        )
        troubled = (
            Pod.objects.filter(cluster__in=clusters)
            .exclude(annotation_problems=[])
            .select_related("cluster")
        )
        if node:
            if (
                not Node.objects.filter(cluster__in=clusters, name=node).exists()
                and not Pod.objects.filter(cluster__in=clusters, node_name=node).exists()
            ):
                known = sorted(
                    set(Node.objects.filter(cluster__in=clusters).values_list("name", flat=True))
                )
                shown = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "")
                raise CommandError(f"no node named {node!r} (known: {shown or 'none synced yet'})")
            interfaces = interfaces.filter(pod__node_name=node)
            troubled = troubled.filter(node_name=node)
        data = [
            {
                "cluster": i.cluster.name,
                "node": i.pod.node_name,
                "namespace": i.pod.namespace,
                "pod": i.pod.name,
                "interface": i.interface,
                "network": i.network_name,
                "ips": i.ips,
                "mac": i.mac,
                "default": i.default,
                "problems": i.pod.annotation_problems,
            }
            for i in interfaces.order_by(
                "cluster__name", "pod__node_name", "pod__namespace", "pod__name", "interface"
            )
        ]
        listed = {(d["cluster"], d["namespace"], d["pod"]) for d in data}
        for pod in troubled.order_by("cluster__name", "namespace", "name"):
            if (pod.cluster.name, pod.namespace, pod.name) not in listed:
                data.append(
                    {
                        "cluster": pod.cluster.name,
                        "node": pod.node_name,
                        "namespace": pod.namespace,
                        "pod": pod.name,
                        "interface": "",
                        "network": "",
                        "ips": [],
                        "mac": "",
                        "default": False,
                        "problems": pod.annotation_problems,
                    }
                )
        if options["json"]:
            self.stdout.write(dump_json(data))
            return
        if not data:
            self.stdout.write("no pod interfaces synced (run: manage.py sync)")
            return
        rows = [
            (
                d["cluster"],
                d["node"] or "-",
                d["namespace"],
                d["pod"],
                d["interface"] or "-",
                d["network"] or "-",
                " ".join(d["ips"]) or "-",
                d["mac"] or "-",
            )
            for d in data
        ]
        self.stdout.write(
            table(
                ("CLUSTER", "NODE", "NAMESPACE", "POD", "INTERFACE", "NETWORK", "IPS", "MAC"), rows
            )
        )
        seen = set()
        for d in data:
            key = (d["cluster"], d["namespace"], d["pod"])
            if d["problems"] and key not in seen:
                seen.add(key)
                for problem in d["problems"]:
                    self.stdout.write(
                        f"problem: {d['cluster']} {d['namespace']}/{d['pod']}: {problem}"
                    )
