"""The regulator's day in a real browser (Debian's chromium driven by Playwright, a real HTTP server
with CSRF protection on), on a 375x812 phone and on a desktop: from the dashboard to the red list,
finds a red box by its code, opens it and its colour history, then filters the overdue manifests by
park and exports them. Each step asserts what the user sees; no page is wider than the viewport.

Screenshots of every page: ``test-artifacts/regulator/`` (gitignored), named by viewport and step.
"""

from __future__ import annotations

import csv
import io
import os
import re
import threading
import uuid
from pathlib import Path

import pytest

from tests import factories
from tests.support import service_missing

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
VIEWPORTS = {"phone": {"width": 375, "height": 812}, "desktop": {"width": 1280, "height": 900}}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "regulator"
FONTS = Path(__file__).resolve().parents[2] / "app" / "fonts"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A served app: the Tiantai world, a red box in the park, overdue manifests from an enterprise
    in the park and from one outside it."""
    from werkzeug.serving import make_server

    from app import create_app
    from app.accounts.reference import ensure_counties
    from app.extensions import db
    from tests.ledger.builders import ago, build_loop, iso
    from tests.web.builders import coloured_box, overdue_manifest

    folder = tmp_path_factory.mktemp("regulator-browser")
    os.environ.setdefault("INSTANCE_PATH", str(folder))
    served = create_app(
        {
            "SECRET_KEY": "browser-" + uuid.uuid4().hex,
            "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(folder / "browser.sqlite3"),
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        }
    )
    assert served.config.get("WTF_CSRF_ENABLED", True), "the browser test runs with CSRF protection on"
    server = make_server("127.0.0.1", 0, served, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    served.config["PUBLIC_BASE_URL"] = base
    with served.app_context():
        db.create_all()
        ensure_counties(db.session)
        world = factories.World.build()
        api = factories.ApiClient(served.test_client())
        loop = build_loop(world, api, removed_kg=1800, replaced_at=ago(days=20))
        red = coloured_box(world.enterprise, world.service, 30)
        for _ in range(3):  # other red boxes, so that finding it takes the search
            coloured_box(world.enterprise, world.service, 25)
        outside = factories.org("天台县园外塑料厂", ["generator"])
        factories.user(outside, "outside_admin", "admin")
        stock_box = factories.box(outside, world.service)
        db.session.commit()
        for body in (
            {"mass_kg": 2000, "iodine_mg_g": 900, "filled_at": iso(ago(days=30))},
            {"mass_kg": 2000, "iodine_mg_g": 900, "filled_at": iso(ago(days=20)), "removed_waste_kg": 1500},
        ):
            assert api.post(f"/api/v1/boxes/{stock_box.code}/fills", body, as_="svc").status_code == 201
        in_park = overdue_manifest(loop, quantity=300)
        loop.world.users["outside_admin"] = db.session.query(factories.User).filter_by(username="outside_admin").one()
        outside_park = overdue_manifest(loop, consignor="outside_admin", quantity=400, picked_days_ago=12)
        facts = {"red": red.code, "in_park": in_park, "outside_park": outside_park, "park_id": world.park.id}
        facts["park"] = world.park.name
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"app": served, "base": base, **facts}
    server.shutdown()
    thread.join(timeout=10)
    with served.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        service_missing("chromium", f"{CHROMIUM} is missing; install it with `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    # The product's own CJK font (app/fonts), so that the screenshots show the Chinese text
    # even where the system has no CJK font.
    folder = tmp_path_factory.mktemp("fontconfig")
    conf = folder / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        '<include ignore_missing="yes">/etc/fonts/fonts.conf</include>'
        f"<dir>{FONTS}</dir><cachedir>{folder / 'cache'}</cachedir></fontconfig>"
    )
    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, env={**os.environ, "FONTCONFIG_FILE": str(conf)}
        )
        yield instance
        instance.close()


@pytest.fixture(params=list(VIEWPORTS))
def screen(request, browser):
    viewport = VIEWPORTS[request.param]
    phone = request.param == "phone"
    context = browser.new_context(
        viewport=viewport, locale="zh-CN", accept_downloads=True, is_mobile=phone, has_touch=phone
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield request.param, viewport["width"], page
    context.close()


def _look(page, name: str, step: str, width: int) -> None:
    """Screenshot the page and check that nothing on it is wider than the screen."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}_{step}.png"), full_page=True)
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{step}: the page is {scroll} px wide on a {width} px screen"


