"""manage.py announce (Procfile.dev): say where ippam serves and how to log in, once it does.

Honcho interleaves every process's output, so a login line printed at start scrolls away.
This process waits until the web process accepts connections and the demo cluster's first sync
of this run is over, prints the address, the /metrics token and the login last, then idles
until honcho stops it (a process that exits would stop all the others).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from ippam.models import Cluster
from ippam.selectors.demo_login import demo_login_shown

DEMO_NAME = "demo"


def web_listens(port: int) -> bool:
    """True once the web process accepts connections (a socket, not a request: no log line)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def demo_synced_since(started: Any) -> bool:
    """True once the demo cluster finished a sync after `started` (or there is no demo)."""
    demo = Cluster.objects.filter(name=DEMO_NAME, simulated=True).first()
    if demo is None:
        return True
    return demo.last_sync_finished is not None and demo.last_sync_finished >= started


def banner_lines(url: str) -> list[str]:
    lines = [f"ippam is up: {url}"]
    token = str(getattr(settings, "IPPAM_METRICS_TOKEN", "") or "")
    if token:
        lines.append(
            f"/metrics token (in .env): {token}  "
            f"e.g. curl -H 'Authorization: Bearer {token}' {url}metrics"
        )
    login = demo_login_shown()
    if login is not None:
        lines.append(
            f"log in at {url} as {login.username} / {login.password} "
            "(generated; the login page shows it until you change it)"
        )
    else:
        lines.append(f"log in at {url} with your admin account")
    return lines


class Command(BaseCommand):
    help = "Print where ippam serves and how to log in once the web process listens."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port", type=int, default=int(os.environ.get("IPPAM_WEB_PORT") or 8000)
        )
        parser.add_argument("--timeout", type=float, default=300.0)

    def handle(self, *args: Any, **options: Any) -> None:
        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        signal.signal(signal.SIGINT, lambda *_: stopping.set())
        url = f"http://127.0.0.1:{options['port']}/"
        started = timezone.now()
        deadline = time.monotonic() + options["timeout"]
        while not stopping.is_set() and time.monotonic() < deadline:
            if web_listens(options["port"]) and demo_synced_since(started):
                break
            stopping.wait(0.5)
        if stopping.is_set():
            return
        for line in banner_lines(url):
            self.stdout.write(line)
        self.stdout.flush()
        while not stopping.wait(3600):
            pass
