"""The project's wiring: settings from the environment, services, compose file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.exceptions import ImproperlyConfigured

from dashboard.env import database_from_url, env_bool

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_database_url_postgres_is_parsed():
    db = database_from_url("postgres://app:s%40cret@db.example:5433/ippam?sslmode=require", ROOT)
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
        "app",
        "s@cret",
        "db.example",
        "5433",
        "ippam",
    )
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_database_url_sqlite_relative_and_absolute():
    assert database_from_url("sqlite:///db.sqlite3", ROOT)["NAME"] == str(ROOT / "db.sqlite3")
    assert database_from_url("sqlite:////tmp/x.db", ROOT)["NAME"] == "/tmp/x.db"


def test_database_url_unknown_scheme_says_what_to_use():
    with pytest.raises(ImproperlyConfigured, match="postgres://USER"):
        database_from_url("mysql://x/y", ROOT)


def test_env_bool_rejects_nonsense(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG"):
        env_bool("SOME_FLAG", False)


def test_missing_secret_key_is_one_clear_line():
    result = run_manage("check", env={"DEBUG": "false", "SECRET_KEY": "", "IPPAM_TESTING": "false"})
    assert result.returncode == 2
    assert result.stderr.strip().startswith("ippam: SECRET_KEY is not set")
    assert "Traceback" not in result.stderr


def test_wrong_database_url_is_one_clear_line():
    result = run_manage(
        "preflight", env={"DEBUG": "true", "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"}
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "DATABASE_URL" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_redis_is_one_clear_line(tmp_path):
    result = run_manage(
        "preflight",
        env={
            "DEBUG": "true",
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        },
    )
    assert result.returncode == 1
    assert "REDIS_URL" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_healthz_answers_without_login(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_pages_require_login(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_roles_exist_after_migrate(db):
    from django.contrib.auth.models import Group

    perms = {g.name: sorted(p.codename for p in g.permissions.all()) for g in Group.objects.all()}
    assert perms == {
        "viewer": [],
        "operator": ["acknowledge_alert", "request_sync"],
        "admin": ["acknowledge_alert", "create_nad", "reclaim_allocation", "request_sync"],
    }


def test_compose_services_run_commands_that_exist():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat", "watch"} <= set(services)
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1
    for name in ("postgres", "redis", "web"):
        assert "healthcheck" in services[name], f"{name} has no health check"
    commands = {}
    for name in ("web", "worker", "beat", "watch"):
        command = services[name]["command"]
        commands[name] = command if isinstance(command, list) else command.split()
    assert commands["web"][0] == "gunicorn" and commands["web"][1] == "dashboard.wsgi:application"
    for name in ("worker", "beat"):
        assert commands[name][:3] == ["celery", "-A", "dashboard"]
    from django.core.management import get_commands

    for name in ("web", "worker", "beat", "watch"):
        if commands[name][:2] == ["python", "manage.py"]:
            assert commands[name][2] in get_commands(), f"{name}: no manage.py {commands[name][2]}"
    assert (ROOT / "Dockerfile").exists()