def test_regulator_finds_a_red_box_and_exports_overdue_manifests(live, screen, tmp_path):
    name, width, page = screen
    base = live["base"]
    page.goto(base + "/login")
    page.fill("input[name=username]", "reg_tt")
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    _look(page, name, "1-dashboard", width)

    # From the dashboard to the red list; the red box is found by its code (typed in lower case).
    page.click("[data-link=red-list]")
    page.wait_for_url(base + "/oversight/boxes/red**")
    assert page.locator("h1").inner_text().strip() == "红码碳箱"
    assert page.locator("[data-list=boxes] > li").count() >= 5
    _look(page, name, "2-red-list", width)
    page.fill("input[name=q]", live["red"].lower())
    page.click(".list-filters button[type=submit]")
    page.wait_for_url("**q=**")
    cards = page.locator("[data-list=boxes] > li[data-code]")
    assert cards.count() == 1
    card = cards.first
    assert card.get_attribute("data-code") == live["red"]
    assert re.fullmatch(r"\d+\.\d 天", card.locator("[data-days]").inner_text().strip())
    assert "应立即更换" in card.locator("[data-reasons]").inner_text()
    assert "saturation_full" not in card.inner_text()  # reasons in words, never rule codes
    assert live["park"] in card.inner_text()
    assert card.locator("[data-days]").is_visible()  # the key figure is on the screen
    _look(page, name, "3-red-found", width)

    # The box and its colour history.
    card.locator("a.list-card-key").click()
    page.wait_for_url(base + f"/boxes/{live['red']}")
    assert page.locator(".colour-card").get_attribute("data-colour") == "red"
    history = page.locator("#colour-history")
    assert history.locator("tr[data-colour=red]").count() >= 1
    assert "已超过预计更换日期" in history.inner_text()  # why it turned red, in words
    _look(page, name, "4-box", width)

    # The overdue manifests, filtered by the park, and their export.
    page.goto(base + "/")
    page.click("a[data-count=overdue]")
    page.wait_for_url(base + "/oversight/manifests/overdue")
    numbers = page.locator("[data-list=manifests] > li[data-number]")
    assert {numbers.nth(i).get_attribute("data-number") for i in range(numbers.count())} == {
        live["in_park"],
        live["outside_park"],
    }
    _look(page, name, "5-overdue", width)
    page.select_option("select[name=park]", str(live["park_id"]))
    page.click(".list-filters button[type=submit]")
    page.wait_for_url(f"**park={live['park_id']}**")
    assert [numbers.nth(i).get_attribute("data-number") for i in range(numbers.count())] == [live["in_park"]]
    assert page.locator("[data-total]").get_attribute("data-total") == "1"
    assert "300.0 kg" in numbers.first.locator("[data-quantity]").inner_text()
    _look(page, name, "6-overdue-park", width)
    with page.expect_download() as download:
        page.click("[data-export=csv]")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.suffix == ".csv"
    rows = list(csv.reader(io.StringIO(saved.read_bytes().decode("utf-8-sig"))))
    assert rows[0][0] == "联单编号"
    assert [r[0] for r in rows[1:]] == [live["in_park"]]  # exactly what the page lists
    assert float(rows[1][6]) == 300

    # The mass-balance anomalies, linked from the dashboard.
    page.goto(base + "/")
    page.click("[data-link=anomalies]")
    page.wait_for_url(base + "/oversight/anomalies")
    assert page.locator("[data-anomaly=shipped_not_received]").count() >= 1
    assert page.locator("[data-figure=generated]").first.is_visible()
    _look(page, name, "7-anomalies", width)
