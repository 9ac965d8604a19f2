"""Probes and the Prometheus scrape: no login (kubelet and Prometheus have no session), and
exempt from the HTTPS redirect (settings.SECURE_REDIRECT_EXEMPT): they reach the pod over
plain HTTP."""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from ippam.metrics import metrics_text

BROKER_TIMEOUT_SECONDS = 1.0


@login_not_required
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for docker-compose and load balancers: the database answers. Always JSON: a
    database that is down is a 503 naming it, not an error page."""
    database = _database_state()
    if database != "ok":
        return JsonResponse({"status": "down", "database": database}, status=503)
    return JsonResponse({"status": "ok"})


@login_not_required
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when the database and the Celery broker answer, else 503 naming which
    does not (a pod that cannot reach them gets no traffic, but is not restarted)."""
    checks = {"database": _database_state(), "broker": _broker_state()}
    ready = all(state == "ok" for state in checks.values())
    return JsonResponse(checks, status=200 if ready else 503)


def _database_state() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return f"down: {_first_line(exc)}; check DATABASE_URL and that the database is up"
    return "ok"


def _broker_state() -> str:
    url = str(settings.CELERY_BROKER_URL)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return _redis_state(url)
    if url.startswith("filesystem://"):
        return _folders_state(settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    return _kombu_state(url)


def _redis_state(url: str) -> str:
    import redis

    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
        socket_timeout=BROKER_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        # The message names host and port, never the URL's password.
        return f"down: {_first_line(exc)}; check REDIS_URL and that Redis is up"
    finally:
        client.close()
    return "ok"


def _folders_state(options: Mapping[str, object]) -> str:
    """kombu's filesystem transport: messages are files in these folders."""
    folders = sorted({Path(str(folder)) for key, folder in options.items() if "folder" in key})
    for folder in folders:
        if not folder.is_dir():
            return f"down: broker folder {folder} is missing; create it or set IPPAM_VAR_DIR"
        if not os.access(folder, os.W_OK | os.X_OK):
            return f"down: broker folder {folder} is not writable by this process"
    return "ok"


def _kombu_state(url: str) -> str:
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=BROKER_TIMEOUT_SECONDS) as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001 - any transport's failure means "not ready"
        return f"down: {_first_line(exc)}"
    return "ok"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@login_not_required
@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics (ippam.metrics), for a scraper that sends the bearer token."""
    token = str(getattr(settings, "IPPAM_METRICS_TOKEN", "") or "")
    if not token:
        return HttpResponse(
            "metrics are disabled: set IPPAM_METRICS_TOKEN and send it as a bearer token\n",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # compare_digest: the time taken says nothing about how much of the token matched.
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        response = HttpResponse(
            "send the header Authorization: Bearer <IPPAM_METRICS_TOKEN>\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="ippam metrics"'
        return response
    try:
        body = metrics_text()
    except DatabaseError as exc:
        return HttpResponse(
            f"the database did not answer: {_first_line(exc)}\n",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
