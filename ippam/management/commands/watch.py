"""manage.py watch: follow the enabled clusters and apply changes as they happen.

See ippam.watch for why this is a long-running process rather than Celery tasks. Run as
many as you like (compose `--scale watch=N`, Deployment replicas): they share the clusters
by lease (ippam.watch_lease), and take over a stopped one's clusters within the lease TTL.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

from django.core.management.base import CommandParser

from ippam.clusters import cluster_ensure_in_cluster
from ippam.kube.resources import BY_KIND
from ippam.management.base import ServiceCommand
from ippam.watch import BATCH_SECONDS, Watcher
from ippam.watch_lease import LEASE_SECONDS


class Command(ServiceCommand):
    help = (
        "Watch the enabled clusters (this process's share of them, by lease) and apply "
        "add/modify/delete events to the database."
    )

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
        parser.add_argument(
            "--lease-seconds",
            type=float,
            default=LEASE_SECONDS,
            help="how long a cluster stays ours without renewal (others take over after it)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO)
        cluster_ensure_in_cluster()  # IPPAM_IN_CLUSTER=true: follow this pod's own cluster
        watcher = Watcher(
            kinds=options.get("kind"),
            batch_seconds=options["batch_seconds"],
            lease_seconds=options["lease_seconds"],
            renew_seconds=min(options["lease_seconds"] / 5, 3.0),
        )

        def stop(signum: int, frame: Any) -> None:
            watcher.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(
            f"watcher {watcher.identity}: following its share of the enabled clusters "
            "(Ctrl-C to stop and hand them over)"
        )
        watcher.run()
        self.stdout.write(f"stopped after applying {watcher.applied} events")
