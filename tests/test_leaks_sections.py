"""The leaks page says what matters first: reclaimable leaks, then hazards (duplicates,
overlaps, untracked addresses, missing reservations), each kind with its remedy."""

from __future__ import annotations

import re

import pytest

from ippam.findingkinds import RECLAIMABLE, REMEDIES, finding_section
from ippam.leaks.rules.registry import RECLAIMABLE_KINDS
from ippam.models import Finding
from tests.factories import make_cluster, make_finding, make_orip, make_pool
from tests.html import select, select_one, text

K = Finding.Kind


def test_the_reclaimable_kinds_are_the_ones_reclaiming_frees():
    assert {str(k) for k in RECLAIMABLE_KINDS} == RECLAIMABLE
    assert finding_section("orphaned_reservation", has_reservation=False) == "hazard"
    assert finding_section("orphaned_reservation", has_reservation=True) == "reclaimable"
    assert set(REMEDIES) >= set(K.values)  # every kind has a remedy


@pytest.mark.django_db
def test_leaks_come_before_hazards_each_kind_with_its_remedy(viewer_client):
    cluster = make_cluster("c")
    pool = make_pool(cluster, "10.1.0.0/24")
    make_finding(cluster, kind=K.DUPLICATE_ADDRESS, ip="10.1.0.5", pool=pool)
    make_finding(cluster, kind=K.UNTRACKED_ADDRESS, ip="10.1.0.6", pool=pool)
    make_finding(cluster, kind=K.ORPHANED_RESERVATION, ip="10.1.0.7", pool=pool)  # missing
    orip = make_orip(cluster, "10.1.0.8", podref="default/gone")
    make_finding(cluster, kind=K.ORPHANED_RESERVATION, ip="10.1.0.8", reservation=orip)
    make_finding(cluster, kind=K.STALE_ALLOCATION, ip="10.1.0.9", pool=pool)

    html = viewer_client.get("/leaks/").content.decode()
    sections = [s.get("data-section") for s in select(html, "tbody.finding-section")]
    assert sections == ["reclaimable", "hazard"]
    groups = [
        (g.get("data-section"), text(select_one(g, "tr.group th")).split(" (")[0])
        for g in select(html, "tbody.finding-group")
    ]
    assert groups == [
        ("reclaimable", "Orphaned reservation"),
        ("reclaimable", "Stale allocation"),
        ("hazard", "Duplicate address"),
        ("hazard", "Missing reservation"),
        ("hazard", "Untracked address"),
    ]
    remedies = [text(r) for r in select(html, "tr.group .remedy")]
    assert "restart all but one" in remedies[2] and "reserves it again" in remedies[3]
    # a hazard is not called "leaked": the badge says it is confirmed (or suspect)
    states: dict[str, set[str]] = {"reclaimable": set(), "hazard": set()}
    for g in select(html, "tbody.finding-group"):
        rows = select(g, "tr.finding")
        states[g.get("data-section")] |= {text(select(row, "td")[1]) for row in rows}
    assert "leaked" not in states["hazard"] and states["reclaimable"] == {"leaked"}
    counts = [text(select_one(s, "h2")) for s in select(html, "#leak-counts section")]
    assert counts[0].startswith("Reclaimable leaks") and counts[1].startswith("Hazards")


@pytest.mark.django_db
def test_pods_sort_by_their_number_on_the_node_and_nad_pages(viewer_client):
    from ippam.selectors.nads import nad_interfaces
    from ippam.selectors.nodes import node_pods
    from tests.factories import make_nad, make_node, make_pod

    cluster = make_cluster("c")
    node = make_node(cluster, "worker-1")
    nad = make_nad(cluster, "n1", range="10.2.0.0/24")
    names = ["amf-10", "amf-2", "amf-1", "smf-0", "amf-11", "amf"]
    for i, name in enumerate(names):
        make_pod(cluster, name, node=node, interfaces=[("net1", nad, [f"10.2.0.{i + 1}"], "")])
    expected = ["amf", "amf-1", "amf-2", "amf-10", "amf-11", "smf-0"]
    assert [p.name for p in node_pods(node=node)] == expected
    assert [i.pod.name for i in nad_interfaces(nad=nad)] == expected
    html = viewer_client.get(f"/nodes/{node.pk}/").content.decode()
    by_pk = {p.pk: p.name for p in node_pods(node=node)}
    shown = dict.fromkeys(int(pk) for pk in re.findall(r'id="pod-(\d+)"', html))
    assert [by_pk[pk] for pk in shown] == expected


@pytest.mark.django_db
def test_a_refusal_is_a_styled_page_naming_the_role_needed(viewer_client):
    response = viewer_client.get("/nads/new/")
    assert response.status_code == 403
    html = response.content.decode()
    assert select_one(html, "main .refusal") is not None  # the site's layout, not a bare text
    assert "needs the admin role" in text(select_one(html, ".refusal"))
    response = viewer_client.get("/alerts/notifications/")
    assert response.status_code == 403
    assert "needs the operator role" in text(select_one(response.content.decode(), ".refusal"))


@pytest.mark.django_db
def test_the_reclaim_dialog_title_follows_the_run(admin_client_role):
    from ippam.models import ReclaimRun

    run = ReclaimRun.objects.create(cluster=make_cluster("c"), actor="admin")
    hx = {"HTTP_HX_REQUEST": "true"}
    html = admin_client_role.get(f"/reclaim/{run.pk}/", **hx).content.decode()
    title = select_one(html, "#reclaim-dialog-title")
    assert title.get("hx-swap-oob") == "true" and text(title) == f"Reclaim run #{run.pk} — queued"
    run.state = ReclaimRun.State.DONE
    run.save()
    html = admin_client_role.get(f"/reclaim/{run.pk}/", **hx).content.decode()
    assert text(select_one(html, "#reclaim-dialog-title")).endswith("— done")
    full = admin_client_role.get(f"/reclaim/{run.pk}/").content.decode()
    with pytest.raises(AssertionError):  # the full page has its own h1, no dialog title
        select_one(full, "#reclaim-dialog-title")


@pytest.mark.django_db
def test_every_page_has_a_favicon_and_favicon_ico_finds_it(viewer_client):
    from django.contrib.staticfiles import finders

    icon = select_one(viewer_client.get("/pools/").content.decode(), 'link[rel="icon"]')
    assert icon.get("href").endswith("favicon.svg") and finders.find("favicon.svg")
    viewer_client.logout()  # browsers ask for /favicon.ico before anyone logs in
    response = viewer_client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")
