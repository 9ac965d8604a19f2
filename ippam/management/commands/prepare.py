"""manage.py prepare (make run): every step before the processes start, in one process.

Each manage.py start costs seconds (Django, Celery and the kubernetes client load), so
`make run` runs the checks and setup steps in one: preflight, migrate, ensure_admin and
demo_cluster --if-none, each as it would run on its own.
"""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "preflight, migrate, ensure_admin and demo_cluster --if-none in one process."

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("preflight", stdout=self.stdout, stderr=self.stderr)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("ensure_admin", stdout=self.stdout, stderr=self.stderr)
        # Quiet when clusters exist: on every later start the demo is one of them.
        call_command(
            "demo_cluster", if_none=True, verbosity=0, stdout=self.stdout, stderr=self.stderr
        )
