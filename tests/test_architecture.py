"""The package's shape: imports run one way (no cycle), one error root, the registry read everywhere."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PKG = Path(__file__).resolve().parents[1] / "coverage"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _runtime_imports(tree: ast.AST) -> list[str]:
    """Modules imported anywhere in the file (function-local imports included: a lazy import is still
    a dependency), except under ``if TYPE_CHECKING:`` (annotations only, never executed)."""
    out: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for n in node.orelse:
                visit(n)
            return
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
            out.extend(f"{node.module}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def import_graph() -> nx.DiGraph:
    mods = {_module_name(p): p for p in PKG.rglob("*.py")}
    g = nx.DiGraph()
    g.add_nodes_from(mods)
    for name, path in mods.items():
        for imp in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if imp in mods and imp != name and not name.startswith(imp + "."):
                g.add_edge(name, imp)
    return g


def test_no_import_cycle_in_the_package() -> None:
    g = import_graph()
    assert len(g) > 15
    cycles = list(nx.simple_cycles(g))
    assert not cycles, f"import cycles: {cycles[:5]}"


def test_the_cycle_finder_finds_a_cycle(tmp_path: Path) -> None:
    """The check above can fail: the same walk over two modules importing each other finds the cycle."""
    a = ast.parse("from coverage.b import x\n")
    b = ast.parse("def f():\n    import coverage.a\n")
    g = nx.DiGraph([("coverage.a", m) for m in _runtime_imports(a) if m == "coverage.b"]
                   + [("coverage.b", m) for m in _runtime_imports(b) if m == "coverage.a"])
    assert list(nx.simple_cycles(g))
    tc = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from coverage.b import x\n")
    assert "coverage.b" not in _runtime_imports(tc)


def test_every_error_class_derives_from_the_one_root() -> None:
    import importlib
    import inspect

    from coverage.errors import CoverageError

    for name in sorted(import_graph()):
        if name.endswith("__main__"):
            continue
        mod = importlib.import_module(name)
        for _, cls in inspect.getmembers(mod, inspect.isclass):
            if cls.__module__.startswith("coverage") and issubclass(cls, Exception):
                assert issubclass(cls, CoverageError), (
                    f"{cls.__module__}.{cls.__name__} is outside the error family")


def test_no_module_tests_is_projected_but_the_one_check() -> None:
    """"The metric CRS must be projected" is checked by coords.require_projected only."""
    import re

    pattern = re.compile(r"not\s+[\w.()\[\]\"']+\.is_projected")
    hits = [p.name for p in PKG.rglob("*.py")
            if p.name != "coords.py" and pattern.search(p.read_text(encoding="utf-8"))]
    assert not hits, hits
