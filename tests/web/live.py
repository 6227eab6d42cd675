"""The browser tests' harness (no tests here): a served app (werkzeug in a thread, its own SQLite
database, CSRF protection on), Debian's chromium through Playwright, phone and desktop pages,
and the check every step makes: nothing wider than the viewport, a screenshot kept under
``test-artifacts/browser/`` (gitignored) to look at."""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support import service_missing

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


@contextlib.contextmanager
def served(folder: Path) -> Iterator[dict[str, Any]]:
    """An app served on 127.0.0.1 (``base``), its tables created, inside its app context."""
    from werkzeug.serving import make_server

    from app import create_app
    from app.accounts.reference import ensure_counties
    from app.extensions import db

    os.environ.setdefault("INSTANCE_PATH", str(folder))
    app = create_app(
        {
            "SECRET_KEY": "browser-" + uuid.uuid4().hex,
            "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(folder / "browser.sqlite3"),
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        }
    )
    assert app.config.get("WTF_CSRF_ENABLED", True), "the browser tests run with CSRF protection on"
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_BASE_URL"] = base
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    with app.app_context():
        db.create_all()
        ensure_counties(db.session)
        db.session.commit()
        thread.start()
        try:
            yield {"app": app, "base": base}
        finally:
            server.shutdown()
            thread.join(timeout=10)
            db.session.remove()
            db.engine.dispose()


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        service_missing("chromium", f"{CHROMIUM} is missing; install it with `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def new_page(browser, phone: bool = True):
    if phone:
        context = browser.new_context(
            viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN", accept_downloads=True
        )
    else:
        context = browser.new_context(viewport=DESKTOP, locale="zh-CN", accept_downloads=True)
    context.set_default_timeout(15_000)
    return context.new_page()


def sign_in(page, base: str, username: str, password: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def look(page, name: str) -> None:
    """Nothing on the page is wider than the viewport; a full-page screenshot is kept."""
    width = page.viewport_size["width"]
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{name}: {scroll} px wide in a {width} px viewport ({page.url})"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
