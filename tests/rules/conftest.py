"""Fixtures of the rules tests."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _restore_rules_dir_override():
    """Tests here build apps with their own RULES_DIR. create_app writes it into a process-wide
    override (app.boxes.services.RULES_DIR_OVERRIDE) that outlives the app, and when the folder is
    broken the start fails after writing it: every later test of this worker would then load that
    folder's rules. Put the override back after each test (remove once the app keeps it per app)."""
    from app.boxes import services

    override = getattr(services, "RULES_DIR_OVERRIDE", None)
    saved = dict(override) if override is not None else None
    yield
    if override is not None and saved is not None:
        override.clear()
        override.update(saved)
