"""The synergy index definition in use, read from the rule files' folder (``RULES_DIR`` replaces the shipped one)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.common.wiring import wiring_of
from app.index.definition import Definition


def definition(session: Session) -> Definition:
    """The index definition of the app that made ``session`` (its RULES_DIR): app.common.wiring."""
    return wiring_of(session).index_definition()
