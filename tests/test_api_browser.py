"""The API docs page in headless Chromium under the strict Content-Security-Policy: Swagger
UI (drf-spectacular-sidecar's local files) renders the schema with no CSP violation."""

from __future__ import annotations

import pytest

from tests.browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_api_docs_render_with_no_csp_violation(page, live_server, make_user):
    from playwright.sync_api import expect

    user = make_user("alice", "viewer")
    user.set_password("alice-pw-123")
    user.save()
    violations: list[str] = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    log_in(page, live_server.url, "alice", "alice-pw-123")
    page.goto(f"{live_server.url}/api/v1/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("ippam API")
    expect(
        page.locator(".opblock-summary-path", has_text="/api/v1/pools/{id}/free/")
    ).to_be_visible()
    assert violations == []
