"""Management commands answer bad input and an unreachable service with one clear line and a
non-zero exit, never a traceback (issue 21, item 7); a refused sync names the real start of
the sync that holds the lock (item 8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from ippam.locks import cluster_sync_lock
from ippam.models import SyncRun
from tests.factories import make_cluster

ROOT = Path(__file__).resolve().parent.parent
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # port 1: nothing listens, refused at once


def one_line(exc: pytest.ExceptionInfo[CommandError]) -> str:
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.django_db
def test_sync_with_redis_unreachable_is_one_line(settings):
    make_cluster("demo")
    settings.REDIS_URL = UNREACHABLE_REDIS
    with pytest.raises(CommandError) as exc:
        call_command("sync")
    assert "Redis did not answer" in one_line(exc) and "REDIS_URL" in one_line(exc)


@pytest.mark.django_db(transaction=True)
def test_sync_with_redis_unreachable_exits_non_zero_without_a_traceback(postgres_required):
    make_cluster("demo")
    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": UNREACHABLE_REDIS, "DEBUG": "true"}
    done = subprocess.run(
        [sys.executable, "manage.py", "sync"],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("CommandError: Redis did not answer"), lines


MALFORMED = {
    "findings is true": {"version": 1, "clusters": [{"name": "adv", "findings": True}]},
    "clusters of mixed types": {"version": 1, "clusters": ["adv", 5, None]},
    "a kind that is not a list": {
        "version": 1,
        "clusters": [{"name": "adv", "findings": {"k": 3}}],
    },
    "a finding that is a number": {
        "version": 1,
        "clusters": [{"name": "adv", "findings": {"orphaned_allocation": [5]}}],
    },
    "a NUL in an identity": {
        "version": 1,
        "clusters": [
            {
                "name": "adv",
                "findings": {"orphaned_allocation": [{"identity": "a\x00", "ip": None}]},
            }
        ],
    },
    "an ip that is a list": {
        "version": 1,
        "clusters": [
            {"name": "adv", "findings": {"orphaned_allocation": [{"identity": "a", "ip": [1]}]}}
        ],
    },
    "a name that is a number": {"version": 1, "clusters": [{"name": 7}]},
    "not an object": [1, 2],
}


@pytest.mark.django_db
@pytest.mark.parametrize("report", MALFORMED.values(), ids=MALFORMED.keys())
def test_reclaim_from_a_malformed_report_is_one_line(tmp_path, report):
    make_cluster("adv")
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    with pytest.raises(CommandError) as exc:
        call_command("reclaim", "--from-report", str(path), "--dry-run")
    assert one_line(exc)


@pytest.mark.django_db
def test_a_refused_sync_names_when_the_running_one_started(settings):
    cluster = make_cluster("demo")
    started = timezone.now() - timedelta(minutes=7)
    run = SyncRun.objects.create(cluster=cluster)
    SyncRun.objects.filter(pk=run.pk).update(started_at=started)
    with cluster_sync_lock(cluster) as held:
        assert held
        with pytest.raises(CommandError) as exc:
            call_command("sync", "--cluster", "demo")
    assert f"started {started:%Y-%m-%d %H:%M:%S} UTC" in one_line(exc)


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "command",
    [
        ["sync"],
        ["pools"],
        ["nads"],
        ["interfaces"],
        ["leaks"],
        ["report", "--json"],
        ["cluster", "list"],
    ],
    ids=lambda c: " ".join(c),
)
def test_every_command_says_one_line_when_the_database_is_down(command):
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed_port()}/ippam",
        "DEBUG": "true",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "the database did not answer" in lines[0], lines
    assert "DATABASE_URL" in lines[0]
