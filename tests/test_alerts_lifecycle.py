"""Alert lifecycle: open, acknowledge (audited), auto-resolve, re-open; pool alerts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from ippam.leaks import AlertError, alert_acknowledge, leaks_detect
from ippam.models import Alert, Allocation, AuditEntry, Finding
from tests.leak_factories import Rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(db, settings) -> Rows:
    settings.IPPAM_LEAK_GRACE_SECONDS = 0
    return Rows()


def orphan(rows: Rows) -> Allocation:
    rows.node("node-1")
    nad = rows.nad("default/net-a", "10.0.0.0/24")
    pool = rows.pool("10.0.0.0/24")
    rows.pod("default/web-1", [(nad, "net1", ["10.0.0.1"])])
    rows.alloc(pool, "10.0.0.1", "default/web-1")
    return rows.alloc(pool, "10.0.0.7", "default/web-3", reservation=False)


def the_alert(rows: Rows) -> Alert:
    return Alert.objects.get(cluster=rows.cluster, kind=Alert.Kind.ORPHANED_ALLOCATION)


def test_a_finding_opens_one_alert(rows):
    orphan(rows)
    leaks_detect(cluster=rows.cluster)
    leaks_detect(cluster=rows.cluster)
    alert = the_alert(rows)
    finding = Finding.objects.get(cluster=rows.cluster)
    assert alert.state == Alert.State.OPEN and alert.times_opened == 1
    assert alert.identity == finding.identity and alert.finding == finding
    assert "default/web-3" in alert.message


def test_acknowledge_records_who_when_and_note(rows, make_user):
    orphan(rows)
    leaks_detect(cluster=rows.cluster)
    user = make_user("op", "operator")
    alert = alert_acknowledge(
        alert=the_alert(rows), user=user, note="node crash, reclaiming tonight"
    )
    assert alert.state == Alert.State.ACKNOWLEDGED
    assert alert.acknowledged_by == user and alert.acknowledged_at is not None
    assert alert.note == "node crash, reclaiming tonight"
    entry = AuditEntry.objects.get(action=AuditEntry.Action.ALERT_ACKNOWLEDGE)
    assert entry.actor == user and entry.actor_name == "op"
    assert entry.before["state"] == "open" and entry.after["state"] == "acknowledged"
    leaks_detect(cluster=rows.cluster)  # still there: stays acknowledged
    assert the_alert(rows).state == Alert.State.ACKNOWLEDGED


def test_viewers_may_not_acknowledge(rows, make_user):
    orphan(rows)
    leaks_detect(cluster=rows.cluster)
    with pytest.raises(PermissionDenied, match="operator role"):
        alert_acknowledge(alert=the_alert(rows), user=make_user("v", "viewer"))


def test_alert_resolves_when_the_finding_is_gone_and_reopens_when_it_returns(rows, make_user):
    allocation = orphan(rows)
    t0 = timezone.now() - dt.timedelta(hours=1)
    leaks_detect(cluster=rows.cluster, now=t0)
    alert_acknowledge(alert=the_alert(rows), user=make_user("op", "operator"))
    saved = Allocation.objects.filter(pk=allocation.pk).values().get()
    allocation.delete()
    t1 = t0 + dt.timedelta(minutes=5)
    leaks_detect(cluster=rows.cluster, now=t1)
    alert = the_alert(rows)
    assert alert.state == Alert.State.RESOLVED and alert.resolved_at == t1
    assert alert.finding is None
    with pytest.raises(AlertError, match="nothing to acknowledge"):
        alert_acknowledge(alert=alert, user=make_user("op2", "operator"))

    Allocation.objects.create(**saved)
    t2 = t1 + dt.timedelta(minutes=5)
    leaks_detect(cluster=rows.cluster, now=t2)
    alert = the_alert(rows)
    assert alert.state == Alert.State.OPEN and alert.times_opened == 2
    assert alert.opened_at == t2 and alert.resolved_at is None and alert.acknowledged_by is None


def test_pool_alerts_at_the_threshold_and_when_exhausted(rows, settings):
    settings.IPPAM_POOL_ALERT_THRESHOLD = 0.5
    rows.node("node-1")
    nad = rows.nad("default/small", "10.9.0.0/29")  # 6 usable
    pool = rows.pool("10.9.0.0/29")
    for i in range(1, 4):
        rows.pod(f"default/p{i}", [(nad, "net1", [f"10.9.0.{i}"])])
        rows.alloc(pool, f"10.9.0.{i}", f"default/p{i}")
    leaks_detect(cluster=rows.cluster)
    kinds = set(
        Alert.objects.filter(pool=pool, state=Alert.State.OPEN).values_list("kind", flat=True)
    )
    assert kinds == {Alert.Kind.POOL_THRESHOLD}
    assert "50% full (3 of 6 addresses)" in Alert.objects.get(pool=pool).message
    for i in range(4, 7):
        rows.pod(f"default/p{i}", [(nad, "net1", [f"10.9.0.{i}"])])
        rows.alloc(pool, f"10.9.0.{i}", f"default/p{i}")
    leaks_detect(cluster=rows.cluster)
    kinds = set(
        Alert.objects.filter(pool=pool, state=Alert.State.OPEN).values_list("kind", flat=True)
    )
    # one alert per pool and condition: exhausted supersedes above threshold
    assert kinds == {Alert.Kind.POOL_EXHAUSTED}
    states = dict(Alert.objects.filter(pool=pool).values_list("kind", "state"))
    assert states[Alert.Kind.POOL_THRESHOLD] == "resolved"
    Allocation.objects.filter(pool=pool, key__in=["5", "6"]).delete()
    pool.allocated, pool.utilization = 4, 4 / 6
    pool.save()
    leaks_detect(cluster=rows.cluster)
    states = dict(Alert.objects.filter(pool=pool).values_list("kind", "state"))
    assert states == {Alert.Kind.POOL_THRESHOLD: "open", Alert.Kind.POOL_EXHAUSTED: "resolved"}
    Allocation.objects.filter(pool=pool, key__in=["4"]).delete()
    pool.allocated, pool.utilization = 3, 0.5
    pool.save()
    settings.IPPAM_POOL_ALERT_THRESHOLD = 0.9
    leaks_detect(cluster=rows.cluster)
    states = dict(Alert.objects.filter(pool=pool).values_list("kind", "state"))
    assert states == {Alert.Kind.POOL_THRESHOLD: "resolved", Alert.Kind.POOL_EXHAUSTED: "resolved"}
