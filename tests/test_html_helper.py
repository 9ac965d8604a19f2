"""tests/html.py: structural HTML assertions behave as a reader of the page expects."""

from __future__ import annotations

import pytest

from tests.html import parse, select, select_one, text

PAGE = b"""<!doctype html><html><head><style>.x{}</style></head><body>
<!-- <div id="in-comment" hx-trigger="every 1s"></div> -->
<table id="audit-table" class="table compact"><tbody>
  <tr class="row leaked" data-ip="10.0.0.5"><td>10.0.0.5</td><td>&#x27;1&#x27; is null</td></tr>
  <tr class="row"><td>10.0.0.6<br>web-1</td><td><input type=checkbox checked></td></tr>
</tbody></table>
<div hx-get='/x/' hx-trigger='every 1s' aria-live=polite><p>Reclaiming <b>2</b> items</p></div>
</body></html>"""


def test_select_by_id_class_attribute_and_descendant():
    assert [r["data-ip"] for r in select(PAGE, "#audit-table tr.leaked")] == ["10.0.0.5"]
    assert len(select(PAGE, "#audit-table tbody tr.row")) == 2
    assert len(select(PAGE, "table.table.compact td")) == 4
    assert select_one(PAGE, "input[type=checkbox]")["checked"] == ""
    assert select_one(PAGE, "[hx-trigger='every 1s']")["hx-get"] == "/x/"


def test_markup_in_comments_is_not_an_element():
    assert select(PAGE, "#in-comment") == []
    assert len(select(PAGE, '[hx-trigger="every 1s"]')) == 1


def test_text_is_unescaped_and_collapsed_without_styles():
    assert text(select_one(PAGE, "tr.leaked")) == "10.0.0.5'1' is null"
    assert text(select_one(PAGE, "div p")) == "Reclaiming 2 items"
    assert ".x{}" not in text(PAGE)


def test_select_one_fails_on_none_or_several():
    with pytest.raises(AssertionError, match="found 0"):
        select_one(PAGE, "#missing")
    with pytest.raises(AssertionError, match="found 2"):
        select_one(PAGE, "tr")


def test_fragments_and_void_elements_parse():
    frag = parse('<td>a<br>b</td><td><img src="x.png" alt="map cell"></td>')
    assert [c.tag for c in frag.children if not isinstance(c, str)] == ["td", "td"]
    assert select_one(frag, "img")["alt"] == "map cell"
    with pytest.raises(ValueError):
        select(frag, "td > img")
