"""The acting pages end to end: NAD creation on simcluster, acknowledgement, reclamation."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from ippam.models import (
    Alert,
    AuditEntry,
    Cluster,
    Finding,
    NetworkAttachmentDefinition,
    ReclaimItem,
    ReclaimRun,
)
from tests.factories import (
    make_alert,
    make_allocation,
    make_cluster,
    make_finding,
    make_nad,
    make_pool,
)

pytestmark = [pytest.mark.django_db]


PLURAL = "network-attachment-definitions"
HTMX = {"HTTP_HX_REQUEST": "true"}


def nad_post(cluster, **over) -> dict:
    data = {
        "cluster": str(cluster.pk),
        "namespace": "default",
        "name": "data-net",
        "cni_version": "0.3.1",
        "cni_type": "macvlan",
        "macvlan_master": "eth1",
        "macvlan_mode": "bridge",
        "ipam_type": "whereabouts",
        "wb_range": "10.70.0.0/24",
        "wb_range_start": "10.70.0.10",
        "wb_gateway": "10.70.0.1",
        "wb_enable_overlapping_ranges": "on",
    }
    data.update(over)
    return data


@pytest.fixture
def sim_cluster(simcluster) -> Cluster:
    simcluster.load("empty")
    return Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig, simulated=True)


# --- NAD creation --------------------------------------------------------------------------


def test_nad_form_page_has_the_stable_ids(admin_client_role):
    make_cluster("prod")
    html = admin_client_role.get("/nads/new/").content.decode()
    for anchor in (
        'id="nad-form"',
        'id="nad-preview"',
        'id="cni-fields"',
        'id="ipam-fields"',
        'id="nad-submit"',
    ):
        assert anchor in html
    assert 'hx-trigger="input changed delay:300ms' in html
    # Without JavaScript every type's fieldset is in the page and still submits.
    for cni in ("ipvlan", "macvlan", "bridge", "host-device", "sriov"):
        assert f'data-cni="{cni}"' in html


def test_fieldset_endpoint_swaps_in_only_the_chosen_type(admin_client_role):
    html = admin_client_role.get("/nads/new/fieldset/?cni_type=sriov", **HTMX).content.decode()
    assert (
        'id="cni-fields"' in html
        and 'data-cni="sriov"' in html
        and 'name="sriov_resource_name"' in html
    )
    assert 'data-cni="macvlan"' not in html and 'name="macvlan_master"' not in html
    html = admin_client_role.get(
        "/nads/new/fieldset/?ipam_type=host-local", **HTMX
    ).content.decode()
    assert (
        'id="ipam-fields"' in html and 'name="hl_subnet"' in html and 'name="wb_range"' not in html
    )


def test_preview_shows_the_exact_manifest_and_kubectl_command(admin_client_role):
    import html as htmllib
    import re

    import yaml

    from ippam.nadbuilder import build_manifest

    cluster = make_cluster("prod")
    response = admin_client_role.post("/nads/new/preview/", nad_post(cluster), **HTMX)
    assert response.status_code == 200
    page = response.content.decode()
    manifest_text = htmllib.unescape(
        re.search(r'<pre id="nad-preview-yaml"[^>]*>(.*?)</pre>', page, re.S).group(1)
    )
    manifest = yaml.safe_load(manifest_text)
    from dashboard.forms import NADForm

    form = NADForm(nad_post(cluster))
    assert form.is_valid()
    assert manifest == form.manifest == build_manifest(form.spec)
    kubectl = htmllib.unescape(
        re.search(r'<pre id="nad-preview-kubectl"[^>]*>(.*?)</pre>', page, re.S).group(1)
    )
    assert kubectl.startswith("kubectl apply -f - <<'EOF'\n")
    assert 'id="msg-wb_gateway" hx-swap-oob="true"' in page
    assert "Warning: Gateway 10.70.0.1" not in page  # range_start .10 leaves the gateway out


def test_preview_puts_errors_and_warnings_next_to_their_fields(admin_client_role):
    cluster = make_cluster("prod")
    page = admin_client_role.post(
        "/nads/new/preview/",
        nad_post(cluster, name="Bad_Name", wb_range_start="", wb_range_end="10.80.0.1"),
        **HTMX,
    ).content.decode()
    assert "Not valid yet" in page
    assert 'data-field="name">&#x27;Bad_Name&#x27; is not a valid name' in page
    assert (
        'data-field="wb_range_end">Range end 10.80.0.1 is outside the range 10.70.0.0/24.' in page
    )
    assert 'id="nad-preview-yaml"' in page  # the draft is still shown while typing
    page = admin_client_role.post(
        "/nads/new/preview/", nad_post(cluster, wb_range_start=""), **HTMX
    ).content.decode()
    assert "Valid, with 1 warning: ready to create." in page
    assert (
        'class="warning" data-field="wb_gateway">Warning: Gateway 10.70.0.1 is inside the allocatable range'
        in page
    )


def test_create_nad_end_to_end_on_simcluster(admin_client_role, sim_cluster, simcluster):
    response = admin_client_role.post("/nads/new/", nad_post(sim_cluster))
    nad = NetworkAttachmentDefinition.objects.get(
        cluster=sim_cluster, namespace="default", name="data-net"
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("nad_detail", args=[nad.pk])
    stored = simcluster.get(PLURAL, "default", "data-net")
    assert stored is not None
    config = json.loads(stored["spec"]["config"])
    assert config["ipam"] == {
        "type": "whereabouts",
        "range": "10.70.0.0/24",
        "range_start": "10.70.0.10",
        "gateway": "10.70.0.1",
        "enable_overlapping_ranges": True,
    }
    assert nad.uid == stored["metadata"]["uid"]
    assert nad.problems == [] and nad.cni_type == "macvlan" and nad.ipam_type == "whereabouts"
    assert [r.range for r in nad.ranges.all()] == ["10.70.0.0/24"]
    entry = AuditEntry.objects.get(action=AuditEntry.Action.NAD_CREATE)
    assert (entry.actor_name, entry.target, entry.outcome, entry.cluster) == (
        "admin1",
        "default/data-net",
        "created",
        sim_cluster,
    )
    assert entry.after == stored_manifest_sent(entry)
    detail = admin_client_role.get(response["Location"])
    assert detail.status_code == 200 and b"data-net" in detail.content


def stored_manifest_sent(entry: AuditEntry) -> dict:
    assert entry.after["kind"] == "NetworkAttachmentDefinition"
    return entry.after


def test_create_with_htmx_redirects_the_browser(admin_client_role, sim_cluster):
    response = admin_client_role.post("/nads/new/", nad_post(sim_cluster, name="via-htmx"), **HTMX)
    nad = NetworkAttachmentDefinition.objects.get(name="via-htmx")
    assert response["HX-Redirect"] == reverse("nad_detail", args=[nad.pk])


def test_name_taken_in_the_cluster_is_the_apis_409_shown_on_the_name(
    admin_client_role, sim_cluster, simcluster
):
    simcluster.create(
        PLURAL,
        {
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "data-net", "namespace": "default"},
            "spec": {"config": ""},
        },
    )
    response = admin_client_role.post("/nads/new/", nad_post(sim_cluster))
    assert response.status_code == 200
    errors = response.context["form"].errors["name"]
    assert len(errors) == 1 and errors[0].startswith("The cluster refused the NAD:")
    assert "already exists" in errors[0] and "409" in errors[0]
    assert not NetworkAttachmentDefinition.objects.filter(name="data-net").exists()
    entry = AuditEntry.objects.get(action=AuditEntry.Action.NAD_CREATE)
    assert entry.outcome == "refused" and "already exists" in entry.message


def test_an_api_failure_is_a_form_error_not_a_500(admin_client_role, sim_cluster, simcluster):
    simcluster.fault(r"network-attachment-definitions", status=500, count=1, method="POST")
    response = admin_client_role.post("/nads/new/", nad_post(sim_cluster))
    assert response.status_code == 200
    (message,) = response.context["form"].non_field_errors()
    assert message.startswith("The cluster refused the NAD:") and "HTTP 500" in message
    assert simcluster.get(PLURAL, "default", "data-net") is None


def test_an_unreachable_cluster_is_a_form_error(admin_client_role):
    cluster = make_cluster("gone", kubeconfig="/nonexistent/kubeconfig")
    response = admin_client_role.post("/nads/new/", nad_post(cluster))
    assert response.status_code == 200
    (message,) = response.context["form"].non_field_errors()
    assert "cannot load kubeconfig" in message


def test_preview_button_does_not_create(admin_client_role, sim_cluster, simcluster):
    response = admin_client_role.post("/nads/new/", {**nad_post(sim_cluster), "preview": "1"})
    assert response.status_code == 200
    assert simcluster.get(PLURAL, "default", "data-net") is None
    assert b'id="nad-preview-yaml"' in response.content


def test_created_nad_parses_without_problems_for_every_cni_type(
    admin_client_role, sim_cluster, simcluster
):
    variants = {
        "v-ipvlan": {"cni_type": "ipvlan", "ipvlan_master": "eth1", "ipvlan_mode": "l2"},
        "v-bridge": {
            "cni_type": "bridge",
            "bridge_name": "br0",
            "bridge_vlan": "10",
            "ipam_type": "host-local",
            "hl_subnet": "10.71.0.0/24",
        },
        "v-hostdev": {
            "cni_type": "host-device",
            "hostdevice_pci": "0000:3b:00.1",
            "ipam_type": "static",
            "static_addresses": "10.72.0.5/24",
        },
        "v-sriov": {
            "cni_type": "sriov",
            "sriov_resource_name": "intel.com/vf",
            "ipam_type": "none",
            "mtu": "9000",
        },
    }
    for name, over in variants.items():
        response = admin_client_role.post("/nads/new/", nad_post(sim_cluster, name=name, **over))
        assert response.status_code == 302, response.context["form"].errors
    for nad in NetworkAttachmentDefinition.objects.filter(cluster=sim_cluster):
        assert nad.problems == [], (nad.name, nad.problems)
    assert NetworkAttachmentDefinition.objects.get(name="v-sriov").resource_name == "intel.com/vf"


def test_nad_detail_page_says_what_is_wrong_with_a_broken_nad(admin_client_role):
    from ippam.cniconfig import parse_cni_config

    cluster = make_cluster("prod")
    raw = '{\n  "cniVersion":"0.3.0",\n  "type": "ipvlan",\n  "master": "ens224", # defines the node interface\n  "mode": "l2"\n}'
    parsed = parse_cni_config(raw)
    nad = make_nad(
        cluster,
        "gke-network-1",
        range=None,
        config=None,
        config_raw=raw,
        problems=list(parsed.problems),
    )
    page = admin_client_role.get(reverse("nad_detail", args=[nad.pk])).content.decode()
    assert 'id="nad-problems"' in page and "comment" in page


SEED_COMMENT = """{
  "cniVersion":"0.3.0",
  "type": "ipvlan",
  "master": "ens224", # defines the node interface that this Pod interface would map to
  "mode": "l2",
  "ipam": {
    "type": "whereabouts",
    "range": "172.16.0.0/24"
   }
}"""
SEED_UNQUOTED = """{
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "ipvlan",
      "master": "eth1",
      "mode": "l2",
      "ipam": {
        "type": "whereabouts",
        "range": SECONDARY_RANGE_NAME
      }
    }
  ]
}"""


def test_seed_broken_nads_synced_from_the_cluster_say_what_is_wrong(
    admin_client_role, sim_cluster, simcluster
):
    from ippam.sync import cluster_sync_full

    for name, raw in (("gke-network-1", SEED_COMMENT), ("my-nad", SEED_UNQUOTED)):
        simcluster.create(
            PLURAL,
            {
                "apiVersion": "k8s.cni.cncf.io/v1",
                "kind": "NetworkAttachmentDefinition",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"config": raw},
            },
        )
    cluster_sync_full(cluster=sim_cluster)
    expected = {"gke-network-1": "comment", "my-nad": "unquoted value 'SECONDARY_RANGE_NAME'"}
    for name, words in expected.items():
        nad = NetworkAttachmentDefinition.objects.get(cluster=sim_cluster, name=name)
        page = admin_client_role.get(reverse("nad_detail", args=[nad.pk])).content.decode()
        assert 'id="nad-problems"' in page
        assert words in page.replace("&#x27;", "'"), (name, nad.problems)


# --- alerts --------------------------------------------------------------------------------


@pytest.fixture
def alerts():
    cluster = make_cluster("prod")
    pool = make_pool(cluster, "10.0.0.0/24")
    findings = [
        make_finding(
            cluster, pool=pool, ip=f"10.0.0.{i}", podref=f"default/gone-{i}", allocation_key=str(i)
        )
        for i in (5, 6, 7)
    ]
    return [make_alert(cluster, finding=f) for f in findings]


def test_alert_list_filters_by_state_and_kind(operator_client, alerts):
    make_alert(
        alerts[0].cluster,
        kind=Alert.Kind.POOL_EXHAUSTED,
        state=Alert.State.RESOLVED,
        message="pool full",
    )
    page = operator_client.get("/alerts/").content.decode()
    assert 'id="ack-form"' in page and page.count('name="alert" value=') == 3
    page = operator_client.get("/alerts/?state=resolved").content.decode()
    assert "pool full" in page and "gone-5" not in page
    page = operator_client.get("/alerts/?state=&kind=pool_exhausted", **HTMX).content.decode()
    assert 'id="alert-table"' in page and "pool full" in page and "<html" not in page


def test_alert_list_queries_do_not_grow_with_rows(
    operator_client, alerts, django_assert_max_num_queries
):
    cluster = alerts[0].cluster
    for i in range(30):
        make_alert(
            cluster,
            kind=Alert.Kind.POOL_THRESHOLD,
            message=f"pool {i}",
            state=Alert.State.ACKNOWLEDGED,
        )
    with django_assert_max_num_queries(15):
        assert operator_client.get("/alerts/?state=").status_code == 200


def test_nad_form_without_a_cluster_says_what_to_do(admin_client_role):
    page = admin_client_role.get("/nads/new/").content.decode()
    assert 'id="nad-no-cluster"' in page and "demo_cluster" in page


def test_viewer_sees_alerts_without_checkboxes(viewer_client, alerts):
    page = viewer_client.get("/alerts/").content.decode()
    assert "gone-5" in page and 'name="alert"' not in page and 'id="ack-submit"' not in page


def test_acknowledge_many_with_one_note_inline(operator_client, alerts):
    ids = [alerts[0].pk, alerts[1].pk]
    response = operator_client.post(
        "/alerts/acknowledge/", {"alert": ids, "note": "OPS-42"}, **HTMX
    )
    assert response.status_code == 200
    assert json.loads(response["HX-Trigger"]) == {"alerts-changed": {"ids": sorted(ids)}} or set(
        json.loads(response["HX-Trigger"])["alerts-changed"]["ids"]
    ) == set(ids)
    page = response.content.decode()
    assert 'id="ack-result"' in page and "Acknowledged 2 alerts." in page
    for pk in ids:
        assert f'<tr id="alert-{pk}" hx-swap-oob="outerHTML"' in page
    assert "by <b>operator1</b>" in page and "OPS-42" in page
    for alert in Alert.objects.filter(pk__in=ids):
        assert alert.state == Alert.State.ACKNOWLEDGED and alert.note == "OPS-42"
        assert alert.acknowledged_by.username == "operator1" and alert.acknowledged_at
    assert Alert.objects.get(pk=alerts[2].pk).state == Alert.State.OPEN
    entries = AuditEntry.objects.filter(action=AuditEntry.Action.ALERT_ACKNOWLEDGE)
    assert entries.count() == 2 and {e.actor_name for e in entries} == {"operator1"}


def test_acknowledge_without_javascript_redirects_back(operator_client, alerts):
    response = operator_client.post(
        "/alerts/acknowledge/", {"alert": [alerts[0].pk], "next": "/alerts/?state=open"}
    )
    assert response.status_code == 302 and response["Location"] == "/alerts/?state=open"
    page = operator_client.get("/alerts/?state=acknowledged").content.decode()
    assert "by <b>operator1</b>" in page and "Acknowledged 1 alert." in page


def test_acknowledge_nothing_selected_says_so(operator_client, alerts):
    response = operator_client.post("/alerts/acknowledge/", {"note": "x"}, **HTMX)
    assert response.status_code == 200  # htmx swaps only 2xx answers
    assert b"Select at least one open alert to acknowledge." in response.content


def test_acknowledge_a_resolved_alert_says_it_is_not_open(operator_client, alerts):
    Alert.objects.filter(pk=alerts[0].pk).update(
        state=Alert.State.RESOLVED, resolved_at="2026-01-01T00:00:00Z"
    )
    response = operator_client.post("/alerts/acknowledge/", {"alert": [alerts[0].pk]}, **HTMX)
    assert response.status_code == 200
    assert f"Alert {alerts[0].pk} is not open any more".encode() in response.content


def test_acknowledge_from_the_leaks_page_answers_with_the_finding_row(operator_client, alerts):
    alert = alerts[0]
    page = operator_client.get("/leaks/").content.decode()
    assert f'id="ack-finding-{alert.finding_id}"' in page
    response = operator_client.post(
        "/alerts/acknowledge/", {"alert": [alert.pk], "finding": alert.finding_id}, **HTMX
    )
    row = response.content.decode()
    assert row.strip().startswith(f'<tr id="finding-{alert.finding_id}"')
    assert "acknowledged" in row and "by operator1" in row
    assert f'id="ack-finding-{alert.finding_id}"' not in row
    assert "alerts-changed" in json.loads(response["HX-Trigger"])


def test_finding_actions_partial_offers_ack_and_reclaim_by_permission(rf, alerts, make_user):
    from django.template.loader import render_to_string

    finding = alerts[0].finding
    finding.alert = alerts[0]
    for user, ack, reclaim in (
        (make_user("v", "viewer"), False, False),
        (make_user("o", "operator"), True, False),
        (make_user("a", "admin"), True, True),
    ):
        request = rf.get("/leaks/")
        request.user = user
        html = render_to_string(
            "dashboard/actions/finding_actions.html", {"finding": finding}, request=request
        )
        assert (f'id="ack-finding-{finding.pk}"' in html) is ack
        assert (f'id="reclaim-finding-{finding.pk}"' in html) is reclaim


# --- reclamation ---------------------------------------------------------------------------


@pytest.fixture
def leak():
    cluster = make_cluster("prod")
    pool = make_pool(cluster, "10.0.0.0/24")
    allocation = make_allocation(pool, "10.0.0.9", podref="default/gone")
    finding = make_finding(cluster, allocation=allocation)
    return finding


def test_plan_from_a_finding_opens_the_dry_run_dialog(admin_client_role, leak):
    response = admin_client_role.post("/reclaim/plan/", {"finding": [leak.pk]}, **HTMX)
    assert response.status_code == 200
    page = response.content.decode()
    run = ReclaimRun.objects.get()
    # static/js/ippam.js shows every swapped-in <dialog data-modal> modally (no inline script).
    assert '<dialog id="reclaim-dialog"' in page and "data-modal" in page
    assert 'id="reclaim-plan-items"' in page and "10.0.0.9" in page and "default/gone" in page
    assert f'hx-post="/reclaim/{run.pk}/execute/"' in page
    assert run.state == ReclaimRun.State.PLANNED and run.actor == "admin1"
    item = run.items.get()
    assert (item.pool_name, item.allocation_key, str(item.ip), item.podref) == (
        leak.pool.name,
        leak.allocation_key,
        "10.0.0.9",
        "default/gone",
    )


def test_plan_from_a_pool_and_from_selected_alerts(admin_client_role, leak):
    alert = make_alert(leak.cluster, finding=leak)
    for data in ({"pool": leak.pool.pk}, {"alert": [alert.pk]}):
        response = admin_client_role.post("/reclaim/plan/", data, **HTMX)
        assert response.status_code == 200 and b"10.0.0.9" in response.content
    assert ReclaimRun.objects.count() == 2


def test_plan_without_a_choice_says_what_to_choose(admin_client_role, leak):
    response = admin_client_role.post("/reclaim/plan/", {}, **HTMX)
    assert response.status_code == 200
    assert b'<dialog id="reclaim-dialog"' in response.content
    assert b"Choose findings, alerts with findings, or a pool" in response.content
    assert not ReclaimRun.objects.exists()


def test_plan_for_findings_gone_meanwhile_says_so(admin_client_role, leak):
    response = admin_client_role.post("/reclaim/plan/", {"finding": [leak.pk + 1000]}, **HTMX)
    assert b"None of the chosen findings exists any more" in response.content
    assert not ReclaimRun.objects.exists()


def test_acknowledge_is_all_or_nothing_when_one_alert_resolves_meanwhile(
    operator_client, alerts, monkeypatch
):
    from ippam import leaks
    from ippam.services import alerts as service

    real = leaks.alert_acknowledge

    def racing(*, alert, user, note=""):
        if alert.pk == alerts[1].pk:
            raise leaks.AlertError(f"alert {alert.identity} was resolved")
        return real(alert=alert, user=user, note=note)

    monkeypatch.setattr(service, "alert_acknowledge", racing)
    response = operator_client.post(
        "/alerts/acknowledge/", {"alert": [alerts[0].pk, alerts[1].pk]}, **HTMX
    )
    assert response.status_code == 200 and b"Nothing was acknowledged" in response.content
    assert Alert.objects.filter(state=Alert.State.OPEN).count() == 3


def test_plan_without_javascript_is_a_page(admin_client_role, leak):
    response = admin_client_role.post("/reclaim/plan/", {"finding": [leak.pk]})
    assert (
        response.status_code == 200
        and b"<html" in response.content
        and b'id="reclaim-execute"' in response.content
    )


def test_execute_enqueues_after_commit_and_answers_with_polling_progress(
    admin_client_role, leak, monkeypatch, django_capture_on_commit_callbacks
):
    from ippam.leaks import tasks

    sent = []
    monkeypatch.setattr(tasks.reclaim_run, "apply_async", lambda args, **kw: sent.append(args))
    admin_client_role.post("/reclaim/plan/", {"finding": [leak.pk]}, **HTMX)
    run = ReclaimRun.objects.get()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client_role.post(f"/reclaim/{run.pk}/execute/", **HTMX)
        assert sent == []  # nothing is sent before the transaction commits
    for callback in callbacks:
        callback()
    assert sent == [[run.pk]]
    page = response.content.decode()
    assert 'id="reclaim-progress"' in page and 'hx-trigger="every 1s"' in page
    assert "waiting for a Celery worker" in page


def test_celery_unreachable_is_said_not_a_500(admin_client_role, leak, monkeypatch):
    from kombu.exceptions import OperationalError

    from ippam.leaks import tasks

    def refuse(*a, **kw):
        raise OperationalError("Error 111 connecting to localhost:6379. Connection refused.")

    monkeypatch.setattr(tasks.reclaim_run, "apply_async", refuse)
    admin_client_role.post("/reclaim/plan/", {"finding": [leak.pk]}, **HTMX)
    run = ReclaimRun.objects.get()
    # In production (autocommit) on_commit runs at once; the test transaction would defer it.
    monkeypatch.setattr(
        "django.db.transaction.on_commit", lambda fn, using=None, robust=False: fn()
    )
    response = admin_client_role.post(f"/reclaim/{run.pk}/execute/", **HTMX)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="reclaim-queue-error"' in page and "The task queue is not reachable" in page
    assert 'hx-trigger="every 1s"' not in page


def test_progress_shows_each_item_outcome_and_stops_polling_when_done(admin_client_role, leak):
    admin_client_role.post("/reclaim/plan/", {"finding": [leak.pk]}, **HTMX)
    run = ReclaimRun.objects.get()
    ReclaimRun.objects.filter(pk=run.pk).update(state=ReclaimRun.State.RUNNING)
    page = admin_client_role.get(f"/reclaim/{run.pk}/", **HTMX).content.decode()
    assert 'hx-trigger="every 1s"' in page and "Running" in page
    ReclaimItem.objects.filter(run=run).update(
        outcome=ReclaimItem.Outcome.RECLAIMED, message="freed"
    )
    ReclaimRun.objects.filter(pk=run.pk).update(state=ReclaimRun.State.DONE)
    response = admin_client_role.get(f"/reclaim/{run.pk}/", **HTMX)
    page = response.content.decode()
    assert 'hx-trigger="every 1s"' not in page and "Done: 1 reclaimed." in page
    assert 'data-outcome="reclaimed"' in page and "freed" in page
    assert "reclaim-finished" in json.loads(response["HX-Trigger"])


def test_reclaim_from_dry_run_to_done_on_simcluster_demo(admin_client_role, simcluster, settings):
    from ippam.leaks import leaks_detect
    from ippam.leaks.tasks import reclaim_run
    from ippam.sync import cluster_sync_full

    settings.IPPAM_LEAK_GRACE_SECONDS = 0
    simcluster.load("demo", seed=1)
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig, simulated=True)
    cluster_sync_full(cluster=cluster)
    leaks_detect(cluster=cluster)
    finding = Finding.objects.filter(
        cluster=cluster, kind=Finding.Kind.ORPHANED_ALLOCATION, state=Finding.State.LEAKED
    ).first()
    assert finding is not None
    pool = finding.pool
    before = simcluster.get("ippools", pool.namespace, pool.name)["spec"]["allocations"]
    assert finding.allocation_key in before

    response = admin_client_role.post("/reclaim/plan/", {"finding": [finding.pk]}, **HTMX)
    assert response.status_code == 200
    run = ReclaimRun.objects.get()
    admin_client_role.post(f"/reclaim/{run.pk}/execute/", **HTMX)
    reclaim_run(run.pk)  # the task body, as a worker would run it

    page = admin_client_role.get(f"/reclaim/{run.pk}/", **HTMX).content.decode()
    assert (
        "Done" in page
        and 'data-outcome="reclaimed"' in page
        and 'hx-trigger="every 1s"' not in page
    )
    after = simcluster.get("ippools", pool.namespace, pool.name)["spec"].get("allocations") or {}
    assert finding.allocation_key not in after
    assert AuditEntry.objects.filter(
        action=AuditEntry.Action.ALLOCATION_RECLAIM, outcome="reclaimed"
    ).exists()
    audit = admin_client_role.get("/audit/?action=allocation_reclaim").content.decode()
    assert str(finding.ip) in audit or pool.name in audit
