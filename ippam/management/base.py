"""The base of ippam's management commands: a service that does not answer is one line
naming it and what to check, never a traceback (Django prints a CommandError as
"CommandError: <message>" and exits 1)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import InterfaceError, OperationalError

from ippam.kube.client import KubeError


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class ServiceCommand(BaseCommand):
    def execute(self, *args: Any, **options: Any) -> Any:
        import redis

        try:
            return super().execute(*args, **options)
        except redis.RedisError as exc:
            # redis-py names host and port, never the URL's password.
            raise CommandError(
                f"Redis did not answer ({first_line(exc)}); check REDIS_URL and that Redis is up"
            ) from exc
        except (OperationalError, InterfaceError) as exc:
            raise CommandError(
                f"the database did not answer ({first_line(exc)}); check DATABASE_URL and that "
                "PostgreSQL is up"
            ) from exc
        except KubeError as exc:
            raise CommandError(f"the Kubernetes API server: {first_line(exc)}") from exc
