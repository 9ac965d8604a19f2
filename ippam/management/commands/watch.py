"""manage.py watch: follow every enabled cluster and apply changes as they happen.

See ippam.watch for why this is a long-running process rather than Celery tasks.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ippam.clusters import cluster_ensure_in_cluster
from ippam.kube.resources import BY_KIND
from ippam.watch import BATCH_SECONDS, Watcher


class Command(BaseCommand):
    help = "Watch every enabled cluster and apply add/modify/delete events to the database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--kind",
            action="append",
            choices=sorted(BY_KIND),
            help="only these kinds (repeatable; default: all)",
        )
        parser.add_argument(
            "--batch-seconds",
            type=float,
            default=BATCH_SECONDS,
            help="how often events are written",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO)
        cluster_ensure_in_cluster()  # IPPAM_IN_CLUSTER=true: follow this pod's own cluster
        watcher = Watcher(kinds=options.get("kind"), batch_seconds=options["batch_seconds"])

        def stop(signum: int, frame: Any) -> None:
            watcher.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write("watching every enabled cluster (Ctrl-C to stop)")
        watcher.run()
        self.stdout.write(f"stopped after applying {watcher.applied} events")
