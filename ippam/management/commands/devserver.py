"""manage.py devserver (Procfile.dev): runserver with static files, announced in one line.

`make run` checks and migrates before honcho starts, so the checks and runserver's
five-line banner (its production warning included: the demo is not production) are skipped.
Ctrl-C and honcho's SIGTERM end it with status 0.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from django.contrib.staticfiles.management.commands.runserver import Command as RunServer
from django.urls import get_resolver


class Command(RunServer):
    help = "The development web server of `make run`: runserver, quiet, no reloader."
    addr: str  # set by runserver's handle from the address argument

    def handle(self, *args: Any, **options: Any) -> None:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        options.update(use_reloader=False, skip_checks=True)
        super().handle(*args, **options)

    def inner_run(self, *args: Any, **options: Any) -> None:
        # Load every view before listening, so the first page does not pay for it.
        get_resolver().url_patterns  # noqa: B018
        super().inner_run(*args, **options)

    def on_bind(self, server_port: int) -> None:
        self.stdout.write(f"serving http://{self.addr}:{server_port}/")
