"""manage.py report --json [--cluster NAME]: a whole-cluster check (pools with usage,
findings by kind, problems, summary counts) as one JSON document; its shape is documented in
ippam.selectors.report. `manage.py reclaim --from-report FILE` reads it back as candidates."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from ippam.management.base import ServiceCommand
from ippam.selectors.report import report
from ippam.sync.cli import clusters_selected, dump_json


class Command(ServiceCommand):
    help = (
        "Check whole clusters as `calicoctl ipam check` does: pools with usage, leak findings "
        "by kind with details, problems, and summary counts, as JSON (--json)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cluster", help="only this cluster")
        parser.add_argument("--json", action="store_true", help="JSON output (required)")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["json"]:
            raise CommandError(
                "the report is JSON only: run `manage.py report --json`; for a table of "
                "findings use `manage.py leaks`, of pools `manage.py pools`"
            )
        self.stdout.write(dump_json(report(clusters_selected(options.get("cluster")))))
