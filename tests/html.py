"""Assert on HTML by structure, not by exact markup.

A test that checks `'hx-trigger="every 1s"' in page` breaks when a template reorders
attributes, switches quotes or escapes differently, and passes when the string sits in a
comment. Parse instead, and ask for elements:

    from tests.html import select, select_one, text

    page = client.get("/audit/").content
    assert select_one(page, "#audit-table")            # exactly one, else AssertionError
    assert len(select(page, "#audit-table tbody tr")) == 3
    assert select(page, "[hx-trigger='every 1s']") == []
    assert "status.conditions is a string" in text(select_one(page, "#node-problems"))
    assert select_one(page, "a.sort")["aria-sort"] == "ascending"

Selectors are a small CSS subset: `tag`, `#id`, `.class`, `[attr]`, `[attr=value]` (value
bare or quoted), combined without spaces (`tr.leaked[data-ip]`), and descendants separated
by spaces (`#map td.free`). Text is unescaped and whitespace-collapsed, as a reader sees it.
Only the standard library: html.parser, which tolerates the fragments htmx swaps in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

# Elements that never have children (HTML's void elements): no end tag to wait for.
VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


@dataclass(eq=False)
class Element:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Element | str] = field(default_factory=list)
    parent: Element | None = field(default=None, repr=False)

    def __getitem__(self, name: str) -> str:
        return self.attrs[name]

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.attrs.get(name, default)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self) -> Iterator[Element]:
        """Every element below this one, in document order."""
        for child in self.children:
            if isinstance(child, Element):
                yield child
                yield from child.iter()

    @property
    def text(self) -> str:
        return text(self)

    def __repr__(self) -> str:
        attrs = "".join(f" {k}={v!r}" for k, v in self.attrs.items())
        return f"<{self.tag}{attrs}>"


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document")
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = Element(tag, {k: v if v is not None else "" for k, v in attrs}, parent=self.current)
        self.current.children.append(el)
        if tag not in VOID:
            self.current = el

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(
            Element(tag, {k: v if v is not None else "" for k, v in attrs}, parent=self.current)
        )

    def handle_endtag(self, tag: str) -> None:
        # Close up to the nearest open element of this tag; a stray end tag is ignored,
        # as browsers do.
        node: Element | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def parse(html: str | bytes | Element) -> Element:
    """The document as a tree (a `#document` element at the root)."""
    if isinstance(html, Element):
        return html
    if isinstance(html, bytes):
        html = html.decode()
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


_COMPOUND = re.compile(
    r"""(?P<tag>[a-zA-Z][\w-]*|\*)?
        (?P<rest>(?:\#[\w-]+|\.[\w-]+|\[[\w:.-]+(?:=(?:"[^"]*"|'[^']*'|[^\]]*))?\])*)$""",
    re.VERBOSE,
)
_PART = re.compile(r"""\#([\w-]+)|\.([\w-]+)|\[([\w:.-]+)(?:=("[^"]*"|'[^']*'|[^\]]*))?\]""")


def _matcher(compound: str):
    m = _COMPOUND.match(compound)
    if not m or not compound:
        raise ValueError(f"unsupported selector part {compound!r} (see tests/html.py)")
    tag = m.group("tag")
    checks: list[tuple[str, str, str | None]] = []
    for id_, cls, attr, value in _PART.findall(m.group("rest")):
        if id_:
            checks.append(("attr", "id", id_))
        elif cls:
            checks.append(("class", cls, None))
        else:
            checks.append(("attr", attr, value.strip("\"'") if value else None))

    def matches(el: Element) -> bool:
        if tag and tag != "*" and el.tag != tag.lower():
            return False
        for kind, name, want in checks:
            if kind == "class":
                if name not in el.classes:
                    return False
            elif name not in el.attrs or (want is not None and el.attrs[name] != want):
                return False
        return True

    return matches


def select(html: str | bytes | Element, selector: str) -> list[Element]:
    """Every element matching `selector`, in document order."""
    # split on spaces outside [...], so that [hx-trigger="every 1s"] stays one part
    parts = [_matcher(p) for p in re.findall(r"(?:\[[^\]]*\]|[^\s\[])+", selector)]
    if not parts:
        raise ValueError("empty selector")
    found: list[Element] = []
    for el in parse(html).iter():
        if not parts[-1](el):
            continue
        # the remaining parts must match ancestors, innermost last
        want = len(parts) - 2
        node = el.parent
        while want >= 0 and node is not None:
            if parts[want](node):
                want -= 1
            node = node.parent
        if want < 0:
            found.append(el)
    return found


def select_one(html: str | bytes | Element, selector: str) -> Element:
    """The one element matching `selector`; fails the test if there are none or several."""
    found = select(html, selector)
    assert len(found) == 1, f"expected one element for {selector!r}, found {len(found)}"
    return found[0]


def text(html: str | bytes | Element) -> str:
    """The text a reader sees: entities unescaped, whitespace collapsed, scripts and styles
    left out."""
    root = parse(html)
    chunks: list[str] = []

    def walk(el: Element) -> None:
        if el.tag in ("script", "style"):
            return
        for child in el.children:
            if isinstance(child, str):
                chunks.append(child)
            else:
                walk(child)

    walk(root)
    return " ".join("".join(chunks).split())
