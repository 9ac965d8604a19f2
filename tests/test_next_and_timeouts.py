"""`next` never leaves the site and never turns a committed write into a 500 (issue 10, case 5);
a NAD create that times out says what really happened (issue 10, case 6)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ippam.models import Alert, AuditEntry
from tests.factories import make_alert, make_cluster, make_finding, make_pool

pytestmark = [pytest.mark.django_db]

HTMX = {"HTTP_HX_REQUEST": "true"}


# --- case 5: next -------------------------------------------------------------------------


@pytest.fixture
def alert() -> Alert:
    cluster = make_cluster("prod")
    pool = make_pool(cluster, "10.0.0.0/24")
    finding = make_finding(cluster, pool=pool, ip="10.0.0.5", podref="default/gone-5")
    return make_alert(cluster, finding=finding)


UNSAFE_NEXT = [
    "https://evil.example",
    "https://evil.example/alerts/",
    "//evil.example",
    "/\\evil.example",
    "javascript:alert(1)",
    "foo",
    "ftp://testserver/alerts/",
]


@pytest.mark.parametrize("next_url", UNSAFE_NEXT)
def test_acknowledge_with_an_unsafe_next_stays_on_the_alert_list(operator_client, alert, next_url):
    response = operator_client.post(
        "/alerts/acknowledge/", {"alert": [alert.pk], "note": "n", "next": next_url}
    )
    assert response.status_code == 302
    assert response["Location"] == "/alerts/"
    alert.refresh_from_db()
    assert alert.state == Alert.State.ACKNOWLEDGED


@pytest.mark.parametrize("next_url", UNSAFE_NEXT)
def test_acknowledge_errors_with_an_unsafe_next_stay_on_the_alert_list(
    operator_client, alert, next_url
):
    response = operator_client.post("/alerts/acknowledge/", {"note": "n", "next": next_url})
    assert response.status_code == 302
    assert response["Location"] == "/alerts/"


def test_acknowledge_with_a_local_next_goes_back_there(operator_client, alert):
    response = operator_client.post(
        "/alerts/acknowledge/", {"alert": [alert.pk], "next": "/leaks/?kind=orphaned_allocation"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/leaks/?kind=orphaned_allocation"


def test_a_next_on_this_host_with_its_scheme_is_followed(operator_client, alert):
    response = operator_client.post(
        "/alerts/acknowledge/", {"alert": [alert.pk], "next": "http://testserver/leaks/"}
    )
    assert response["Location"] == "http://testserver/leaks/"


def test_an_https_page_refuses_a_plain_http_next(operator_client, alert):
    response = operator_client.post(
        "/alerts/acknowledge/",
        {"alert": [alert.pk], "next": "http://testserver/leaks/"},
        secure=True,
    )
    assert response["Location"] == "/alerts/"


def test_a_failing_redirect_target_cannot_undo_the_answer_after_commit(
    operator_client, alert, monkeypatch
):
    """The target is settled before the acknowledgement commits: a bad `next` cannot make the
    view raise afterwards, so the person never sees a 500 for a write that happened."""
    from dashboard.views import alerts as alert_views

    seen: list[str] = []
    real = alert_views.safe_next_url

    def spy(request, *, default):
        seen.append(Alert.objects.get(pk=alert.pk).state)
        return real(request, default=default)

    monkeypatch.setattr(alert_views, "safe_next_url", spy)
    response = operator_client.post("/alerts/acknowledge/", {"alert": [alert.pk], "next": "foo"})
    assert response.status_code == 302 and response["Location"] == "/alerts/"
    assert seen == [Alert.State.OPEN]  # computed while nothing was written yet
    assert AuditEntry.objects.filter(action=AuditEntry.Action.ALERT_ACKNOWLEDGE).count() == 1


# --- case 6: a NAD create whose answer never comes ----------------------------------------

NADS = "network-attachment-definitions"
NAD_PATH = r"/network-attachment-definitions"
# The client gives up after WRITE_TIMEOUT; the server answers (or not) only after LATE.
WRITE_TIMEOUT = 0.4
LATE = 1.5


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
        "wb_enable_overlapping_ranges": "on",
    }
    data.update(over)
    return data


@pytest.fixture
def sim_cluster(simcluster, settings):
    from ippam.models import Cluster

    settings.IPPAM_KUBE_WRITE_TIMEOUT = WRITE_TIMEOUT
    simcluster.load("empty")
    return Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig, simulated=True)


def nad_audit() -> AuditEntry:
    return AuditEntry.objects.get(action=AuditEntry.Action.NAD_CREATE)


def test_a_timeout_after_the_server_stored_the_nad_is_settled_as_created(
    admin_client_role, sim_cluster, simcluster
):
    from ippam.models import NetworkAttachmentDefinition

    # The server stores the NAD, then holds its answer back longer than the client waits.
    simcluster.server.add_fault(NAD_PATH, status=0, latency=LATE, method="POST", after=True)
    response = admin_client_role.post("/nads/new/", nad_post(sim_cluster))
    stored = simcluster.get(NADS, "default", "data-net")
    assert stored is not None
    nad = NetworkAttachmentDefinition.objects.get(cluster=sim_cluster, name="data-net")
    assert response.status_code == 302 and response["Location"] == f"/nads/{nad.pk}/"
    assert nad.uid == stored["metadata"]["uid"]
    entry = nad_audit()
    assert entry.outcome == "created"
    assert entry.message.startswith("created (settled after timeout)")
    # The re-read is a GET of the one object, not a list.
    gets = [
        r for r in simcluster.requests if r["method"] == "GET" and r["path"].endswith("/data-net")
    ]
    assert gets and gets[0]["status"] == 200


def test_a_timeout_with_nothing_created_says_so_and_invites_a_retry(
    admin_client_role, sim_cluster, simcluster
):
    # The server never handles the create: it answers 504 after the client gave up.
    simcluster.fault(NAD_PATH, status=504, latency=LATE, method="POST")
    response = admin_client_role.post("/nads/new/", nad_post(sim_cluster))
    assert response.status_code == 200
    (message,) = response.context["form"].non_field_errors()
    assert "was not created" in message and "submit again" in message
    assert "refused" not in message
    assert simcluster.get(NADS, "default", "data-net") is None
    entry = nad_audit()
    assert entry.outcome == "not created" and "did not answer" in entry.message


def test_a_timeout_that_cannot_be_settled_says_the_outcome_is_unknown_until_a_later_settle(
    admin_client_role, sim_cluster, simcluster, django_capture_on_commit_callbacks, monkeypatch
):
    from ippam import tasks
    from ippam.models import NetworkAttachmentDefinition

    queued: list[tuple] = []
    monkeypatch.setattr(
        "ippam.nads.current_app",
        SimpleNamespace(send_task=lambda name, **kw: queued.append((name, kw))),
    )
    simcluster.server.add_fault(NAD_PATH, status=0, latency=LATE, method="POST", after=True)
    simcluster.fault(NAD_PATH + "/data-net", status=503, method="GET")  # the re-read fails too
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_role.post("/nads/new/", nad_post(sim_cluster))
    assert response.status_code == 200
    (message,) = response.context["form"].non_field_errors()
    assert "unknown" in message
    assert "kubectl get network-attachment-definitions -n default data-net" in message
    assert "audit log" in message
    entry = nad_audit()
    assert entry.outcome == "unknown"
    assert queued == [
        ("ippam.tasks.settle_nad_create", {"args": [entry.pk], "countdown": 30.0, "retry": False})
    ]
    assert not NetworkAttachmentDefinition.objects.filter(name="data-net").exists()

    # Later, the queued task re-reads the NAD and records what really happened.
    result = tasks.settle_nad_create(entry.pk)
    entry.refresh_from_db()
    assert result["outcome"] == entry.outcome == "created"
    assert entry.message.startswith("created (settled later")
    assert NetworkAttachmentDefinition.objects.filter(cluster=sim_cluster, name="data-net").exists()
    # Settling again changes nothing.
    assert tasks.settle_nad_create(entry.pk)["outcome"] == "created"


def test_a_later_settle_of_a_nad_that_never_appeared_says_not_created(sim_cluster, simcluster):
    from ippam.nads import nad_create_settle
    from tests.factories import make_audit

    entry = make_audit(
        cluster=sim_cluster,
        target="default/never",
        action=AuditEntry.Action.NAD_CREATE,
        actor_name="admin1",
        outcome="unknown",
        after={"metadata": {"namespace": "default", "name": "never"}, "spec": {"config": ""}},
    )
    assert nad_create_settle(entry_id=entry.pk) == "not created"
    entry.refresh_from_db()
    assert entry.outcome == "not created" and "does not exist" in entry.message


def test_an_unreachable_server_is_a_plain_failure_nothing_was_sent(admin_client_role, tmp_path):
    import socket

    from ippam.models import Cluster
    from simcluster.runtime import write_kubeconfig

    with socket.socket() as s:  # a port nobody listens on: the connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kubeconfig = write_kubeconfig(str(tmp_path / "kubeconfig"), f"http://127.0.0.1:{port}")
    cluster = Cluster.objects.create(name="down", kubeconfig=kubeconfig)
    response = admin_client_role.post("/nads/new/", nad_post(cluster))
    (message,) = response.context["form"].non_field_errors()
    assert "nothing was sent" in message and "unknown" not in message
    assert nad_audit().outcome == "failed"
