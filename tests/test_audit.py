"""The audit log: every mutation listed with actor, time, target, before/after, outcome;
filterable and paged; read-only in the Django admin."""

from __future__ import annotations

import pytest

from ippam.models import AuditEntry
from tests.factories import make_audit, make_cluster

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def entries():
    prod, lab = make_cluster("prod"), make_cluster("lab")
    return [
        make_audit(
            cluster=prod,
            target="default/blue",
            action=AuditEntry.Action.NAD_CREATE,
            actor_name="alice",
            outcome="created",
            after={"kind": "NetworkAttachmentDefinition"},
        ),
        make_audit(
            cluster=prod,
            target="alert orphaned_allocation:p:9",
            action=AuditEntry.Action.ALERT_ACKNOWLEDGE,
            actor_name="bob",
            outcome="acknowledged",
            before={"state": "open"},
            after={"state": "acknowledged"},
        ),
        make_audit(
            cluster=lab,
            target="kube-system/10.0.0.0-24 10.0.0.9",
            action=AuditEntry.Action.ALLOCATION_RECLAIM,
            actor_name="alice",
            outcome="reclaimed",
            before={"podref": "default/gone"},
        ),
    ]


def rows(page: str) -> int:
    return page.count('<tr id="audit-')


def test_audit_log_lists_every_entry_with_its_details(viewer_client, entries):
    page = viewer_client.get("/audit/").content.decode()
    assert rows(page) == 3
    for text in (
        "NAD created",
        "alert acknowledged",
        "allocation reclaimed",
        "alice",
        "bob",
        "default/blue",
        "&quot;state&quot;: &quot;open&quot;",
        "reclaimed",
    ):
        assert text in page


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ("action=nad_create", 1),
        ("actor=alice", 2),
        ("actor=ALICE", 2),
        ("action=allocation_reclaim&actor=bob", 0),
        ("outcome=acknowledged", 1),
    ],
)
def test_audit_filters(viewer_client, entries, query, count):
    assert rows(viewer_client.get(f"/audit/?{query}").content.decode()) == count


def test_audit_filter_by_cluster_and_htmx_partial(viewer_client, entries):
    lab = entries[2].cluster
    response = viewer_client.get(f"/audit/?cluster={lab.pk}", HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert rows(page) == 1 and 'id="audit-table"' in page and "<html" not in page


def test_audit_is_paged(viewer_client, django_assert_max_num_queries):
    cluster = make_cluster("prod")
    AuditEntry.objects.bulk_create(
        [
            AuditEntry(
                cluster=cluster,
                actor_name="x",
                action=AuditEntry.Action.ALERT_ACKNOWLEDGE,
                target=f"t{i}",
                outcome="acknowledged",
            )
            for i in range(120)
        ]
    )
    with django_assert_max_num_queries(12):
        page = viewer_client.get("/audit/").content.decode()
    assert rows(page) == 50 and "page 1 of 3" in page
    assert rows(viewer_client.get("/audit/?page=3").content.decode()) == 20


def test_admin_site_shows_audit_entries_read_only(client, make_user, entries):
    superuser = make_user("root", None, is_staff=True, is_superuser=True)
    client.force_login(superuser)
    assert client.get("/admin/ippam/auditentry/").status_code == 200
    entry = entries[0]
    change = client.get(f"/admin/ippam/auditentry/{entry.pk}/change/")
    assert (
        change.status_code == 200 and b'name="target"' not in change.content
    )  # shown, not editable
    assert client.get("/admin/ippam/auditentry/add/").status_code == 403
    assert (
        client.post(f"/admin/ippam/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_admin_registers_every_model():
    from django.apps import apps
    from django.contrib import admin

    missing = [
        m.__name__
        for m in apps.get_app_config("ippam").get_models()
        if not admin.site.is_registered(m)
    ]
    assert missing == []
