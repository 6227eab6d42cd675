"""The synergy index definition in use, read from the rule files' folder (``RULES_DIR`` replaces the shipped one)."""
from __future__ import annotations

from app.index.definition import Definition, load_definition


def _override_dir() -> str | None:
    from app.boxes.services import RULES_DIR_OVERRIDE

    return RULES_DIR_OVERRIDE.get("dir")


def definition() -> Definition:
    return load_definition(_override_dir())
