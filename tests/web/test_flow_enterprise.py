"""The enterprise's and the carrier's day in a real browser (Debian's chromium, Playwright) on a
375-px phone and a desktop, against a served app with CSRF protection on:

the enterprise admin registers a box and prints its labels; creates a manifest from stock (a
mistake first), submits it; the carrier opens ``/m/{number}``, sees what is taken, makes a
mistake (shown as an error, what was typed kept), picks it up and sees the confirmation. Each
step asserts what the page shows and what was stored. Every page visited is screenshotted into
``test-artifacts/flow-enterprise/`` and checked to be no wider than the viewport.
"""

from __future__ import annotations

import os
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests import factories
from tests.support import service_missing

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "flow-enterprise"
HW49_LICENCE = {
    "number": "浙危废经第331000012号",
    "kind": "hw_operation",
    "waste_codes": ["HW49"],
    "valid_until": "2030-12-31",
}
PERMIT = {"number": "浙交运管许可台字331000000001号", "kind": "transport", "waste_codes": []}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A served app: the enterprise (admin ``ent``) with 1,800 kg of waste carbon in stock from a
    replacement, a licensed carrier (``drv``) and receiver (the carbon service)."""
    from werkzeug.serving import make_server

    from app import create_app
    from app.accounts.reference import ensure_counties
    from app.boxes import services as box_services
    from app.extensions import db

    folder = tmp_path_factory.mktemp("flow-enterprise")
    os.environ.setdefault("INSTANCE_PATH", str(folder))
    served = create_app(
        {
            "SECRET_KEY": "flow-" + uuid.uuid4().hex,
            "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(folder / "flow.sqlite3"),
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
        world.service.licences = [HW49_LICENCE]
        carrier = factories.org("台州危运物流有限公司", ["carrier"], licences=[PERMIT])
        factories.user(carrier, "drv")
        box = factories.box(world.enterprise, world.service, now=now - timedelta(days=30))
        op = factories.op_principal()
        first = {"filled_at": now - timedelta(days=20), "mass_kg": 2000.0, "iodine_mg_g": 900.0}
        box_services.record_fill(db.session, op, box, first, now=now - timedelta(days=20))
        replacement = {
            "filled_at": now - timedelta(days=2),
            "mass_kg": 2000.0,
            "iodine_mg_g": 880.0,
            "removed_waste_kg": 1800.0,
            "supplier_name": "浙江天台再生炭科技有限公司",
            "batch_no": "ZS-0001",
        }
        box_services.record_fill(db.session, op, box, replacement, now=now - timedelta(days=2))
        db.session.commit()
        ids = {"enterprise": world.enterprise.id, "carrier": carrier.id, "receiver": world.service.id}
        names = {"enterprise": world.enterprise.name, "carrier": carrier.name, "receiver": world.service.name}
        first_code = box.code
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"app": served, "base": base, "ids": ids, "names": names, "box": first_code, "state": {}}
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

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def _page(browser, viewport):
    phone = viewport["width"] < 600
    context = browser.new_context(
        viewport=viewport, device_scale_factor=2 if phone else 1, is_mobile=phone, has_touch=phone, locale="zh-CN"
    )
    context.set_default_timeout(15_000)
    return context, context.new_page()


@pytest.fixture
def phone(browser):
    context, page = _page(browser, PHONE)
    yield page
    context.close()


@pytest.fixture
def desktop(browser):
    context, page = _page(browser, DESKTOP)
    yield page
    context.close()


def _sign_in(page, base, username):
    page.goto(base + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def _shot(page, name: str) -> None:
    """A screenshot of the whole page, and the check that nothing scrolls sideways."""
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size["width"]
    assert width <= viewport, f"{name}: {width}px wide in a {viewport}px viewport"
    # Nor a table inside its own scrolling box: on the phone every table is cards or fits.
    scrolling = page.evaluate(
        "[...document.querySelectorAll('.table-wrap')].filter(e => e.scrollWidth > e.clientWidth + 1)"
        ".map(e => (e.querySelector('table') || e).className)"
    )
    assert not scrolling, f"{name}: tables scroll sideways: {scrolling}"


def _stored(live, query):
    from app.extensions import db

    with live["app"].app_context():
        try:
            return query(db.session)
        finally:
            db.session.remove()


def _manifest(live, number):
    from app.ledger.models import Manifest

    def read(session):
        m = session.scalar(select(Manifest).where(Manifest.number == number))
        return {
            "status": m.status,
            "lines": [(line.waste_code, float(line.quantity_kg), line.packaging) for line in m.lines],
            "plate": m.vehicle_plate,
            "phone": m.driver_phone,
            "carrier_id": m.carrier_id,
            "receiver_id": m.receiver_id,
        }

    return _stored(live, read)


def _stock(live):
    from app.ledger.models import WasteStock

    def read(session):
        row = session.scalar(select(WasteStock).where(WasteStock.enterprise_id == live["ids"]["enterprise"]))
        return float(row.on_hand_kg), float(row.reserved_kg)

    return _stored(live, read)


def test_the_enterprise_admin_registers_a_box_and_prints_its_labels(live, phone):
    from app.boxes.models import Box

    page, base = phone, live["base"]
    _sign_in(page, base, "ent")
    _shot(page, "01-dashboard-phone")
    page.goto(base + "/boxes")
    page.click("[data-link=new-box]")
    page.wait_for_url(base + "/enterprise/boxes/new")
    assert page.locator("h1").inner_text() == "登记碳箱"
    _shot(page, "02-box-form-phone")

    # A mistake: 30 hours a day. Refused beside the field, what was typed kept.
    page.fill("input[name=name]", "喷涂线 2 号碳箱")
    page.select_option("select[name=carbon_type]", "honeycomb")
    page.fill("input[name=design_fill_kg]", "1500")
    page.fill("input[name=design_airflow_m3_h]", "12000")
    page.fill("input[name=design_removed_mg_m3]", "60")
    page.fill("input[name=hours_per_day]", "30")
    page.fill("input[name=emission_limit_mg_m3]", "60")
    page.select_option("select[name=service_org_id]", label=live["names"]["receiver"])
    with page.expect_navigation() as nav:
        page.click("form[data-form=box] button[type=submit]")
    assert nav.value.status == 422
    assert page.locator(".error[role=alert]").is_visible()
    assert page.locator("[data-error-for=hours_per_day]").is_visible()
    assert page.input_value("input[name=name]") == "喷涂线 2 号碳箱"
    assert page.input_value("select[name=carbon_type]") == "honeycomb"
    assert _stored(live, lambda s: s.scalar(select(Box.id).where(Box.name == "喷涂线 2 号碳箱"))) is None
    _shot(page, "03-box-form-error-phone")

    page.fill("input[name=hours_per_day]", "16")
    page.click("form[data-form=box] button[type=submit]")
    page.wait_for_url("**/boxes?registered=*")
    code = page.url.split("registered=")[1]
    assert code in page.locator(".flash").inner_text()
    stored = _stored(live, lambda s: s.scalar(select(Box).where(Box.code == code)))
    assert stored.name == "喷涂线 2 号碳箱" and stored.carbon_type == "honeycomb"
    assert stored.enterprise_id == live["ids"]["enterprise"] and stored.service_org_id == live["ids"]["receiver"]
    # The new box is ticked for its label; "select all" ticks every box of the page (a static script).
    assert page.locator(f"input[name=codes][value='{code}']").is_checked()
    assert not page.locator(f"input[name=codes][value='{live['box']}']").is_checked()
    page.check("[data-select-all=codes]")
    assert page.locator("input[name=codes]:checked").count() == 2
    page.uncheck("[data-select-all=codes]")
    assert page.locator("input[name=codes]:checked").count() == 0
    page.check(f"input[name=codes][value='{code}']")
    _shot(page, "04-box-list-phone")

    # The print button asks for the ticked boxes' sheet with the signed-in session.
    url = page.eval_on_selector(
        "form[data-form=labels]",
        "f => f.action + '?' + new URLSearchParams(new FormData(f)).toString()",
    )
    assert url.endswith(f"codes={code}")
    sheet = page.request.get(url)
    assert sheet.status == 200 and sheet.headers["content-type"] == "application/pdf"
    assert sheet.body().startswith(b"%PDF") and len(sheet.body()) > 2000
    live["state"]["code"] = code


def test_the_enterprise_submits_a_manifest_and_the_carrier_picks_it_up(live, phone, browser):
    """One test, in this order whatever order the suite runs in (pytest-randomly): the carrier's
    step needs the manifest the enterprise submitted and the hand-over code it gave."""
    _enterprise_creates_and_submits_a_manifest_from_stock(live, phone)
    context, carrier_phone = _page(browser, PHONE)
    try:
        _carrier_picks_up_from_the_qr_code(live, carrier_phone)
    finally:
        context.close()


def _enterprise_creates_and_submits_a_manifest_from_stock(live, phone):
    page, base = phone, live["base"]
    _sign_in(page, base, "ent")
    page.goto(base + "/stock")
    _shot(page, "05-stock-phone")
    page.click("[data-link=new-manifest]")
    page.wait_for_url(base + "/manifests/new")
    line = page.locator(".stock-line[data-waste-code='900-039-49']")
    assert line.locator("[data-available]").inner_text() == "1,800.0"
    _shot(page, "06-manifest-form-phone")

    # Too much: more than stock holds. Refused beside the quantity, with the figure available.
    page.select_option("select[name=carrier_id]", label=live["names"]["carrier"])
    page.select_option("select[name=receiver_id]", label=live["names"]["receiver"])
    line.locator("input[name=waste_code]").check()
    page.fill("input[name='quantity_kg-900-039-49']", "2500")
    page.fill("input[name='packaging-900-039-49']", "吨袋 2 只")
    with page.expect_navigation() as nav:
        page.click("form[data-form=manifest] button[type=submit]")
    assert nav.value.status == 422
    error = page.locator("[data-error-for='quantity_kg-900-039-49']")
    assert "可转移 1800 kg" in error.inner_text()
    assert page.locator(".error[role=alert]").is_visible()
    assert page.input_value("input[name='quantity_kg-900-039-49']") == "2500"
    assert page.input_value("input[name='packaging-900-039-49']") == "吨袋 2 只"
    assert page.locator("input[name=waste_code]").is_checked()
    assert page.locator("select[name=carrier_id] option:checked").inner_text() == live["names"]["carrier"]
    _shot(page, "07-manifest-form-error-phone")

    page.fill("input[name='quantity_kg-900-039-49']", "1200")
    page.click("form[data-form=manifest] button[type=submit]")
    page.wait_for_url("**/manifests/*")
    number = page.url.rsplit("/", 1)[1]
    assert "草稿" in page.locator(".flash").inner_text()
    stored = _manifest(live, number)
    assert stored["status"] == "draft" and stored["lines"] == [("900-039-49", 1200.0, "吨袋 2 只")]
    assert (stored["carrier_id"], stored["receiver_id"]) == (live["ids"]["carrier"], live["ids"]["receiver"])
    _shot(page, "08-manifest-draft-phone")

    page.goto(base + "/manifests/todo")
    assert page.locator(f"[data-status=draft] [data-number='{number}']").is_visible()
    page.click(f"[data-status=draft] [data-number='{number}'] a")
    # Submitting is signed: without the password nothing is stored, then signed with it.
    page.eval_on_selector("form[data-form=submit]", "f => { f.noValidate = true; }")
    page.click("[data-action=submit]")
    page.wait_for_selector(".error[role=alert]")
    assert _manifest(live, number)["status"] == "draft"
    page.fill("form[data-form=submit] input[name=signature_password]", factories.PASSWORD)
    page.click("[data-action=submit]")
    page.wait_for_selector(".flash")
    assert "已提交" in page.locator(".flash").inner_text()
    assert _manifest(live, number)["status"] == "submitted"
    assert page.locator("#signatures [data-step=submit][data-matches=yes]").count() == 1
    # The consignor's hand-over code for the carrier (its staff will not be signed in at pickup).
    page.click("text=生成交接码（给承运人）")
    code = page.locator("[data-code]").get_attribute("data-code")
    assert code and len(code) == 6 and code.isdigit()
    live["state"]["handover_code"] = code
    page.click("text=返回联单")
    assert _stock(live) == (1800.0, 1200.0)  # reserved, not yet shipped
    page.goto(base + "/manifests/todo")
    waiting = page.locator(f"[data-status=submitted] [data-number='{number}'] .waiting")
    assert live["names"]["carrier"] in waiting.inner_text()
    _shot(page, "09-todo-phone")
    # The manifest's PDF is printable from its page.
    pdf = page.request.get(base + f"/api/v1/manifests/{number}.pdf")
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
    live["state"]["number"] = number


def _carrier_picks_up_from_the_qr_code(live, phone):
    number = live["state"].get("number")
    assert number, "runs after the enterprise submitted its manifest"
    page, base = phone, live["base"]
    _sign_in(page, base, "drv")
    page.goto(base + f"/m/{number}")
    lines = page.locator(".line-cards li")
    assert lines.count() == 1
    assert lines.first.locator("[data-quantity]").inner_text() == "1,200.0"
    assert lines.first.locator("[data-packaging]").inner_text() == "吨袋 2 只"
    assert page.locator("[data-consignor]").inner_text() == live["names"]["enterprise"]
    _shot(page, "10-pickup-phone")

    # A mistake: a short plate and a phone number "abc". An error, in red, not a success box.
    page.eval_on_selector("form[data-form=pickup]", "f => { f.noValidate = true; }")
    page.fill("input[name=vehicle_plate]", "浙J1")
    page.fill("input[name=driver_name]", "王师傅")
    page.fill("input[name=driver_phone]", "abc")
    with page.expect_navigation() as nav:
        page.click("form[data-form=pickup] button[type=submit]")
    assert nav.value.status == 422
    alert = page.locator(".error[role=alert]")
    assert alert.is_visible() and page.locator(".flash").count() == 0
    colour = alert.evaluate("e => getComputedStyle(e).color")
    red, green, blue = (int(c) for c in colour[colour.index("(") + 1 : colour.index(")")].split(",")[:3])
    assert red > 120 and green < 80 and blue < 80, colour
    assert "车牌号" in alert.inner_text() and "电话" in alert.inner_text()
    assert page.locator("[data-error-for=driver_phone]").is_visible()
    assert page.input_value("input[name=driver_name]") == "王师傅"
    assert page.input_value("input[name=driver_phone]") == "abc"
    assert page.input_value("input[name=vehicle_plate]") == "浙J1"
    assert _manifest(live, number)["status"] == "submitted"
    _shot(page, "11-pickup-error-phone")

    page.fill("input[name=vehicle_plate]", "浙J12345")
    page.fill("input[name=driver_phone]", "13812345678")
    page.fill("input[name=signature_password]", factories.PASSWORD)  # the carrier signs
    page.fill("input[name=handover_code]", live["state"]["handover_code"])  # and the consignor's hand-over
    page.click("form[data-form=pickup] button[type=submit]")
    page.wait_for_url(f"**/m/{number}/picked-up*")
    assert page.locator("h1").inner_text() == "提货已确认"
    assert page.locator("[data-plate]").inner_text() == "浙J12345"
    assert page.locator(".line-cards [data-quantity]").inner_text() == "1,200.0"
    stored = _manifest(live, number)
    assert stored["status"] == "in_transit" and stored["plate"] == "浙J12345" and stored["phone"] == "13812345678"
    assert _stock(live) == (600.0, 0.0)  # shipped: out of the enterprise's stock
    _shot(page, "12-pickup-confirmed-phone")


def test_the_enterprise_pages_fit_a_phone_and_a_desktop(live, phone, desktop):
    base = live["base"]
    pages = [
        ("dashboard", "/"),
        ("ledger", "/ledger"),
        ("stock", "/stock"),
        ("boxes", "/boxes"),
        ("box", f"/boxes/{live['box']}"),
        ("manifests", "/manifests"),
        ("todo", "/manifests/todo"),
        ("staff", "/enterprise/staff"),
        ("box-form", "/enterprise/boxes/new"),
        ("manifest-form", "/manifests/new"),
    ]
    if live["state"].get("number"):
        pages.append(("manifest", f"/manifests/{live['state']['number']}"))
    for page, kind in ((phone, "phone"), (desktop, "desktop")):
        _sign_in(page, base, "ent")
        for name, path in pages:
            response = page.goto(base + path)
            assert response.status == 200, (path, response.status)
            _shot(page, f"20-{name}-{kind}")
            assert page.locator("html").get_attribute("lang") == "zh-CN"
    # On the phone the ledger's quantities stay in view: each record a card with its quantity.
    phone.goto(base + "/ledger")
    quantity = phone.locator("table.ledger tbody tr").first.locator("td.num").first
    box = quantity.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    # On a desktop the fills' supplier is on one or two lines, not three characters a line.
    desktop.goto(base + f"/boxes/{live['box']}")
    supplier = desktop.locator("#fills td.supplier", has_text="浙江天台再生炭科技有限公司").first
    height = supplier.evaluate("e => e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight)")
    assert height <= 2.2, f"the supplier wraps to {height:.1f} lines"
