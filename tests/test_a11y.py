"""Accessibility in the markup, without a browser: every page's landmarks, skip link and live
region, named table headers, and utilization bars that say their level in a shape and words
as well as a colour. axe-core checks the rendered pages in tests/test_a11y_browser.py."""

from __future__ import annotations

import pytest

from dashboard.templatetags.ippam_tags import util_bar
from tests.factories import make_demo
from tests.html import select, select_one, text

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("utilization", "level", "mark", "label"),
    [
        (0.5, "ok", "", "50% used"),
        (0.8, "warn", "▲", "80% used, high"),
        (0.95, "bad", "■", "95% used, critical"),
    ],
)
def test_util_bar_says_its_level_beyond_colour(utilization, level, mark, label):
    bar = select_one(util_bar(utilization), "div.bar")
    assert bar.classes == {"bar", level}
    assert bar["role"] == "img"
    assert bar["aria-label"] == label
    # The percent sits beside the track, not over the coloured fill.
    assert select(bar, ".track em") == []
    assert text(select_one(bar, "em")) == f"{mark}{label.split()[0]}"
    marks = select(bar, "em .level")
    assert [m.text for m in marks] == ([mark] if mark else [])
    assert all(m["aria-hidden"] == "true" for m in marks)


@pytest.fixture
def pages(admin_client_role):
    demo = make_demo()
    pool, nad, node = demo["pools"][0], demo["nads"][0], demo["nodes"][0]
    return {
        url: admin_client_role.get(url).content
        for url in (
            "/",
            "/pools/",
            f"/pools/{pool.pk}/",
            "/nads/",
            f"/nads/{nad.pk}/",
            "/nodes/",
            f"/nodes/{node.pk}/",
            "/leaks/",
            "/alerts/",
            "/audit/",
            "/nads/new/",
            "/search/?q=10.10.0.51",
        )
    }


def test_every_page_has_landmarks_a_skip_link_and_a_live_region(pages):
    for url, html in pages.items():
        body = select_one(html, "body")
        first = next(body.iter())
        assert first.tag == "a" and first["href"] == "#content", url
        assert "skip-link" in first.classes, url
        for landmark in ("header", "main#content", "footer"):
            assert len(select(html, landmark)) == 1, (url, landmark)
        assert select_one(html, "header nav#main-nav")["aria-label"], url
        # Nothing of the page outside a landmark: body holds only them, the skip link and
        # the live region.
        outside = [
            el
            for el in body.children
            if not isinstance(el, str) and el.tag not in ("header", "main", "footer")
        ]
        assert [el.get("id") or el.get("class") for el in outside] == [
            "skip-link",
            "live-region",
        ], url
        live = select_one(html, "#live-region")
        assert (live["role"], live["aria-live"]) == ("status", "polite"), url


def test_every_table_header_is_named(pages):
    for url, html in pages.items():
        for th in select(html, "th"):
            named = text(th) or any(el.get("aria-label") for el in th.iter())
            assert named, (url, th)


def test_a_table_sort_header_keeps_its_key_for_focus(pages):
    # ippam.js finds the same header again after htmx replaces the table.
    headers = select(pages["/pools/"], "th.sortable a")
    assert headers and all(a["data-focus-key"].startswith("sort-") for a in headers)
    keys = [a["data-focus-key"] for a in headers]
    assert len(keys) == len(set(keys))
