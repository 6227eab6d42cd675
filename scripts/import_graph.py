#!/usr/bin/env python
"""Print the import edges between the packages of ``app`` (``app.<package>``), from the source.

Run from the project root:  .venv/bin/python scripts/import_graph.py [--all]

Parses every ``app/**/*.py`` with :mod:`ast` (nothing is imported or executed) and prints one
line per edge ``from -> to``, with how many modules of ``from`` import ``to`` and whether every
such import sits inside a function (``lazy``: resolved at call time, so it cannot form an
import-time cycle). Modules directly under ``app/`` (``app/__init__.py``, ``config.py``,
``extensions.py``) count as the package ``app``. ``--all`` also prints the edges to ``app``.

:func:`package_edges` and :func:`flask_imports_in_services` are what
``tests/common/test_import_graph.py`` checks.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"


@dataclass
class Edge:
    modules: set[str] = field(default_factory=set)  # importing modules (dotted)
    eager: set[str] = field(default_factory=set)  # ... of which import at module level


def module_name(path: Path, app_dir: Path = APP) -> str:
    parts = list(path.relative_to(app_dir.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(module: str, app_dir: Path = APP) -> str:
    """``app.boxes.services`` → ``boxes``; ``app.config`` and ``app`` → ``app``."""
    parts = module.split(".")
    if len(parts) < 2 or (app_dir / f"{parts[1]}.py").exists():
        return "app"
    return parts[1]


def _imports(tree: ast.Module, module: str, is_package: bool, app_dir: Path = APP) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import in ``tree``."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:  # relative: resolve against this module's package
                    base = module.split(".")
                    base = base[: len(base) - child.level + (1 if is_package else 0)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                found.append((target, top))
                # ``from app import config`` imports the module app.config (``from app import DOMAINS``
                # only the package app)
                found.extend(
                    (f"{target}.{alias.name}", top)
                    for alias in child.names
                    if _is_module(f"{target}.{alias.name}", app_dir)
                )
            visit(child, inner)

    visit(tree, True)
    return found


def _is_module(dotted: str, app_dir: Path = APP) -> bool:
    path = app_dir.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _strip_type_checking(tree: ast.Module) -> ast.Module:
    """Drop ``if TYPE_CHECKING:`` blocks: annotations only, never imported at run time."""

    class Stripper(ast.NodeTransformer):
        def visit_If(self, node: ast.If):
            if _is_type_checking(node):
                return node.orelse or None
            return self.generic_visit(node)

    return Stripper().visit(tree)


def sources(app_dir: Path = APP) -> list[Path]:
    return sorted(p for p in app_dir.rglob("*.py") if "__pycache__" not in p.parts)


#: The composition root: it plugs the domains together (fill hooks, colour fact providers, rules),
#: so it imports each of them, inside ``build_wiring``. Left out of the cycle checks by design.
COMPOSITION_ROOT = "app.common.wiring"


def package_edges(app_dir: Path = APP, skip: tuple[str, ...] = ()) -> dict[tuple[str, str], Edge]:
    """``(from package, to package) → Edge`` for every import of one ``app`` package by another,
    leaving out the imports made by the modules in ``skip``."""
    edges: dict[tuple[str, str], Edge] = defaultdict(Edge)
    for path in sources(app_dir):
        module = module_name(path, app_dir)
        if module in skip:
            continue
        tree = _strip_type_checking(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        source = package_of(module, app_dir)
        for target, top in _imports(tree, module, path.name == "__init__.py", app_dir):
            if target != "app" and not target.startswith("app."):
                continue
            # ``from app.boxes import services`` also yields app.boxes.services; both map to boxes.
            dest = package_of(target, app_dir)
            if dest == source:
                continue
            edge = edges[(source, dest)]
            edge.modules.add(module)
            if top:
                edge.eager.add(module)
    return dict(edges)


def cycles(edges: dict[tuple[str, str], Edge], eager_only: bool = True) -> list[list[str]]:
    """Strongly connected groups of two or more packages (Tarjan), each sorted."""
    graph: dict[str, set[str]] = defaultdict(set)
    for (a, b), edge in edges.items():
        if a != "app" and b != "app" and (edge.eager or not eager_only):
            graph[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return sorted(groups)


def mutual_pairs(edges: dict[tuple[str, str], Edge]) -> list[tuple[str, str]]:
    """Pairs of packages that import each other (at module level or inside functions)."""
    return sorted((a, b) for (a, b) in edges if a < b and (b, a) in edges and "app" not in (a, b))


def is_services_module(path: Path, app_dir: Path = APP) -> bool:
    rel = path.relative_to(app_dir).parts
    return len(rel) >= 2 and (rel[-1] == "services.py" or rel[-2] == "services")


def flask_imports_in_services(app_dir: Path = APP) -> list[str]:
    """``module: imported name`` for every Flask import (``flask``, ``flask_*``) in a services module
    (``app/*/services.py``, ``app/*/services/*.py``), also inside functions."""
    found = []
    for path in sources(app_dir):
        if not is_services_module(path, app_dir):
            continue
        module = module_name(path, app_dir)
        tree = _strip_type_checking(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        for target, _top in _imports(tree, module, path.name == "__init__.py", app_dir):
            root = target.split(".")[0]
            if root == "flask" or root.startswith("flask_"):
                found.append(f"{module}: {target}")
    return sorted(set(found))


def main(argv: list[str]) -> int:
    edges = package_edges()
    show_app = "--all" in argv
    print("# from -> to (modules importing; 'lazy' = only inside functions)")
    for (a, b), edge in sorted(edges.items()):
        if (a == "app" or b == "app") and not show_app:
            continue
        lazy = "" if edge.eager else "  lazy"
        print(f"{a:13} -> {b:13} {len(edge.modules):2}{lazy}")
    checked = package_edges(skip=(COMPOSITION_ROOT,))
    found = cycles(checked)
    print(f"# without {COMPOSITION_ROOT} (the composition root, which imports every domain lazily):")
    print("# import-time cycles between packages:", "; ".join(" <-> ".join(g) for g in found) or "none")
    lazy_cycles = [g for g in cycles(checked, eager_only=False) if g not in found]
    if lazy_cycles:
        print("# cycles through lazy imports too:", "; ".join(" <-> ".join(g) for g in lazy_cycles))
    print("# packages importing each other:", ", ".join(f"{a} <-> {b}" for a, b in mutual_pairs(checked)) or "none")
    flask = flask_imports_in_services()
    print("# Flask imports in services modules:", ", ".join(flask) or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
