"""manage.py reclaim (--dry-run | --yes) [--finding ID ... | --from-report FILE] [--pool NS/NAME]
[--cluster NAME] [--include-suspect]: free leaked addresses safely, printing
each item."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from ippam.leaks.reclaim.common import ReclaimError
from ippam.leaks.reclaim.execute import reclaim_runs_expire
from ippam.leaks.reclaim.plan import reclaim_plan
from ippam.leaks.reclaim.preview import ItemPreview, Preview, reclaim_preview
from ippam.leaks.tasks import reclaim_run
from ippam.management.base import ServiceCommand
from ippam.models import Finding, ReclaimItem, ReclaimRun
from ippam.selectors.report import ReportError, report_candidates, report_cluster_names
from ippam.sync.cli import clusters_selected, dump_json, table


class Command(ServiceCommand):
    help = (
        "Reclaim leaked addresses: orphaned and stale allocations, orphaned reservations. "
        "Each item is re-checked against the live cluster right before it is freed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        mode = parser.add_mutually_exclusive_group(required=True)
        mode.add_argument("--dry-run", action="store_true", help="show the plan; change nothing")
        mode.add_argument("--yes", action="store_true", help="execute the plan now")
        parser.add_argument(
            "--finding",
            type=int,
            nargs="+",
            action="extend",
            metavar="ID",
            help="only these findings (ids from `manage.py leaks`)",
        )
        parser.add_argument(
            "--pool", metavar="NAMESPACE/NAME", help="only allocations of this IPPool"
        )
        parser.add_argument(
            "--from-report",
            metavar="FILE",
            help="the findings of a `manage.py report --json` file, as candidates only: each "
            "must still be a current finding, and is re-checked live like any other",
        )
        parser.add_argument("--cluster", help="the cluster (required when several are registered)")
        parser.add_argument(
            "--include-suspect",
            action="store_true",
            help="also reclaim suspect findings (check the pods first)",
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        from_report = _read_report(options.get("from_report"))
        if from_report is not None and options.get("finding"):
            raise CommandError("choose --finding or --from-report, not both")
        if from_report is not None and not options.get("cluster"):
            in_report = report_cluster_names(from_report)
            if len(in_report) == 1:
                options["cluster"] = in_report[0]
        clusters = clusters_selected(options.get("cluster"))
        if len(clusters) > 1:
            names = ", ".join(c.name for c in clusters)
            raise CommandError(
                f"several clusters are registered ({names}); choose one with --cluster NAME"
            )
        cluster = clusters[0]
        expired = reclaim_runs_expire()
        if expired and not options["json"]:
            self.stderr.write(
                f"{expired} earlier run(s) had lost their worker and were marked failed"
            )
        finding_ids = options.get("finding") or None
        if from_report is not None:
            try:
                finding_ids, skipped = report_candidates(from_report, cluster=cluster)
            except ReportError as exc:
                raise CommandError(str(exc)) from exc
            self._skipped(skipped, as_json=options["json"])
            if not finding_ids:
                # Never fall through to "every reclaimable finding": the file named none left.
                if not options["json"]:
                    self.stdout.write("nothing in the report is still a finding; nothing to do")
                return
        try:
            run = reclaim_plan(
                cluster=cluster,
                finding_ids=finding_ids,
                pool=options.get("pool"),
                include_suspect=options["include_suspect"],
                actor=f"cli:{getpass.getuser()}",
            )
        except ReclaimError as exc:
            raise CommandError(str(exc)) from exc
        if options["dry_run"]:
            # The run's own live re-check, nothing written: "will free" means the run would.
            preview = reclaim_preview(run)
            self._show(run, preview=preview, as_json=options["json"])
            run.delete()  # a CLI dry run is only shown, never queued
            return
        # The CLI runs the task body in-process (same lock, same code as the worker).
        summary = reclaim_run(run.pk)
        run = ReclaimRun.objects.get(pk=run.pk)
        self._show(run, as_json=options["json"], summary=summary)

    def _skipped(self, skipped: list[tuple[str, str, str]], *, as_json: bool) -> None:
        # To stderr with --json: stdout stays one JSON document.
        for identity, ip, why in skipped:
            line = f"skipped from the report: {identity} ({ip or 'no IP'}): {why}"
            (self.stderr if as_json else self.stdout).write(line)

    def _show(
        self,
        run: ReclaimRun,
        *,
        as_json: bool,
        preview: Preview | None = None,
        summary: dict | None = None,
    ) -> None:
        planned = preview is not None
        items = list(run.items.order_by("id"))
        verdicts = {p.item.pk: p for p in preview.items} if preview is not None else {}
        if as_json:
            self.stdout.write(
                dump_json(
                    {
                        "run": None if planned else run.pk,
                        "dry_run": planned,
                        "summary": summary,
                        "items": [_item_dict(i, verdicts.get(i.pk)) for i in items],
                    }
                )
            )
            return
        if not items:
            self.stdout.write(f"nothing to reclaim in cluster {run.cluster.name}")
            return
        ids = dict(
            Finding.objects.filter(
                cluster=run.cluster, identity__in=[i.finding_identity for i in items]
            ).values_list("identity", "pk")
        )
        headers = ["FINDING", "KIND", "POOL", "KEY", "IP", "PODREF", "RESERVATION", "OUTCOME"]
        rows = [
            [
                ids.get(i.finding_identity, "gone"),
                i.kind,
                f"{i.pool_namespace}/{i.pool_name}" if i.pool_name else "",
                i.allocation_key,
                i.ip,
                i.podref,
                f"{i.reservation_namespace}/{i.reservation_name}" if i.reservation_name else "",
                _verdict(verdicts[i.pk]) if planned else i.outcome,
            ]
            for i in items
        ]
        self.stdout.write(table(headers, rows))
        self.stdout.write("")
        for i in items:
            text = verdicts[i.pk].message if planned else (i.message or i.why)
            self.stdout.write(f"- {i.ip} ({i.kind}): {text}")
        if preview is not None:
            unknown = (
                f", {len(preview.unknown)} not re-checked ({preview.error or 'see each item'})"
                if preview.unknown
                else ""
            )
            self.stdout.write(
                f"\ndry run: {len(preview.will_free)} will be freed, "
                f"{len(preview.will_skip)} will be skipped{unknown}; "
                "run again with --yes to do it (each item is re-checked again then)"
            )
        elif summary is not None:
            counts = ", ".join(
                f"{k} {v}" for k, v in summary["counts"].items() if v and k != "pending"
            )
            note = " (no-op: nothing was freed)" if summary.get("noop") else ""
            self.stdout.write(f"\nrun {run.pk}: {counts or 'no items'}{note}")


def _verdict(preview: ItemPreview) -> str:
    """A dry run's OUTCOME column: what the run would do with the item now."""
    if preview.frees:
        return "will free"
    if preview.unknown:
        return "not re-checked"
    if preview.outcome == ReclaimItem.Outcome.NOOP:
        return "nothing to free"
    return "will skip"


def _item_dict(item: ReclaimItem, preview: ItemPreview | None = None) -> dict[str, Any]:
    planned = {"verdict": _verdict(preview), "message": preview.message} if preview else {}
    return {
        "finding": item.finding_identity,
        "kind": item.kind,
        "pool": f"{item.pool_namespace}/{item.pool_name}" if item.pool_name else "",
        "key": item.allocation_key,
        "ip": str(item.ip) if item.ip is not None else "",
        "podref": item.podref,
        "reservation": f"{item.reservation_namespace}/{item.reservation_name}"
        if item.reservation_name
        else "",
        "why": item.why,
        "outcome": item.outcome,
        "message": item.message,
        "attempts": item.attempts,
        **planned,
    }


def _read_report(path: str | None) -> Any:
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise CommandError(f"cannot read the report {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise CommandError(
            f"{path} is not JSON ({exc}); make a report with `manage.py report --json > FILE`"
        ) from exc
    try:
        report_cluster_names(data)
    except ReportError as exc:
        raise CommandError(f"{path}: {exc}") from exc
    return data
