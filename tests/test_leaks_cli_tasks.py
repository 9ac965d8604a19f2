"""The leaks and reclaim commands' output and errors; the task bodies and on-commit enqueue."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from ippam.leaks.tasks import detect_leaks, reclaim_run
from ippam.locks import lock
from ippam.models import Alert, Finding, ReclaimRun
from tests.leak_factories import Rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(db, settings) -> Rows:
    settings.IPPAM_LEAK_GRACE_SECONDS = 0
    rows = Rows()
    rows.node("node-1")
    nad = rows.nad("default/net-a", "10.0.0.0/24")
    pool = rows.pool("10.0.0.0/24")
    rows.pod("default/web-1", [(nad, "net1", ["10.0.0.1"])])
    rows.alloc(pool, "10.0.0.1", "default/web-1")
    rows.alloc(pool, "10.0.0.7", "default/web-3")
    rows.pod("default/db-1", [(nad, "net1", ["10.0.0.50"])])
    return rows


def test_leaks_json_lists_every_field_with_the_alert_state(rows, capsys):
    call_command("leaks", "--detect", "--json")
    data = json.loads(capsys.readouterr().out)
    assert {d["kind"] for d in data} == {"orphaned_allocation", "untracked_address"}
    orphan = next(d for d in data if d["kind"] == "orphaned_allocation")
    assert set(orphan) >= {
        "id",
        "kind",
        "state",
        "ip",
        "pool",
        "podref",
        "node",
        "reason",
        "first_seen",
        "alert_state",
    }
    assert orphan["ip"] == "10.0.0.7" and orphan["pool"] == "kube-system/10.0.0.0-24"
    assert orphan["alert_state"] == "open" and orphan["state"] == "leaked"


def test_leaks_table_filters_by_kind(rows, capsys):
    detect_leaks(rows.cluster.pk)
    call_command("leaks", "--kind", "untracked_address", "--cluster", "c1")
    out = capsys.readouterr().out
    assert "untracked_address" in out and "orphaned_allocation" not in out
    assert "10.0.0.50 on default/db-1" in out


def test_reclaim_requires_a_mode_and_names_unknown_findings(rows):
    with pytest.raises(CommandError):
        call_command("reclaim")
    with pytest.raises(CommandError, match="no finding 999 in cluster c1"):
        call_command("reclaim", "--dry-run", "--finding", "999")
    with pytest.raises(CommandError, match="has no IPPool kube-system/nope"):
        call_command("reclaim", "--dry-run", "--pool", "kube-system/nope")


def test_reclaim_asks_which_cluster_when_there_are_several(rows):
    Rows("c2")
    with pytest.raises(CommandError, match="choose one with --cluster NAME"):
        call_command("reclaim", "--dry-run")


def test_reclaim_dry_run_lists_skipped_kinds_with_advice(rows, capsys):
    detect_leaks(rows.cluster.pk)
    untracked = Finding.objects.get(kind=Finding.Kind.UNTRACKED_ADDRESS)
    call_command("reclaim", "--dry-run", "--finding", str(untracked.pk))
    out = capsys.readouterr().out
    assert "skipped" in out and "restart the pod" in out
    assert not ReclaimRun.objects.exists()  # a dry run is not kept


def test_a_run_locked_by_another_worker_is_reported_as_noop(rows):
    from ippam.leaks import reclaim_plan

    detect_leaks(rows.cluster.pk)
    run = reclaim_plan(cluster=rows.cluster, actor="t")
    with lock(f"reclaim-run-{run.pk}") as held:
        assert held
        summary = reclaim_run(run.pk)
    assert summary["noop"] is True and "another worker" in summary["message"]
    assert ReclaimRun.objects.get(pk=run.pk).state == ReclaimRun.State.PLANNED


def test_detect_task_returns_counts(rows):
    result = detect_leaks(rows.cluster.pk)
    assert result["counts"] == {"orphaned_allocation": 1, "untracked_address": 1}
    assert Alert.objects.filter(state=Alert.State.OPEN).count() == 2


def test_detection_runs_after_every_full_sync():
    from ippam.leaks.detect import detect_after_sync
    from ippam.signals import sync_finished

    receivers = sync_finished._live_receivers(sender=None)
    receivers = receivers[0] if isinstance(receivers, tuple) else receivers
    assert list(receivers).count(detect_after_sync) == 1


def test_leak_tasks_are_registered_with_celery():
    from dashboard.celery import app

    assert {"ippam.tasks.reclaim_run", "ippam.tasks.detect_leaks"} <= set(app.tasks.keys())
