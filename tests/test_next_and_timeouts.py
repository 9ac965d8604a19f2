"""`next` never leaves the site and never turns a committed write into a 500 (issue 10, case 5);
a NAD create that times out says what really happened (issue 10, case 6)."""

from __future__ import annotations

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
    from dashboard.views import common

    seen: list[str] = []
    real = common.safe_next_url

    def spy(request, *, default):
        seen.append(Alert.objects.get(pk=alert.pk).state)
        return real(request, default=default)

    monkeypatch.setattr(common, "safe_next_url", spy)
    response = operator_client.post("/alerts/acknowledge/", {"alert": [alert.pk], "next": "foo"})
    assert response.status_code == 302 and response["Location"] == "/alerts/"
    assert seen == [Alert.State.OPEN]  # computed while nothing was written yet
    assert AuditEntry.objects.filter(action=AuditEntry.Action.ALERT_ACKNOWLEDGE).count() == 1
