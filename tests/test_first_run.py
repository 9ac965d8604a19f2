"""The first ten minutes of `make run`: a generated admin login the login page and the start
banner show (only while it holds), a `.env` with a metrics token, one quiet Procfile."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from dashboard.env import read_env_file
from ippam.management.commands.announce import banner_lines
from tests.html import select_one, text

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def demo_settings(settings, tmp_path, monkeypatch):
    settings.DEBUG = True
    settings.VAR_DIR = tmp_path
    monkeypatch.delenv("IPPAM_ADMIN_USER", raising=False)
    monkeypatch.delenv("IPPAM_ADMIN_PASSWORD", raising=False)
    return settings


def generated_login(capsys) -> tuple[str, str]:
    from ippam.selectors.demo_login import demo_login_shown

    call_command("ensure_admin")
    assert "generated password" in capsys.readouterr().out
    login = demo_login_shown()
    assert login is not None
    return login.username, login.password


def test_the_login_page_says_how_to_log_in_while_the_generated_password_holds(
    db, client, demo_settings, capsys
):
    username, password = generated_login(capsys)
    assert username == "admin" and len(password) >= 16 and password != "admin"
    hint = select_one(client.get("/login/").content.decode(), "#demo-login")
    assert username in text(hint) and password in text(hint)
    # Through the login form, as a person logs in (django-axes wants the request).
    response = client.post("/login/", {"username": username, "password": password})
    assert response.status_code == 302, response.content

    user = get_user_model().objects.get(username=username)
    user.set_password("a-password-of-my-own")
    user.save()
    client.logout()
    page = client.get("/login/").content.decode()
    assert password not in page  # changed: the hint is gone
    with pytest.raises(AssertionError):
        select_one(page, "#demo-login")


def test_no_password_is_shown_outside_development(db, client, demo_settings, capsys):
    _, password = generated_login(capsys)
    demo_settings.DEBUG = False
    demo_settings.ALLOWED_HOSTS = ["testserver"]
    assert password not in client.get("/login/").content.decode()


def test_a_given_password_is_never_shown(db, client, demo_settings, monkeypatch, capsys):
    monkeypatch.setenv("IPPAM_ADMIN_PASSWORD", "chosen-by-the-operator")
    call_command("ensure_admin")
    assert "chosen-by-the-operator" not in capsys.readouterr().out
    assert not (demo_settings.VAR_DIR / "demo-login.json").exists()
    assert "chosen-by-the-operator" not in client.get("/login/").content.decode()


def test_the_banner_ends_with_the_login_and_names_the_metrics_token(db, demo_settings, capsys):
    username, password = generated_login(capsys)
    demo_settings.IPPAM_METRICS_TOKEN = "tok-123"
    lines = banner_lines("http://127.0.0.1:8123/")
    assert lines[0] == "ippam is up: http://127.0.0.1:8123/"
    assert any("tok-123" in line and "/metrics" in line for line in lines)
    assert f"{username} / {password}" in lines[-1]


def test_write_env_writes_a_metrics_token_and_adds_one_to_an_older_env(tmp_path, capsys):
    path = tmp_path / ".env"
    call_command("write_env", "--path", str(path))
    first = read_env_file(path)
    assert len(first["IPPAM_METRICS_TOKEN"]) >= 24

    older = tmp_path / "older.env"
    older.write_text("DEBUG=true\nSECRET_KEY=kept")
    call_command("write_env", "--path", str(older))
    values = read_env_file(older)
    assert values["SECRET_KEY"] == "kept" and len(values["IPPAM_METRICS_TOKEN"]) >= 24
    call_command("write_env", "--path", str(older))
    assert read_env_file(older) == values  # added once, never replaced


def test_procfile_serves_on_port_and_every_process_ends_cleanly():
    lines = dict(
        line.split(": ", 1) for line in (ROOT / "Procfile.dev").read_text().splitlines() if line
    )
    assert "127.0.0.1:$PORT" in lines["web"]
    # exec: honcho's SIGTERM reaches the process itself, not a shell that dies of it
    assert all("exec .venv/bin/" in command for command in lines.values())
    # web first: honcho hands PORT to the first process; the others start after it loads
    assert next(iter(lines)) == "web" and lines["worker"].startswith("sleep ")
    # a forked pool logs "exited with signal 15" for every child on Ctrl-C
    assert "--pool threads" in lines["worker"]
    assert lines["announce"].endswith("manage.py announce")


def test_the_makefile_bootstraps_uv_pinned_and_hashed_from_the_lock():
    """`make install` pip-installs uv from the lines the Makefile cuts out of the lock: they
    must stay one pin with its hashes (pip --require-hashes refuses anything else)."""
    import subprocess

    makefile = (ROOT / "Makefile").read_text()
    command = next(
        line.strip().lstrip("@").split(" > ")[0]
        for line in makefile.splitlines()
        if "sed -n '/^uv==/" in line
    ).replace("$(LOCK_DEV)", "requirements/dev.txt")
    cut = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True).stdout
    lines = [line.strip() for line in cut.splitlines() if line.strip()]
    assert lines[0].startswith("uv==") and lines[0].endswith("\\")
    assert len(lines) >= 2 and all(line.startswith("--hash=sha256:") for line in lines[1:])
    assert "sync --python $(BIN)/python --require-hashes $(LOCK_DEV)" in makefile


def test_prepare_registers_the_demo_once_and_says_so_once(db, demo_settings, capsys):
    from ippam.models import Cluster

    call_command("prepare")
    first = capsys.readouterr().out
    assert "registered the simulated cluster `demo`" in first
    assert "generated password" in first
    call_command("prepare")
    again = capsys.readouterr().out.strip().splitlines()
    assert again == ["database and broker answer", "admin account: admin (existing)"]
    assert Cluster.objects.filter(name="demo", simulated=True).count() == 1
