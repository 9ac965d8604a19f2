"""The shape of the code, checked from its source: no import cycles among ippam and
dashboard modules (module-level and function-level imports alike), one door to Kubernetes,
and pure parsers that import no Django."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PURE = (
    "ippam.annotations",
    "ippam.cniconfig",
    "ippam.demo_login",
    "ippam.findingkinds",
    "ippam.demoseries",
    "ippam.ipparse",
    "ippam.nadbuilder",
    "ippam.poolnumbers",
    "ippam.naming",
    "ippam.ranges",
    "ippam.whereabouts",
)


def _modules() -> dict[str, Path]:
    found = {}
    for package in ("ippam", "dashboard"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module `name` imports, anywhere in its body. `from pkg import sub` counts as
    importing pkg.sub when that is a module; a package's parent is not counted (Python
    imports it first, but it cannot import the child back before the child is done)."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in known else base)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {
        name: {i for i in _imports(name, path, known) if i in known and i != name}
        for name, path in modules.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle, or [] (depth-first search, colouring nodes)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_graph_is_read_from_the_source():
    graph = _graph()
    assert "ippam.sync.full" in graph["ippam.sync"]
    assert "ippam.ranges" in graph["ippam.whereabouts"]


def test_no_import_cycle_among_ippam_and_dashboard_modules():
    assert _cycle(_graph()) == []


def test_tasks_queued_by_name_are_registered_under_that_name():
    """Services queue some tasks by name (ippam.tasks imports those services): a renamed
    task would otherwise fail only when a worker receives it."""
    from dashboard.celery import app
    from ippam.clusters import SYNC_TASK
    from ippam.nads import SETTLE_TASK
    from ippam.notify import DELIVER_TASK, FLUSH_TASK

    app.loader.import_default_modules()
    for name in (SYNC_TASK, SETTLE_TASK, DELIVER_TASK, FLUSH_TASK):
        assert name in app.tasks, name


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_only_ippam_kube_imports_kubernetes():
    modules = _modules()
    offenders = [
        name
        for name, path in modules.items()
        if not name.startswith("ippam.kube")
        and any(i.split(".")[0] == "kubernetes" for i in _imports(name, path, set(modules)))
    ]
    assert offenders == []


def test_pure_parsers_import_no_django():
    graph = _graph()
    modules = _modules()
    for name in PURE:
        seen, todo = set(), [name]
        while todo:  # the parser and every ippam module it pulls in
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            imported = _imports(current, modules[current], set(modules))
            assert not any(i.split(".")[0] == "django" for i in imported), (name, current)
            todo.extend(graph[current])


def test_every_view_of_ours_lives_in_dashboard_views():
    from django.urls import URLPattern, URLResolver, get_resolver

    def callbacks(patterns):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from callbacks(entry.url_patterns)
            elif isinstance(entry, URLPattern):
                view = entry.callback
                # DRF's router and class-based views wrap the class; name where it is defined.
                cls = getattr(view, "cls", None) or getattr(view, "view_class", None)
                yield (cls or view).__module__

    ours = {
        m for m in callbacks(get_resolver().url_patterns) if m.startswith(("dashboard", "ippam"))
    }
    assert ours, "the URLconf names no view of ours: the test reads the wrong resolver"
    assert {m for m in ours if not m.startswith("dashboard.views")} == set()


def test_the_repository_carries_its_own_design():
    """Docs and code cite docs/design.md, never a planning file outside the repository."""
    outside = ("DESIGN" + ".md", "../" + "shared")
    citing = []
    for path in ROOT.rglob("*"):
        parts = path.relative_to(ROOT).parts
        if not path.is_file() or parts[0] in {".git", ".venv", "var", "node_modules"}:
            continue
        if path.suffix not in {".py", ".md", ".html", ".toml", ".yaml", ".yml", ".txt", ""}:
            continue
        text = path.read_text(errors="replace")
        citing += [f"{path.relative_to(ROOT)}: {o}" for o in outside if o in text]
    assert citing == []
