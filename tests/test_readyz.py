"""/readyz: 200 when the database and the broker answer, 503 naming what does not;
/healthz (liveness) stays."""

from __future__ import annotations

import socket

import pytest
from django.db import connections

from dashboard.views import health

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_ready_when_database_and_broker_answer(client):
    response = client.get("/readyz")  # the test settings' broker: filesystem, or Redis on CI
    assert response.status_code == 200, response.json()
    assert response.json() == {"database": "ok", "broker": "ok"}


def test_ready_with_a_real_redis_broker(client, settings, redis_url):
    settings.CELERY_BROKER_URL = redis_url
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["broker"] == "ok"


def test_a_redis_broker_that_does_not_answer_is_503_naming_it(client, settings):
    settings.CELERY_BROKER_URL = f"redis://:hunter2@127.0.0.1:{closed_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    states = response.json()
    assert states["database"] == "ok"
    assert states["broker"].startswith("down:") and "REDIS_URL" in states["broker"]
    assert "hunter2" not in response.content.decode()  # never the URL's password


def test_a_filesystem_broker_needs_its_folders(client, settings, tmp_path):
    options = {
        "data_folder_in": str(tmp_path / "out"),
        "data_folder_out": str(tmp_path / "out"),
        "processed_folder": str(tmp_path / "processed"),
    }
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = options
    (tmp_path / "out").mkdir()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "processed" in response.json()["broker"]

    (tmp_path / "processed").mkdir()
    assert client.get("/readyz").json() == {"database": "ok", "broker": "ok"}


def database_down(monkeypatch, tmp_path):
    """The probes' connection pointed at a database that does not answer."""
    default = connections["default"]
    unreachable = dict(default.settings_dict)
    if default.vendor == "sqlite":
        unreachable["NAME"] = str(tmp_path / "no-such-folder" / "db.sqlite3")
    else:
        unreachable.update(HOST="127.0.0.1", PORT=str(closed_port()))
    down = type(default)(unreachable, alias="readyz-down")
    monkeypatch.setattr(health, "connection", down)
    return down


def test_a_database_that_does_not_answer_is_503_naming_it(client, monkeypatch, tmp_path):
    down = database_down(monkeypatch, tmp_path)
    try:
        response = client.get("/readyz")
    finally:
        down.close()
    assert response.status_code == 503
    states = response.json()
    assert states["database"].startswith("down:") and "DATABASE_URL" in states["database"]
    assert states["broker"] == "ok"


def test_healthz_stays(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_answers_json_naming_the_database_while_it_is_down(client, monkeypatch, tmp_path):
    down = database_down(monkeypatch, tmp_path)
    try:
        response = client.get("/healthz")
    finally:
        down.close()
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "down" and "DATABASE_URL" in body["database"]
