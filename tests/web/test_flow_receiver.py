"""The plant's day in a real browser (Debian's chromium, Playwright), on a 375-px phone and a
desktop: it receives one line of a manifest in part and refuses the other after reviewing the
difference against the tolerance, records the treatment method, records a regeneration batch
from what it accepted and prints the bags' labels; the enterprise then fills a box with that
regenerated carbon from the scan page. Each step checks what the user sees and what was stored,
that nothing is wider than the viewport, and keeps a screenshot (test-artifacts/browser/)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests import factories
from tests.ledger.builders import ago, build_loop
from tests.web.builders import two_lines_in_transit
from tests.web.live import chromium, look, new_page, served, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A served app with the loop's world: a two-line manifest (1,000 kg in 吨袋, 600 kg in 编织袋)
    of waste carbon on its way to the plant (user ``svc``), picked up by the carrier."""
    from app.extensions import db

    with served(tmp_path_factory.mktemp("flow-receiver")) as live:
        world = factories.World.build()
        api = factories.ApiClient(live["app"].test_client())
        loop = build_loop(world, api, removed_kg=1800, replaced_at=ago(days=20))
        manifest = two_lines_in_transit(api, loop)
        db.session.commit()
        live.update(number=manifest["number"], box=loop.box.code, plant=world.service.name)
        yield live


@pytest.fixture(scope="module")
def browser():
    with chromium() as instance:
        yield instance


def stored(number: str):
    from app.extensions import db
    from app.ledger.models import Manifest

    db.session.rollback()  # what the server committed
    return db.session.scalar(select(Manifest).where(Manifest.number == number))


