"""Every main page renders under a strict Content-Security-Policy (no 'unsafe-inline'):
no style attribute, no inline event handler (on*= or htmx's eval-based hx-on), no inline
<script>, no <style> block. Checked on the parsed HTML, not by string search."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from ippam.models import Finding, IPPool, NetworkAttachmentDefinition, Node
from tests.factories import make_demo, make_pool

pytestmark = pytest.mark.django_db


class InlineCode(HTMLParser):
    """Collects what a strict CSP would block in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name.lower() for name, _ in attrs}
        if tag == "style":
            self.found.append("<style> element")
        if tag == "script" and "src" not in names:
            self.found.append("<script> without src")
        for name in names:
            if name == "style":
                self.found.append(f"style= on <{tag}>")
            elif name.startswith("on") or name.startswith("hx-on") or name.startswith("data-hx-on"):
                self.found.append(f"{name}= on <{tag}>")


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    return parser.found


def test_the_scanner_finds_what_a_strict_policy_blocks():
    html = (
        '<div style="width:1%"></div><select onchange="x()"></select><dialog hx-on::load="y"></dialog>'
        "<script>z()</script><script src='/a.js'></script><style>p{}</style>"
    )
    assert sorted(inline_code(html)) == sorted(
        [
            "style= on <div>",
            "onchange= on <select>",
            "hx-on::load= on <dialog>",
            "<script> without src",
            "<style> element",
        ]
    )


@pytest.fixture
def scene():
    demo = make_demo()
    cluster = demo.get("cluster") or IPPool.objects.first().cluster
    make_pool(cluster, "10.30.0.0/16", usable=65534)  # large enough for the heat map
    return cluster


def main_pages() -> list[str]:
    pool = IPPool.objects.filter(range__endswith="/24").first()
    big = IPPool.objects.filter(range__endswith="/16").first()
    finding = Finding.objects.exclude(ip=None).first()
    return [
        "/",
        "/pools/",
        f"/pools/{pool.pk}/",
        f"/pools/{big.pk}/",
        "/nads/",
        f"/nads/{NetworkAttachmentDefinition.objects.first().pk}/",
        "/nodes/",
        f"/nodes/{Node.objects.first().pk}/",
        "/leaks/",
        f"/search/?q={finding.ip if finding else '10.10.0.10'}",
        "/search/?q=web",
        "/alerts/",
        "/audit/",
        "/nads/new/",
    ]


def test_every_main_page_has_no_inline_script_or_style(admin_client_role, scene):
    for url in main_pages():
        response = admin_client_role.get(url)
        assert response.status_code == 200, url
        assert inline_code(response.content.decode()) == [], url


def test_the_reclaim_dialog_and_the_login_page_have_none_either(admin_client_role, client, scene):
    finding = Finding.objects.filter(state=Finding.State.LEAKED).first()
    dialog = admin_client_role.post(
        "/reclaim/plan/", {"finding": [finding.pk]}, HTTP_HX_REQUEST="true"
    )
    assert 'id="reclaim-dialog"' in dialog.content.decode()
    assert inline_code(dialog.content.decode()) == []
    client.logout()
    assert inline_code(client.get("/login/").content.decode()) == []


class Controls(HTMLParser):
    """Form controls and what labels them; sortable headers and their aria-sort."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.open_labels = 0
        self.sortable: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label":
            self.open_labels += 1
            if a.get("for"):
                self.label_for.add(a["for"] or "")
        if tag in ("input", "select", "textarea") and a.get("type") not in (
            "hidden",
            "submit",
            "button",
        ):
            self.controls.append({**a, "in_label": "yes" if self.open_labels else None})
        if tag == "th" and "sortable" in (a.get("class") or ""):
            self.sortable.append(a.get("aria-sort"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self.open_labels:
            self.open_labels -= 1


def unlabelled(html: str) -> list[str]:
    parser = Controls()
    parser.feed(html)
    return [
        str(c.get("name") or c.get("id"))
        for c in parser.controls
        if not (c.get("aria-label") or c.get("in_label") or c.get("id") in parser.label_for)
    ]


def test_every_control_on_the_main_pages_has_a_label(admin_client_role, scene):
    for url in main_pages():
        assert unlabelled(admin_client_role.get(url).content.decode()) == [], url


def test_sortable_headers_say_how_they_sort(viewer_client, scene):
    parser = Controls()
    parser.feed(viewer_client.get("/pools/?sort=-utilization").content.decode())
    assert parser.sortable.count("descending") == 1
    assert parser.sortable.count("none") == len(parser.sortable) - 1 > 3
    parser = Controls()
    parser.feed(viewer_client.get("/nodes/?sort=name").content.decode())
    assert "ascending" in parser.sortable
