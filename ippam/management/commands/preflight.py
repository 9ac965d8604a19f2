"""Check that the database and the broker answer, with one line that says what to set."""

import sys

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection
from django.db.utils import Error as DatabaseError


def broker_problem() -> str | None:
    if not settings.REDIS_URL:
        return None
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()
    except (redis.RedisError, ValueError) as exc:
        return (
            f"Redis at REDIS_URL={settings.REDIS_URL} does not answer ({exc}). "
            "Start Redis, correct REDIS_URL, or unset it to use the embedded broker."
        )
    return None


def database_problem() -> str | None:
    try:
        connection.ensure_connection()
    except DatabaseError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (
            f"The database does not answer ({first_line}). "
            "Start it or correct DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/ippam; "
            "unset it to use the embedded SQLite file."
        )
    return None


class Command(BaseCommand):
    help = "Check that the database and the broker are reachable."

    def handle(self, *args: object, **options: object) -> None:
        problems = [p for p in (database_problem(), broker_problem()) if p]
        for problem in problems:
            self.stderr.write(f"ippam: {problem}")
        if problems:
            sys.exit(1)
        self.stdout.write("database and broker answer")
