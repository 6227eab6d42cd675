"""The scan page on a phone, in a real browser: Debian's chromium driven by Playwright against a
real HTTP server (werkzeug, in a thread) with its own SQLite database and CSRF protection on.

Screenshots: /tmp/scan.png (Chinese, before the replacement), /tmp/scan_filled.png (after it),
/tmp/scan_en.png (English).
"""

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
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A served app with an enterprise, its carbon service (user ``svc``) and one box whose
    carbon was filled 8.5 days ago (82% saturated by design load: yellow)."""
    from werkzeug.serving import make_server

    from app import create_app
    from app.accounts.reference import ensure_counties
    from app.boxes import services as box_services
    from app.extensions import db

    folder = tmp_path_factory.mktemp("browser")
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
    now = datetime.now(UTC).replace(microsecond=0)
    with served.app_context():
        db.create_all()
        ensure_counties(db.session)
        world = factories.World.build()
        box = factories.box(world.enterprise, world.service, now=now - timedelta(days=30))
        box_services.record_fill(
            db.session,
            factories.op_principal(),
            box,
            {
                "filled_at": now - timedelta(days=8.5),
                "mass_kg": 2000.0,
                "iodine_mg_g": 900.0,
                "supplier_name": "浙江天台再生炭科技有限公司",
                "batch_no": "ZS-0001",
            },
            now=now,
        )
        db.session.commit()
        code, version = box.code, box.label_version
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"app": served, "base": base, "code": code, "version": version}
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
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN")
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def _fills(live) -> int:
    from app.boxes.models import Box, Fill
    from app.extensions import db

    with live["app"].app_context():
        box_id = db.session.scalar(select(Box.id).where(Box.code == live["code"]))
        return db.session.scalar(select(func.count()).select_from(Fill).where(Fill.box_id == box_id))


def _events(live, kind: str) -> int:
    from app.boxes.models import BoxEvent
    from app.extensions import db

    with live["app"].app_context():
        return db.session.scalar(select(func.count()).select_from(BoxEvent).where(BoxEvent.kind == kind))


def test_scan_page_on_a_phone(live, phone):
    from app.labels.signing import label_url

    page, base = phone, live["base"]
    secret = live["app"].config["SECRET_KEY"]
    scan_url = label_url(base, live["code"], live["version"], secret)

    # Sign in as the carbon service.
    page.goto(base + "/login")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    page.fill("input[name=username]", "svc")
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
    assert page.locator(".topbar .who").inner_text().strip() == "svc"

    # The label's QR code opens the scan page: yellow, with its reasons.
    page.goto(scan_url)
    card = page.locator(".colour-card")
    assert card.get_attribute("data-colour") == "yellow"
    assert page.locator(".colour-name").inner_text().replace(" ", "") == "黄码"
    assert page.locator(".code").inner_text().strip() == live["code"]
    rules = page.locator(".reasons li").evaluate_all("items => items.map(i => i.dataset.rule)")
    assert "saturation_high" in rules, rules
    assert "已达预警值" in page.locator(".reasons").inner_text()
    assert page.locator("[data-label-state]").count() == 0  # a genuine label: no warning
    assert page.locator("[data-fact=current-fill]").inner_text().startswith("2000 kg")
    # Laid out for the phone: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path="/tmp/scan.png", full_page=True)

    # The browser itself refuses an empty iodine value (required field)…
    assert page.evaluate("document.querySelector('input[name=iodine_mg_g]').validity.valueMissing")
    # …and the server refuses it too, with the field errors in Chinese.
    before = _fills(live)
    page.eval_on_selector("form.fill-form", "form => { form.noValidate = true; }")
    page.fill("input[name=mass_kg]", "1980")
    page.fill("input[name=iodine_mg_g]", "")
    page.fill("input[name=removed_waste_kg]", "0")
    with page.expect_navigation() as nav:
        page.click("form.fill-form button[type=submit]")
    assert nav.value.status == 422
    assert "请修正以下字段" in page.locator(".error[role=alert]").inner_text()
    assert page.locator("[data-error-for=iodine_mg_g]").inner_text() == "必填"
    assert page.locator("[data-error-for=removed_waste_kg]").inner_text() == "必须大于 0"
    assert "碘值 (mg/g)：必填" in page.locator(".error[role=alert]").inner_text()
    assert page.input_value("input[name=mass_kg]") == "1980"  # what was typed is kept
    assert _fills(live) == before
    page.screenshot(path="/tmp/scan_error.png", full_page=True)

    # A correct replacement: saved, flashed, and the page shows the new fill (green again).
    page.fill("input[name=mass_kg]", "1980")
    page.fill("input[name=iodine_mg_g]", "950")
    page.fill("input[name=removed_waste_kg]", "2236.5")
    page.fill("input[name=batch_no]", "ZS-0002")
    page.click("form.fill-form button[type=submit]")
    page.wait_for_selector(".flash")
    assert page.locator(".flash").inner_text().strip() == "换炭记录已保存"
    assert page.locator(".colour-card").get_attribute("data-colour") == "green"
    assert page.locator(".colour-name").inner_text().replace(" ", "") == "绿码"
    current = page.locator("[data-fact=current-fill]").inner_text()
    assert current.startswith("1980 kg · 碘值 950 mg/g") and "ZS-0002" in current, current
    assert "废炭 2236.5 kg" in page.locator("[data-fact=last-replacement]").inner_text()
    assert "运行正常" in page.locator(".card").first.inner_text()
    assert _fills(live) == before + 1
    page.screenshot(path="/tmp/scan_filled.png", full_page=True)

    # A forged label (bad signature) is shown as such and recorded.
    forged_before = _events(live, "label_forged_scan")
    page.goto(f"{base}/c/{live['code']}?v={live['version']}&s=aaaaaaaaaaaaaaaa")
    warning = page.locator("[data-label-state=forged]")
    assert warning.is_visible()
    assert warning.inner_text().startswith("警告：此二维码签名无效")
    assert _events(live, "label_forged_scan") == forged_before + 1

    # Switch to English: the page, and the next ones (cookie), speak English.
    page.goto(scan_url)
    page.click(".topbar a.lang")
    page.wait_for_url("**lang=en**")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator(".colour-name").inner_text().replace(" ", "").lower() == "green"
    assert page.locator("#fill h2").inner_text() == "Record a replacement"
    assert "s=" in page.url and "v=" in page.url  # the label's signature survives the switch
    assert page.locator("[data-label-state]").count() == 0
    assert {"name": "lang", "value": "en"}.items() <= next(
        c for c in page.context.cookies() if c["name"] == "lang"
    ).items()
    page.goto(base + f"/c/{live['code']}")
    assert page.locator("label", has_text="Iodine value (mg/g)").count() == 1
    assert page.locator(".topbar a.lang").inner_text() == "中文"
    page.screenshot(path="/tmp/scan_en.png", full_page=True)


@pytest.fixture
def desktop(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN", accept_downloads=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def test_park_statistics_on_a_desktop(live, desktop, tmp_path):
    from openpyxl import load_workbook

    page, base = desktop, live["base"]
    page.goto(base + "/login")
    page.fill("input[name=username]", "park")
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
    # The park administration finds its statistics in the top bar.
    page.get_by_role("link", name="统计", exact=True).click()
    page.wait_for_url(base + "/statistics**")
    assert "天台县经济开发区" in page.locator("h1").inner_text()
    for chart in ("landfill", "treatment"):
        assert page.locator(f"svg[data-chart={chart}]").is_visible(), chart
    assert page.locator("[data-bar=landfilled]").count() == 1
    assert page.locator("[data-table=summary]").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.screenshot(path="/tmp/statistics.png", full_page=True)

    # The XLSX export downloads with the signed-in session and opens in a spreadsheet reader.
    with page.expect_download() as download:
        page.click("[data-export=xlsx]")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.suffix == ".xlsx" and saved.name.startswith("天台县经济开发区_")
    workbook = load_workbook(saved)
    assert "汇总" in workbook.sheetnames
