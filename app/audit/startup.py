"""Installing the audit trail on an app (called once by :func:`app.create_app`)."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError


def init_app(app: Flask) -> None:
    from app.audit import recorder
    from app.common.wiring import WiredSession

    recorder.install(WiredSession)
    if app.config.get("AUDIT_ENABLED", True):
        record_rule_files(app)


def record_rule_files(app: Flask) -> None:
    """At start: the baseline of the stored rows when the trail is empty, then one entry when the
    rule files changed since the last entry (skipped before the database has the trail's table,
    e.g. while ``db upgrade`` runs)."""
    from app.audit import recorder, services
    from app.extensions import db

    with app.app_context():
        try:
            if not inspect(db.engine).has_table("audit_entries"):
                return
            recorder.set_context(db.session(), "system", actor="app start")
            baseline = services.record_baseline(db.session())
            if services.record_rule_files(db.session(), app.config.get("RULES_DIR") or None) or baseline:
                db.session.commit()
        except SQLAlchemyError as exc:  # a database down at start must not stop the app
            db.session.rollback()
            app.logger.warning("the rule files' audit entry could not be stored: %s", exc)
        finally:
            db.session.remove()
