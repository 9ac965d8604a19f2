"""Celery tasks: thin interfaces that take ids, take a lock, and call a service."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="ippam.tasks.ping")
def ping(message: str) -> dict[str, str]:
    """Wiring check: proves a worker consumes from the broker and returns results."""
    return {"pong": message}
