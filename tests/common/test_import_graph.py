"""The direction of imports between the packages of ``app`` (scripts/import_graph.py): no new cycle
between packages, no Flask in a services module. docs/architecture.md prints the graph."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
graph = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("import_graph", graph)  # dataclasses look their module up there
_spec.loader.exec_module(graph)

# Cycles that exist today (leaving out app.common.wiring, the composition root, which imports every
# domain inside build_wiring by design). Shrink this list; never grow it.
ALLOWED_CYCLES = [
    # app.common.auth (bearer tokens, current_principal) imports app.accounts.models/services, and
    # every accounts module imports app.common. Proposed cut: auth moves to app.accounts (views
    # would import it from there), leaving app.common free of domain imports.
    ["accounts", "common"],
    # The demo's closed loop (app/ledger/demo/refills.py) records regeneration batches between its
    # manifest steps, while app.regeneration builds on the ledger. Proposed cut: the batch part
    # becomes app/regeneration/demo.py, a demo extension of its own listed after the ledger's
    # (app.common.wiring.demo_extensions).
    # The manifest steps take their signature rules from app.audit (signatures.py), as the issue
    # asks, while app.audit reads manifests lazily for the trail's jurisdiction and its page helpers
    # (audit/services.py, audit/pages.py). Proposed cut: the manifest-specific scoping and page
    # helpers move to app.ledger (a trail scope registered in app.common.wiring), so that app.audit
    # imports no domain package. (One strongly connected component with ledger <-> regeneration.)
    ["audit", "ledger", "regeneration"],
]
# Services modules (app/*/services.py, app/*/services/*.py) that import Flask today: none.
ALLOWED_FLASK_IN_SERVICES: list[str] = []


def test_no_new_cycle_between_packages():
    edges = graph.package_edges(skip=(graph.COMPOSITION_ROOT,))
    found = graph.cycles(edges, eager_only=False)  # imports inside functions count too
    assert found == ALLOWED_CYCLES, (
        f"cycles between packages {found}; allowed {ALLOWED_CYCLES}. A new cycle: invert the new "
        "import (a hook in app.common.wiring, or move the code); a cycle gone: shrink ALLOWED_CYCLES."
    )


def test_no_flask_import_in_a_services_module():
    assert graph.flask_imports_in_services() == ALLOWED_FLASK_IN_SERVICES


def test_the_checks_find_a_cycle_and_a_flask_import(tmp_path):
    """The checker itself, on a made-up tree: a cycle through a lazy import, a relative import,
    a Flask import inside a function of services/, and a TYPE_CHECKING import that counts for nothing."""
    app = tmp_path / "app"
    for folder in ("alpha", "beta", "gamma", "gamma/services"):
        (app / folder).mkdir(parents=True)
        (app / folder / "__init__.py").write_text("")
    (app / "__init__.py").write_text("DOMAINS = ()\n")
    (app / "config.py").write_text("")
    (app / "alpha" / "models.py").write_text("from app.beta import views\nfrom app import config\n")
    (app / "beta" / "views.py").write_text("def f():\n    from app.alpha.models import X\n")
    (app / "gamma" / "services" / "rules.py").write_text(
        "from typing import TYPE_CHECKING\nfrom ..services import rules\nfrom app import DOMAINS\n"
        "if TYPE_CHECKING:\n    from app.alpha import models\n"
        "def g():\n    from flask import current_app\n"
    )
    edges = graph.package_edges(app)
    assert set(edges) == {("alpha", "beta"), ("beta", "alpha"), ("alpha", "app"), ("gamma", "app")}
    assert not edges[("beta", "alpha")].eager and edges[("alpha", "beta")].eager
    assert graph.cycles(edges) == []  # at import time there is none...
    assert graph.cycles(edges, eager_only=False) == [["alpha", "beta"]]  # ...but a cycle all the same
    assert graph.mutual_pairs(edges) == [("alpha", "beta")]
    assert graph.flask_imports_in_services(app) == ["app.gamma.services.rules: flask"]


def test_the_script_prints_the_edges():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "import_graph.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.split()[:3] == ["ledger", "->", "accounts"] for line in lines)
    assert not any(line.split()[:3] == ["common", "->", "ledger"] and "lazy" not in line for line in lines)
    assert "# Flask imports in services modules: none" in lines
