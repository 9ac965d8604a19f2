"""manage.py write_env: create `.env` for development on first `make run` (never overwrites).

With DEBUG=true and a random SECRET_KEY in `.env`, the README's `manage.py` commands work in a
second terminal exactly as under `make run` (settings read `.env`; the environment wins).
The demo's `/metrics` is on: a random IPPAM_METRICS_TOKEN is written too, and added to a
`.env` an older `make run` wrote without one (the start banner prints it).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from dashboard.env import read_env_file

TEMPLATE = """\
# Written by `make run` on first run for development; settings read it, the environment wins.
# Every setting is described in .env.example. Do not use this file in production.
DEBUG=true
SECRET_KEY={secret_key}
"""
METRICS_LINE = (
    "# The bearer token /metrics asks for (make run prints it).\nIPPAM_METRICS_TOKEN={token}\n"
)


def env_write(path: Path) -> bool:
    """Write a development `.env` at `path` unless one exists. True when written."""
    try:
        with path.open("x") as handle:  # "x": never replace a file someone wrote
            path.chmod(0o600)
            handle.write(TEMPLATE.format(secret_key=secrets.token_urlsafe(50)))
            handle.write(METRICS_LINE.format(token=secrets.token_urlsafe(24)))
    except FileExistsError:
        return False
    return True


def env_add_metrics_token(path: Path) -> bool:
    """Append a metrics token to an existing `.env` that names none. True when added."""
    if not path.is_file() or "IPPAM_METRICS_TOKEN" in read_env_file(path):
        return False
    text = path.read_text()
    with path.open("a") as handle:
        handle.write(
            ("" if text.endswith("\n") or not text else "\n")
            + METRICS_LINE.format(token=secrets.token_urlsafe(24))
        )
    return True


class Command(BaseCommand):
    help = "Write a development .env (DEBUG=true, a random SECRET_KEY and metrics token)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--path", default=str(Path(settings.BASE_DIR) / ".env"), help="where to write it"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        if env_write(path):
            self.stdout.write(f"wrote {path} (DEBUG=true, a random SECRET_KEY and metrics token)")
        elif env_add_metrics_token(path):
            self.stdout.write(f"added a random IPPAM_METRICS_TOKEN to {path}")
