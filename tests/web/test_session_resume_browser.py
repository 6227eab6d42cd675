"""In a real browser (Debian's chromium, Playwright) with CSRF on: the replacement form sent after
the sign-in expired is kept, the user signs in on the page that says so and sends it again.
Screenshots (375 px phone): session_expired.png, session_resend.png under the pytest tmp dir."""

from __future__ import annotations

import os
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests import factories
from tests.support import service_missing

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
PHONE = {"width": 375, "height": 812}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from werkzeug.serving import make_server

    from app import create_app
    from app.accounts.reference import ensure_counties
    from app.extensions import db

    folder = tmp_path_factory.mktemp("session-browser")
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
    with served.app_context():
        db.create_all()
        ensure_counties(db.session)
        world = factories.World.build()
        box = factories.box(world.enterprise, world.service, now=datetime.now(UTC) - timedelta(days=5))
        db.session.commit()
        code = box.code
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"app": served, "base": base, "code": code, "shots": folder}
    server.shutdown()
    thread.join(timeout=10)
    with served.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def phone():
    if not os.path.exists(CHROMIUM):
        service_missing("chromium", f"{CHROMIUM} is missing; install it with `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, locale="zh-CN")
        context.set_default_timeout(15_000)
        yield context.new_page()
        context.close()
        browser.close()


def _fills(live) -> int:
    from app.boxes.models import Fill
    from app.extensions import db

    with live["app"].app_context():
        return db.session.scalar(select(func.count()).select_from(Fill))


def test_an_expired_sign_in_keeps_the_form_and_sends_it_after_signing_in(live, phone):
    page, base = phone, live["base"]
    page.goto(base + "/login")
    page.fill("input[name=username]", "svc")
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
    page.goto(f"{base}/c/{live['code']}")
    page.fill("input[name=mass_kg]", "2000")
    page.fill("input[name=iodine_mg_g]", "905")
    page.fill("input[name=batch_no]", "ZS-0042")
    # The phone slept overnight: the session and the remember cookie are gone.
    page.context.clear_cookies()
    with page.expect_navigation() as nav:
        page.click("form.fill-form button[type=submit]")
    assert nav.value.status == 400
    assert page.locator("h1").inner_text() == "会话已过期"
    assert "Bad Request" not in page.content() and "CSRF" not in page.content()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(live["shots"] / "session_expired.png"), full_page=True)
    assert _fills(live) == 0
    page.fill("#resume-form input[name=username]", "svc")
    page.fill("#resume-form input[name=password]", factories.PASSWORD)
    page.click("#resume-form button[type=submit]")
    page.wait_for_selector("#resend-form")
    assert "已保留 3 项填写的内容。" in page.locator("#resend-form").inner_text()
    page.screenshot(path=str(live["shots"] / "session_resend.png"), full_page=True)
    page.click("#resend-form button[type=submit]")
    page.wait_for_selector(".flash")
    assert page.locator(".flash").inner_text().strip() == "换炭记录已保存"
    assert _fills(live) == 1
    assert "ZS-0042" in page.locator("[data-fact=current-fill]").inner_text()