def test_the_plant_receives_processes_regenerates_and_the_enterprise_fills(live, browser):
    from app.boxes.models import Fill
    from app.extensions import db
    from app.regeneration.models import RegenerationBatch

    base, number = live["base"], live["number"]
    page = new_page(browser, phone=True)
    sign_in(page, base, "svc", factories.PASSWORD)

    # The top bar leads to what is on its way.
    page.get_by_role("link", name="接收", exact=True).click()
    page.wait_for_url(base + "/receiving")
    card = page.locator(f'[data-section="to-receive"] [data-number="{number}"]')
    assert "1,600.0 kg" in card.inner_text() and "2 行" in card.inner_text()
    look(page, "receiver-incoming")

    # Weigh: line 1 940 kg of 1,000 declared, 900 accepted; line 2 refused (600 kg weighed).
    card.locator("[data-action]").click()
    page.wait_for_url(f"{base}/receiving/{number}")
    look(page, "receiver-receive-form")
    line1, line2 = page.locator('fieldset[data-line="1"]'), page.locator('fieldset[data-line="2"]')
    assert "申报 1,000.0 kg" in line1.inner_text() and "编织袋" in line2.inner_text()
    line1.locator("input[name=received_kg_1]").fill("940")
    line1.get_by_label("部分接受", exact=True).check()
    line1.locator("input[name=accepted_kg_1]").fill("900")
    line2.locator("input[name=received_kg_2]").fill("600")
    line2.get_by_label("拒收本行", exact=True).check()
    line2.locator("input[name=reason_2]").fill("包装破损，渗漏")
    # Forgot the reason of the part: refused on the field, in Chinese, keeping what was typed.
    page.click("[data-review]")
    page.wait_for_selector(".error[role=alert]")
    assert page.locator("[data-error-for=reason_1]").inner_text() == "部分接受或拒收时必须填写原因"
    assert page.input_value("input[name=accepted_kg_1]") == "900"
    assert page.input_value("input[name=reason_2]") == "包装破损，渗漏"
    assert page.locator("input[name=decision_2][value=refuse]").is_checked()
    look(page, "receiver-receive-errors")
    page.fill("input[name=reason_1]", "含水率偏高，40 kg 退回")
    page.click("[data-review]")

    # The review: the difference against the declared quantity and the 5 % tolerance.
    page.wait_for_selector('[data-step="review"]')
    assert "-60.0 kg（6.0%）" in page.locator('[data-deviation="1"]').inner_text()
    assert page.locator('[data-beyond="1"]').inner_text() == "超出允差 5%"
    assert "在允差内" in page.locator('[data-deviation="2"]').inner_text()
    assert "退回 40.0 kg" in page.locator('[data-accepted="1"]').inner_text()
    assert page.locator('[data-decision="2"]').inner_text() == "拒收本行"
    assert stored(number).status == "in_transit"  # nothing stored before the confirmation
    look(page, "receiver-review")
    page.fill("input[name=signature_password]", factories.PASSWORD)  # the receiver signs the receipt
    page.click("[data-confirm]")

    # Received in part: the confirmation, then the treatment method per accepted line.
    page.wait_for_url(f"{base}/receiving/{number}/process")
    assert "已接收（部分接收）" in page.locator(".flash").inner_text()
    m = stored(number)
    assert (m.status, m.acceptance, m.discrepant) == ("received", "partial", True)
    lines = {line.line_no: line for line in m.lines}
    assert (float(lines[1].received_kg), float(lines[1].accepted_kg)) == (940, 900)
    assert (float(lines[2].received_kg), float(lines[2].accepted_kg)) == (600, 0)
    assert lines[2].refusal_reason == "包装破损，渗漏"
    assert page.locator("select[name=method_2]").count() == 0 and "第 2 行已拒收" in page.inner_text("main")
    look(page, "receiver-process")
    page.select_option("select[name=method_1]", "R7")
    page.fill("input[name=signature_password]", factories.PASSWORD)
    page.click("[data-process]")
    page.wait_for_url(f"{base}/manifests/{number}")
    assert "已登记利用/处置方式并办结" in page.locator(".flash").inner_text()
    assert "回收污染减除剂的组分" in page.locator('tr[data-line="1"]').inner_text()
    assert stored(number).status == "closed" and stored(number).lines[0].method_code == "R7"
    look(page, "receiver-manifest-closed")

    # A regeneration batch from the 900 kg accepted.
    page.get_by_role("link", name="再生", exact=True).click()
    page.wait_for_url(base + "/regeneration")
    page.click("[data-link=new-batch]")
    page.wait_for_url(base + "/regeneration/new")
    source = page.locator("[data-input]")
    assert source.count() == 1 and "可用 900.0 kg" in source.inner_text() and number in source.inner_text()
    look(page, "regeneration-form")
    source.locator("input").fill("900")
    page.fill("input[name=batch_no]", "ZS-2026-118")
    page.fill("input[name=output_kg]", "720")
    page.fill("input[name=iodine_mg_g]", "850")
    page.click("[data-save-batch]")
    page.wait_for_url(re.compile(r".*/regeneration/\d+$"))
    assert "再生批次 ZS-2026-118 已登记" in page.locator(".flash").inner_text()
    assert page.locator("[data-remaining]").inner_text() == "720.0"
    db.session.rollback()
    batch = db.session.scalar(select(RegenerationBatch).where(RegenerationBatch.batch_no == "ZS-2026-118"))
    assert (float(batch.input_kg), float(batch.output_kg), batch.iodine_mg_g) == (900, 720, 850)
    assert float(stored(number).lines[0].consumed_kg) == 900
    look(page, "regeneration-batch")

    # The bags' labels: a PDF sheet of 2 labels, whose QR code opens the batch page.
    page.fill("input[name=bags]", "2")
    page.fill("input[name=bag_kg]", "360")
    action = page.locator("#labels form").get_attribute("action")
    pdf = page.request.get(f"{base}{action}?bags=2&bag_kg=360")
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF") and b"/Count 1" in pdf.body()
    from app.web.regeneration_pages import _signed

    with live["app"].test_request_context():
        label_url = f"{base}/regeneration/{batch.id}?s={_signed(batch.id)}"
    page.context.close()

    # The enterprise scans a bag's label, then fills its box with that carbon.
    ent = new_page(browser, phone=True)
    sign_in(ent, base, "ent", factories.PASSWORD)
    ent.goto(label_url)
    assert ent.locator("[data-iodine]").inner_text() == "850 mg/g" and live["plant"] in ent.inner_text("main")
    look(ent, "enterprise-batch-label")
    ent.fill("#use input[name=code]", live["box"])
    ent.click("#use button[type=submit]")
    ent.wait_for_url(re.compile(rf".*/c/{live['box']}\?regeneration_batch={batch.id}.*"))
    assert ent.input_value("input[name=regeneration_batch_id]") == str(batch.id)
    ent.fill("input[name=mass_kg]", "720")
    ent.fill("input[name=iodine_mg_g]", "850")
    ent.fill("input[name=removed_waste_kg]", "1950")
    look(ent, "enterprise-scan-fill")
    ent.click("form.fill-form button[type=submit]")
    ent.wait_for_selector(".flash")
    assert ent.locator(".flash").inner_text().strip() == "换炭记录已保存"
    assert "720 kg · 碘值 850 mg/g" in ent.locator("[data-fact=current-fill]").inner_text()
    db.session.rollback()
    fill = db.session.scalar(select(Fill).order_by(Fill.id.desc()))
    assert (fill.regeneration_batch_id, float(fill.mass_kg), fill.supplier_name) == (batch.id, 720, live["plant"])
    assert float(db.session.get(RegenerationBatch, batch.id).used_kg) == 720
    look(ent, "enterprise-scan-filled")
    ent.context.close()


def test_the_plants_pages_on_a_desktop(live, browser):
    base = live["base"]
    page = new_page(browser, phone=False)
    sign_in(page, base, "svc", factories.PASSWORD)
    for path, name in (("/receiving", "receiver-incoming"), ("/regeneration", "regeneration-list")):
        page.goto(base + path)
        assert page.locator("h1").is_visible()
        look(page, name)
    page.context.close()
