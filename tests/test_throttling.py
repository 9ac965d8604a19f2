"""Guessing is throttled (issue 21, item 6): log-ins lock out per user name and per client
address with a 429 that says so; bad API tokens from one address get 429."""

from __future__ import annotations

import pytest
from django.core.cache import caches

from tests.html import text

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_throttle_cache():
    caches["throttle"].clear()
    yield
    caches["throttle"].clear()


def log_in(client, username: str, password: str, address: str = "10.1.1.1"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_fifteen_wrong_passwords_for_one_user_are_refused_with_429(client, make_user, settings):
    make_user("alice", "viewer")
    answers = [
        log_in(client, "alice", f"guess-{n}", address=f"10.0.0.{n}").status_code for n in range(15)
    ]
    # Ten failures (from ten addresses) are answered as wrong; from then on, 429.
    limit = settings.IPPAM_LOGIN_FAILURE_LIMIT
    assert answers[: limit - 1] == [200] * (limit - 1)
    assert set(answers[limit:]) == {429}
    # Even the right password: the account is locked, and the page says why.
    locked = log_in(client, "alice", "pw-for-tests-1", address="10.0.9.9")
    assert locked.status_code == 429
    assert "Too many failed log-ins" in text(locked.content)


def test_one_address_guessing_many_names_is_locked_out(client, make_user, settings):
    make_user("bob", "viewer")
    for n in range(settings.IPPAM_LOGIN_FAILURE_LIMIT):
        log_in(client, f"user-{n}", "nope", address="10.2.2.2")
    assert log_in(client, "bob", "pw-for-tests-1", address="10.2.2.2").status_code == 429
    # Another address may still log in as bob.
    assert log_in(client, "bob", "pw-for-tests-1", address="10.3.3.3").status_code == 302


def test_the_limit_is_configurable(client, make_user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    make_user("carol", "viewer")
    answers = [log_in(client, "carol", "x", address=f"10.4.0.{n}").status_code for n in range(4)]
    assert answers == [200, 200, 429, 429]


def test_bad_api_tokens_from_one_address_get_429(client, make_user, settings):
    settings.IPPAM_TOKEN_FAILURE_RATE = "5/min"
    answers = [
        client.get(
            "/api/v1/pools/", HTTP_AUTHORIZATION=f"Token bad-{n}", REMOTE_ADDR="10.5.5.5"
        ).status_code
        for n in range(8)
    ]
    assert answers == [401] * 5 + [429] * 3
    throttled = client.get("/api/v1/pools/", HTTP_AUTHORIZATION="Token x", REMOTE_ADDR="10.5.5.5")
    assert int(throttled["Retry-After"]) >= 1
    # Another address is not held back by this one's guesses.
    other = client.get("/api/v1/pools/", HTTP_AUTHORIZATION="Token bad", REMOTE_ADDR="10.6.6.6")
    assert other.status_code == 401


def test_behind_a_trusted_proxy_the_forwarded_address_counts(settings):
    from django.test import RequestFactory

    from dashboard.throttling import client_ip

    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7"
    )
    assert client_ip(request) == "10.9.9.9"
    settings.IPPAM_TRUSTED_PROXIES = 1
    assert client_ip(request) == "203.0.113.7"  # not the spoofable first entry
