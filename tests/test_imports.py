"""The import graph of ``classifier/`` and ``api/``: no cycles, and the serving path stays clear of the web layer, the
store and training (every import counts, at module level or inside a function; ``TYPE_CHECKING`` blocks do not)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("classifier", "api")
# What the service imports to score a message: the flow and everything it reaches.
SERVING_ROOTS = ("classifier.pipeline",)
NOT_FROM_SERVING = ("api", "classifier.store", "classifier.training", "classifier.evaluation", "classifier.corpus",
                    "classifier.augment", "classifier.text_model", "classifier.cli")


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(tree: ast.AST) -> list[str]:
    """Module names imported anywhere in ``tree`` except under ``if TYPE_CHECKING:``."""
    found = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            found += [n for child in node.orelse for n in _imports(ast.Module([child], []))]
            continue
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found += _imports(node)
    return found


def graph(modules: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """Module → the project modules it imports."""
    modules = modules if modules is not None else _modules()
    return {name: {m for m in _imports(ast.parse(path.read_text("utf-8"))) if m in modules and m != name}
            for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def reachable(edges: dict[str, set[str]], roots) -> set[str]:
    seen, todo = set(), list(roots)
    while todo:
        v = todo.pop()
        if v not in seen:
            seen.add(v)
            todo += edges.get(v, ())
    return seen


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_classifier_never_imports_the_web_layer():
    edges = graph()
    assert {(a, b) for a, bs in edges.items() if a.startswith("classifier") for b in bs if b.startswith("api")} == set()


def test_the_serving_path_imports_neither_store_nor_training():
    reached = reachable(graph(), SERVING_ROOTS)
    assert sorted(m for m in reached if m.startswith(NOT_FROM_SERVING)) == []


@pytest.mark.parametrize("a_source, b_source, found", [
    ("import b\n", "import a\n", [["a", "b"]]),
    ("from b import x\n", "from a import y\n", [["a", "b"]]),
    ("import b\n", "def f():\n    from a import y\n", [["a", "b"]]),
    ("import b\n", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\n", []),
    ("import b\n", "import os\n", []),
])
def test_the_checker_finds_a_cycle_through_any_import(tmp_path, a_source, b_source, found):
    """A two-module cycle is found whether the import is plain, from-import or inside a function; a type-only
    import is not one."""
    (tmp_path / "a.py").write_text(a_source)
    (tmp_path / "b.py").write_text(b_source)
    assert cycles(graph({"a": tmp_path / "a.py", "b": tmp_path / "b.py"})) == found
