"""台州碳箱码: the closed-loop activated-carbon and hazardous-waste tracker.

:func:`create_app` wires configuration, extensions and one blueprint per domain.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sqlite3

from flask import Flask, request
from flask_babel import lazy_gettext
from flask_smorest import Api

from app.config import load_config
from app.extensions import babel, csrf, db, login_manager, migrate

# Domain packages, each with models and (optionally) api/pages blueprints and CLI commands.
DOMAINS = (
    "rules",
    "accounts",
    "boxes",
    "labels",
    "telemetry",
    "ledger",
    "regeneration",
    "statistics",
    "index",
    "web",
    "demo",
    "audit",
    "jobs",
)


def _import_optional(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not name.startswith(exc.name):
            raise
        return None


def import_models() -> None:
    """Import every domain's models so the metadata is complete (Alembic, create_all)."""
    for domain in DOMAINS:
        _import_optional(f"app.{domain}.models")
    importlib.import_module("app.common.idempotency")  # idempotency_keys (app/common/tx.py's replays)


def select_locale() -> str:
    chosen = request.args.get("lang") or request.cookies.get("lang")
    if chosen in ("zh", "en"):
        return chosen
    return request.accept_languages.best_match(["zh", "en"], default="zh") if request.accept_languages else "zh"


def _sqlite_wal(dbapi_connection, _record) -> None:
    # WAL (telemetry, issue 3): readers never block the writer (gunicorn workers, the MQTT
    # subscriber) and a commit appends to the log instead of syncing a rollback journal;
    # synchronous=NORMAL stays consistent after a crash and loses at most the last commits on power loss.
    # WAL is a property of the database file: once set it stays. Setting it needs the database to
    # itself and fails at once with "database is locked" (no busy wait for a journal-mode change)
    # while another connection writes, the job thread or a second worker: that made reads answer
    # 503. So it is set only when not yet in place, and a refusal leaves this connection on the
    # rollback journal (correct, only slower); a later connection sets it.
    cursor = dbapi_connection.cursor()
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
        with contextlib.suppress(sqlite3.OperationalError):
            cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(__name__, instance_path=os.environ.get("INSTANCE_PATH") or None, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(load_config(app.instance_path, overrides))
    from app.common import jsonprovider

    jsonprovider.install(
        app, ensure_ascii=False
    )  # strict JSON (never NaN/Infinity); masses (Decimals) written as numbers

    import_models()
    from app.common import tx
    from app.common.wiring import EXTENSION_KEY, build_wiring

    # The domains plugged together (fill hooks, colour fact providers, rules folder, password
    # hashing), once, for this app only; a broken rule file stops the start, with its problems listed.
    app.extensions[EXTENSION_KEY] = build_wiring(app.config)
    db.init_app(app)
    tx.init_app(app)  # the one transaction boundary of requests
    from app.jobs import dispatch

    dispatch.init_app(app)  # jobs a request asked for start once its transaction has committed
    from app.audit import startup

    startup.init_app(app)  # the audit trail: session listeners, the rule files' entry
    from app.common.wiring import WiredSession
    from app.statistics import rollup_tracking

    rollup_tracking.install(WiredSession)  # the statistics' roll-ups, rewritten at each commit
    if (
        app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
        and ":memory:" not in app.config["SQLALCHEMY_DATABASE_URI"]
    ):
        import sqlalchemy

        with app.app_context():
            sqlalchemy.event.listen(db.engine, "connect", _sqlite_wal)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations"))
    babel.init_app(app, locale_selector=select_locale)
    login_manager.init_app(app)
    login_manager.login_view = "web.login"
    login_manager.login_message = lazy_gettext("请登录后访问此页面。")
    api = Api(app)  # one per app: the spec is the app's own (two apps in one process never share paths)
    csrf.init_app(app)

    from app.common.errors import document_problems, register_error_handlers, register_request_guards

    document_problems(api)  # errors documented as served: application/problem+json

    for domain in DOMAINS:
        views = _import_optional(f"app.{domain}.views")
        for blueprint in getattr(views, "API_BLUEPRINTS", ()):
            api.register_blueprint(blueprint, url_prefix="/api/v1")
            csrf.exempt(blueprint)  # bearer tokens, never cookies, authorise API writes
        for blueprint in getattr(views, "BLUEPRINTS", ()):
            app.register_blueprint(blueprint)
        # A domain may have commands without pages (e.g. demo).
        cli = _import_optional(f"app.{domain}.cli")
        if cli is not None and hasattr(cli, "register"):
            cli.register(app)
    from app.common import idempotency

    idempotency.document(api)  # the Idempotency-Key header on every API write
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    api.spec.options["security"] = [{"bearer": []}]
    register_error_handlers(app)
    register_request_guards(app)  # API writes authenticated before input; JSON depth bounded

    from app.common import auth, security
    from app.web import fast_reads

    fast_reads.install(app)  # the scan page and box JSON before Flask's dispatch; inside ProxyFix

    login_manager.user_loader(auth.load_user)  # the session generation ends cookies at sign-out
    security.init_app(app)  # headers, cookie flags behind TLS, ProxyFix, the sign-in throttle
    tx.init_idempotency(app)  # one action, one record: after every other check of a request

    # Third-party front-end code (Swagger UI for /docs) is vendored outside the app package,
    # served as-is, so the interactive docs work without reaching any outside host.
    vendor = os.path.join(os.path.dirname(os.path.dirname(__file__)), "vendor")

    @app.get("/vendor/<path:filename>")
    def vendored(filename):
        from flask import send_from_directory

        return send_from_directory(vendor, filename, max_age=86400)

    @app.get("/healthz")
    def healthz():
        """Liveness: the process answers (no database work, so load balancers can poll it)."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz():
        """Readiness: the database answers too."""
        from sqlalchemy import text

        try:
            db.session.execute(text("SELECT 1"))
        except Exception as exc:  # any database failure means "not ready", never a 500 page
            app.logger.warning("readiness check failed: %s", exc)
            return {"status": "unavailable", "database": "down"}, 503
        return {"status": "ok", "database": "up"}

    @app.context_processor
    def _inject():
        from flask_babel import get_locale

        from app.web.form_tokens import form_tokens

        return {"locale": str(get_locale() or "zh"), "form_tokens": form_tokens}

    return app
