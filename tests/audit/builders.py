"""Helpers for the audit tests (no tests here): tampering behind the application's back, verify."""

from __future__ import annotations

from sqlalchemy import text

from app.extensions import db


def tamper(sql: str, **params) -> None:
    """Run SQL directly on the database, outside the app's sessions (as an insider would)."""
    db.session.rollback()
    with db.engine.begin() as conn:
        if "audit_entries" in sql and conn.dialect.name == "postgresql":
            # The insider disables the append-only trigger first (a superuser can).
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(sql), params)


def verify(app, *args: str):
    db.session.rollback()
    db.session.remove()
    return app.test_cli_runner().invoke(args=["audit", "verify", *args])
