"""Shared fixtures. Services are real: PostgreSQL and Redis when configured (always on CI)."""

from __future__ import annotations

import os

import pytest
from django.conf import settings

pytest_plugins = ["simcluster.pytest_plugin", "tests.browser"]

ON_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_service(available: bool, what: str) -> None:
    """Skip locally when a real service is not configured; on CI, fail instead of skipping."""
    if available:
        return
    if ON_CI:
        pytest.fail(f"{what} is required on CI but is not configured or unreachable")
    pytest.skip(f"{what} is not configured (set it as .ci/run does)")


@pytest.fixture
def postgres_required() -> None:
    require_service(
        settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
        "PostgreSQL (DATABASE_URL=postgres://...)",
    )


@pytest.fixture
def redis_url() -> str:
    url = settings.REDIS_URL
    if url:
        import redis

        try:
            redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        except redis.RedisError:
            url = ""
    require_service(bool(url), "Redis (REDIS_URL=redis://...)")
    return url


@pytest.fixture
def celery_conf():
    """Set settings of the process-wide Celery app for one test: `celery_conf(broker_url=...)`.

    Afterwards the old values come back, and the connection pool and result backend built
    from the changed ones are dropped, so no later test talks to this test's broker."""
    from dashboard.celery import app

    saved: dict[str, object] = {}
    # Celery caches the backend built from result_backend (per process, or per thread)
    backend_cache, local_backend = app._backend_cache, vars(app._local).get("backend")

    def change(**values: object) -> None:
        for key, value in values.items():
            saved.setdefault(key, app.conf[key])
            app.conf[key] = value

    yield change
    app.conf.update(saved)
    app.close()  # the producer pool built for the changed broker_url
    app._backend_cache = backend_cache
    vars(app._local).pop("backend", None)
    if local_backend is not None:
        app._local.backend = local_backend


@pytest.fixture
def make_user(db):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    def make(username: str = "viewer1", role: str | None = "viewer", **extra):
        user = get_user_model().objects.create_user(
            username=username, password="pw-for-tests-1", **extra
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def viewer_client(client, make_user):
    client.force_login(make_user("viewer1", "viewer"))
    return client


@pytest.fixture
def operator_client(client, make_user):
    client.force_login(make_user("operator1", "operator"))
    return client


@pytest.fixture
def admin_client_role(client, make_user):
    client.force_login(make_user("admin1", "admin"))
    return client


@pytest.fixture
def watched(simcluster, transactional_db):
    """simcluster's demo, synced, with a watcher following it (every kind)."""
    import threading

    from ippam.kube.resources import RESOURCES
    from ippam.models import Cluster
    from ippam.sync import cluster_sync_full
    from ippam.watch import Watcher

    simcluster.load("demo")
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig)
    cluster_sync_full(cluster=cluster)
    watcher = Watcher(batch_seconds=0.1)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    simcluster.wait_for_watches(len(RESOURCES))
    yield cluster
    watcher.stop()
    thread.join(10)
