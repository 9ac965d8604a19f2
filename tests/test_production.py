"""The production path: the app serves its own static files under gunicorn with DEBUG off,
HTTPS hardening passes `check --deploy`, a `.env` file is read, and the image and compose
file run non-root with a required SECRET_KEY."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from django.core.exceptions import ImproperlyConfigured

from dashboard.env import read_env_file

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
STRONG_KEY = secrets.token_urlsafe(50)


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """DEBUG off, a strong key, nothing from the developer's .env or services."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("IPPAM_", "DJANGO_")) and k not in {"DATABASE_URL", "REDIS_URL"}
    }
    env.update(
        DEBUG="false",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        IPPAM_ENV_FILE="",
        IPPAM_TESTING="false",
        IPPAM_VAR_DIR=str(tmp_path / "var"),
        IPPAM_STATIC_ROOT=str(tmp_path / "static"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    env.update(extra)
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- gunicorn, DEBUG off: every asset of the login page ------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory) -> Iterator[str]:
    tmp_path = tmp_path_factory.mktemp("gunicorn")
    env = production_env(tmp_path, IPPAM_HTTPS="true")
    for args in (("migrate", "--no-input", "-v", "0"), ("collectstatic", "--no-input", "-v", "0")):
        result = manage(*args, env=env)
        assert result.returncode == 0, result.stderr
    port = free_port()
    process = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "dashboard.wsgi:application", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", "1", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # readiness: the first answer of /healthz
            try:
                if fetch(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read() if process.stdout else ""
                raise AssertionError(f"gunicorn did not start:\n{output}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(10)


HTTPS = {"X-Forwarded-Proto": "https"}


def test_every_css_and_js_file_of_the_login_page_is_served(gunicorn):
    status, _, body = fetch(f"{gunicorn}/login/", HTTPS)
    assert status == 200
    html = body.decode()
    assets = re.findall(r'<link[^>]+href="(/static/[^"]+\.css)"', html)
    assets += re.findall(r'<script[^>]+src="(/static/[^"]+\.js)"', html)
    assert any(a.endswith(".css") for a in assets) and any(a.endswith(".js") for a in assets)
    for asset in assets:
        # Hashed names from the manifest: browsers may cache them forever.
        assert re.search(r"\.[0-9a-f]{12}\.(css|js)$", asset), asset
        status, headers, content = fetch(f"{gunicorn}{asset}", HTTPS)
        assert status == 200, asset
        assert content, asset
        assert "max-age=315360000" in headers.get("Cache-Control", ""), asset


def test_plain_http_is_redirected_but_probes_are_not(gunicorn):
    status, headers, _ = fetch(f"{gunicorn}/login/")
    assert status == 301 and headers["Location"].startswith("https://")
    assert fetch(f"{gunicorn}/healthz")[0] == 200  # kubelet probes over plain HTTP


def test_https_answers_carry_hsts_csp_and_secure_cookies(gunicorn):
    status, headers, _ = fetch(f"{gunicorn}/login/", HTTPS)
    assert status == 200
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
    csp = headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ):
        assert directive in csp
    cookie = headers.get("Set-Cookie", "")
    assert "csrftoken=" in cookie and "Secure" in cookie
    assert headers["X-Frame-Options"] == "DENY"


# --- settings ------------------------------------------------------------------------------


def test_check_deploy_passes_with_https_on(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env=production_env(tmp_path, IPPAM_HTTPS="true"),
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_check_deploy_without_https_says_what_is_missing(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path))
    assert result.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in result.stderr


def test_the_example_secret_key_is_refused(tmp_path):
    env = production_env(tmp_path, SECRET_KEY="change-me-to-a-long-random-string")
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "placeholder" in result.stderr and "Traceback" not in result.stderr


def show_settings(env: dict[str, str], *names: str) -> list[str]:
    code = "from django.conf import settings; " + "; ".join(
        f"print(repr(settings.{n}))" for n in names
    )
    result = manage("shell", "--no-imports", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_env_file_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# written by make run\n"
        "DEBUG=true\n"
        "export TIME_ZONE='Europe/Berlin'\n"
        'ALLOWED_HOSTS="from-file.example"\n'
    )
    env = production_env(tmp_path, IPPAM_ENV_FILE=str(env_file))
    del env["DEBUG"]
    env["ALLOWED_HOSTS"] = "from-env.example"
    assert show_settings(env, "DEBUG", "TIME_ZONE", "ALLOWED_HOSTS") == [
        "True",
        "'Europe/Berlin'",
        "['from-env.example']",
    ]


def test_pod_ip_is_an_allowed_host(tmp_path):
    env = production_env(tmp_path, IPPAM_POD_IP="fd00::7")
    assert show_settings(env, "ALLOWED_HOSTS") == ["['127.0.0.1', 'localhost', '[fd00::7]']"]


def test_read_env_file_rejects_a_line_that_is_not_key_value(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("GOOD=1\nthis is not a setting\n")
    with pytest.raises(ImproperlyConfigured, match=r"\.env:2: .* is not KEY=VALUE"):
        read_env_file(env_file)


def test_read_env_file_keeps_values_literally(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("A=x=y#z\nB=''\n\nC= spaced \n")
    assert read_env_file(env_file) == {"A": "x=y#z", "B": "", "C": "spaced"}


# --- image and compose ---------------------------------------------------------------------


def test_image_is_multi_stage_non_root_from_the_lock_file_with_a_health_check():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.M)) >= 2
    assert "pip install -r requirements/prod.txt" in dockerfile
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK .*", dockerfile, re.M) and "/healthz" in dockerfile
    assert "collectstatic" in dockerfile and "IPPAM_STATIC_ROOT=/app/staticfiles" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env", "var", "db.sqlite3*"} <= set(ignored)


def test_compose_requires_a_secret_key_and_runs_non_root_on_localhost():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name, service in services.items():
        user = str(service.get("user", ""))
        assert user and user.split(":")[0] not in {"root", "0"}, f"{name} runs as root"
    for name in ("migrate", "web", "worker", "beat", "watch"):
        environment = services[name]["environment"]
        assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?"), name
        assert environment["IPPAM_VAR_DIR"] == "/var/lib/ippam"
        assert "IPPAM_STATIC_ROOT" not in environment  # the image's, outside the var volume
    (published,) = services["web"]["ports"]
    assert published.startswith("${IPPAM_PUBLISH:-127.0.0.1:8000}")


# --- make run: .env, a quiet start; in a cluster: self-registration ---------------------------


def test_write_env_writes_once_with_a_random_key(tmp_path, capsys):
    from django.core.management import call_command

    path = tmp_path / ".env"
    call_command("write_env", "--path", str(path))
    first = read_env_file(path)
    assert first["DEBUG"] == "true" and len(first["SECRET_KEY"]) >= 50
    assert path.stat().st_mode & 0o077 == 0  # the key is nobody else's business
    call_command("write_env", "--path", str(path))
    assert read_env_file(path) == first  # never overwritten


def test_a_demo_cluster_without_its_server_is_waited_for_quietly(db, tmp_path, caplog):
    from ippam.models import Cluster
    from ippam.tasks import sync_cluster
    from ippam.watch import Watcher

    kubeconfig = tmp_path / "demo-kubeconfig"  # demo_cluster --serve writes it when serving
    demo = Cluster.objects.create(name="demo", kubeconfig=str(kubeconfig), simulated=True)
    assert sync_cluster.run(demo.pk)["status"] == "waiting"
    watcher = Watcher()
    watcher._reconcile_clusters()
    assert watcher.watches == {}
    demo.refresh_from_db()
    assert demo.sync_error == "" and demo.last_sync_started is None
    assert not [r for r in caplog.records if r.levelname in {"WARNING", "ERROR"}]


@pytest.fixture
def in_cluster_pod(monkeypatch, tmp_path, simcluster):
    """What a pod sees: the KUBERNETES_SERVICE_* variables and a mounted token."""
    from kubernetes.config import incluster_config

    token = tmp_path / "token"
    token.write_text("a-service-account-token")
    ca = tmp_path / "ca.crt"
    ca.write_text("not used: the check only loads the configuration")
    host, port = simcluster.url.removeprefix("http://").split(":")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))


