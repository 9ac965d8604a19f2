"""manage.py leaks [--cluster NAME] [--kind KIND] [--state STATE] [--detect] [--json].

Besides the findings it lists, as kind "problem", the reservations and node-slice pools
ippam could not read as whereabouts writes them (they have no page of their own): the leak
rules never act on them, and a person should look.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser
from django.db.models import OuterRef, Subquery

from ippam.leaks import leaks_detect
from ippam.management.base import ServiceCommand
from ippam.models import Alert, Finding, NodeSlicePool, OverlappingRangeIPReservation
from ippam.sync.cli import clusters_selected, dump_json, table


class Command(ServiceCommand):
    help = (
        "List leak findings (orphaned/stale allocations, untracked and duplicate addresses, "
        "orphaned reservations, overlapping ranges) with their reason and alert state."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cluster", help="only this cluster")
        parser.add_argument(
            "--kind",
            choices=[*Finding.Kind.values, PROBLEM],
            help="only this kind (problem: reservations and node-slice pools ippam cannot read)",
        )
        parser.add_argument("--state", choices=Finding.State.values, help="only leaked or suspect")
        parser.add_argument("--detect", action="store_true", help="re-run detection first")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        clusters = clusters_selected(options.get("cluster"))
        if options["detect"]:
            for cluster in clusters:
                result = leaks_detect(cluster=cluster)
                self.stderr.write(
                    f"{cluster.name}: {result.total} findings ({result.suspect} suspect, "
                    f"{result.held_in_grace} held in grace) in {result.seconds:.2f}s"
                )
        alert_state = Subquery(
            Alert.objects.filter(cluster=OuterRef("cluster"), identity=OuterRef("identity")).values(
                "state"
            )[:1]
        )
        findings = (
            Finding.objects.filter(cluster__in=clusters)
            .select_related("cluster", "pool")
            .annotate(alert_state=alert_state)
            .order_by("cluster__name", "kind", "ip", "identity")
        )
        kind = options.get("kind")
        if kind:
            findings = findings.filter(kind=kind)
        if options.get("state"):
            findings = findings.filter(state=options["state"])
        data: list[dict[str, Any]] = [
            {
                "id": f.pk,
                "cluster": f.cluster.name,
                "kind": f.kind,
                "state": f.state,
                "ip": str(f.ip) if f.ip is not None else "",
                "pool": f"{f.pool.namespace}/{f.pool.name}" if f.pool else "",
                "podref": f.podref,
                "node": f.node_name,
                "reason": f.reason,
                "first_seen": f.first_seen.isoformat(),
                "alert_state": f.alert_state or "",
            }
            for f in findings
        ]
        if kind in (None, PROBLEM) and not options.get("state"):
            data += _odd_objects(clusters)
        if options["json"]:
            self.stdout.write(dump_json(data))
            return
        if not data:
            self.stdout.write(
                "no findings"
                + (" (run with --detect to recompute)" if not options["detect"] else "")
            )
            return
        headers = ["ID", "KIND", "STATE", "IP", "POOL", "PODREF", "NODE", "FIRST SEEN", "ALERT"]
        rows = [
            [
                d["id"],
                d["kind"],
                d["state"],
                d["ip"],
                d["pool"],
                d["podref"],
                d["node"],
                d["first_seen"][:19],
                d["alert_state"],
            ]
            for d in data
            if d["kind"] != PROBLEM
        ]
        if rows:
            self.stdout.write(table(headers, rows))
            self.stdout.write("")
        for d in data:
            if d["kind"] == PROBLEM:
                self.stdout.write(f"problem: {d['cluster']} {d['object']}: {d['reason']}")
            else:
                self.stdout.write(f"{d['id']}: {d['reason']}")


PROBLEM = "problem"


def _odd_objects(clusters: Any) -> list[dict[str, Any]]:
    """Reservations and node-slice pools with problems, as entries of kind "problem"."""
    data: list[dict[str, Any]] = []
    kinds = (
        (OverlappingRangeIPReservation, "OverlappingRangeIPReservation"),
        (NodeSlicePool, "NodeSlicePool"),
    )
    for model, label in kinds:
        odd = (
            model.objects.filter(cluster__in=clusters)
            .exclude(problems=[])
            .select_related("cluster")
            .order_by("cluster__name", "namespace", "name")
        )
        for o in odd:
            ip = getattr(o, "ip", None)
            data.append(
                {
                    "id": None,
                    "cluster": o.cluster.name,
                    "kind": PROBLEM,
                    "state": "",
                    "object": f"{label} {o.namespace}/{o.name}",
                    "ip": str(ip) if ip is not None else "",
                    "pool": "",
                    "podref": getattr(o, "podref", ""),
                    "node": "",
                    "reason": "; ".join(o.problems),
                    "problems": o.problems,
                    "first_seen": "",
                    "alert_state": "",
                }
            )
    return data
