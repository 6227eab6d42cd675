"""Revisions in a real browser (Debian's chromium, Playwright) with CSRF protection on: the
consignor requests a correction on a phone (375 px, nothing scrolls sideways), the carrier and
the receiver approve it, the regulator reads /revisions on a desktop.

Screenshots in the pytest tmp dir: revision_phone.png, revision_approved.png, revisions_desktop.png.
"""

from __future__ import annotations

import os
import threading
import uuid

import pytest

from tests import factories
from tests.support import service_missing

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from werkzeug.serving import make_server

    from app import create_app
    from app.accounts.reference import ensure_counties
    from app.extensions import db
    from tests.ledger.builders import build_loop, new_manifest, walk_to

    folder = tmp_path_factory.mktemp("revision_browser")
    os.environ.setdefault("INSTANCE_PATH", str(folder))
    served = create_app(
        {
            "SECRET_KEY": "browser-" + uuid.uuid4().hex,
            "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(folder / "browser.sqlite3"),
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        }
    )
    assert served.config.get("WTF_CSRF_ENABLED", True)
    server = make_server("127.0.0.1", 0, served, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    served.config["PUBLIC_BASE_URL"] = base
    with served.app_context():
        db.create_all()
        ensure_counties(db.session)
        world = factories.World.build()
        api = factories.ApiClient(served.test_client())
        loop = build_loop(world, api)
        number = new_manifest(api, loop, 1500.0, submit=True)["number"]
        walk_to(api, number, "closed")
        db.session.remove()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"app": served, "base": base, "number": number, "folder": folder}
    server.shutdown()
    thread.join(timeout=10)
    with served.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        service_missing("chromium", f"{CHROMIUM} is missing; install it with `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield instance
        instance.close()


def _signed_in(browser, live, username: str, viewport: dict):
    context = browser.new_context(viewport=viewport, is_mobile=viewport is PHONE, locale="zh-CN")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{live['base']}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return context, page


def _no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], width


def test_request_and_approve_a_correction_in_the_browser(browser, live):
    number = live["number"]
    context, page = _signed_in(browser, live, "ent", PHONE)
    page.goto(f"{live['base']}/manifests/{number}")
    page.click("details.revision-form summary")
    page.fill("input[name=line1_quantity_kg]", "1600")
    page.fill("input[name=line1_received_kg]", "1600")
    page.fill("input[name=line1_accepted_kg]", "1600")
    page.fill("input[name=reason]", "过磅单录错")
    page.click("form[data-form=revision] button[type=submit]")
    page.wait_for_selector("li.revision[data-state=pending]")
    assert "过磅单录错" in page.inner_text("#revisions")
    _no_sideways_scroll(page)
    page.locator("#revisions").screenshot(path=str(live["folder"] / "revision_phone.png"))
    context.close()
    for username in ("drv", "svc"):
        context, page = _signed_in(browser, live, username, PHONE)
        page.goto(f"{live['base']}/manifests/{number}")
        _no_sideways_scroll(page)
        page.click("button[data-action=approve]")
        page.wait_for_load_state()
        if username == "svc":
            page.wait_for_selector("li.revision[data-state=approved]")
            assert "当前版本 2" in page.inner_text("#revisions")
            page.locator("#revisions").screenshot(path=str(live["folder"] / "revision_approved.png"))
        context.close()
    context, page = _signed_in(browser, live, "reg_tt", DESKTOP)
    page.goto(f"{live['base']}/revisions?state=approved")
    assert page.locator("li.revision").count() == 1
    page.screenshot(path=str(live["folder"] / "revisions_desktop.png"), full_page=True)
    context.close()
    context, page = _signed_in(browser, live, "reg_tt", PHONE)
    page.goto(f"{live['base']}/revisions")
    _no_sideways_scroll(page)
    context.close()