def test_in_cluster_registers_its_own_cluster_once(db, settings, in_cluster_pod):
    from ippam.clusters import cluster_ensure_in_cluster
    from ippam.models import Cluster

    settings.IPPAM_IN_CLUSTER = True
    settings.IPPAM_IN_CLUSTER_NAME = "self"
    cluster = cluster_ensure_in_cluster()
    assert cluster is not None and (cluster.name, cluster.in_cluster) == ("self", True)
    assert cluster_ensure_in_cluster() is None  # already there: left as it is
    assert Cluster.objects.filter(in_cluster=True).count() == 1


def test_in_cluster_outside_a_pod_says_what_to_do(db, settings, caplog, monkeypatch):
    from ippam.clusters import cluster_ensure_in_cluster
    from ippam.models import Cluster

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    settings.IPPAM_IN_CLUSTER = True
    assert cluster_ensure_in_cluster() is None
    assert not Cluster.objects.exists()
    assert "unset IPPAM_IN_CLUSTER" in caplog.text


def test_in_cluster_off_registers_nothing(db, settings, in_cluster_pod):
    from ippam.clusters import cluster_ensure_in_cluster
    from ippam.models import Cluster

    settings.IPPAM_IN_CLUSTER = False
    assert cluster_ensure_in_cluster() is None and not Cluster.objects.exists()
