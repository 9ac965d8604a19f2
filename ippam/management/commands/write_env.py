"""manage.py write_env: create `.env` for development on first `make run` (never overwrites).

With DEBUG=true and a random SECRET_KEY in `.env`, the README's `manage.py` commands work in a
second terminal exactly as under `make run` (settings read `.env`; the environment wins).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

TEMPLATE = """\
# Written by `make run` on first run for development; settings read it, the environment wins.
# Every setting is described in .env.example. Do not use this file in production.
DEBUG=true
SECRET_KEY={secret_key}
"""


def env_write(path: Path) -> bool:
    """Write a development `.env` at `path` unless one exists. True when written."""
    try:
        with path.open("x") as handle:  # "x": never replace a file someone wrote
            handle.write(TEMPLATE.format(secret_key=secrets.token_urlsafe(50)))
    except FileExistsError:
        return False
    path.chmod(0o600)
    return True


class Command(BaseCommand):
    help = "Write a development .env (DEBUG=true, a random SECRET_KEY) unless one exists."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--path", default=str(Path(settings.BASE_DIR) / ".env"), help="where to write it"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        if env_write(path):
            self.stdout.write(f"wrote {path} (DEBUG=true, a random SECRET_KEY)")
