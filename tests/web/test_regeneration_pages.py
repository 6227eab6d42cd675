"""The regeneration plant's pages over HTTP (app/web/regeneration_pages.py): a batch from the
received carbon still available, the list with what remains, the batch page, the bags' label
sheet, and a fill of that carbon from the scan page; other plants get "not found"."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select

from app.boxes.models import Fill
from app.extensions import db
from app.regeneration.models import RegenerationBatch
from tests.ledger.builders import ago, build_loop, walk_to
from tests.web.builders import login, other_receiver, text, two_lines_in_transit


@pytest.fixture
def loop(world, api):
    return build_loop(world, api, removed_kg=1800, replaced_at=ago(days=20))


@pytest.fixture
def received(api, loop):
    """A two-line manifest received in full and processed (R7): 1,000 + 600 kg of waste carbon."""
    manifest = two_lines_in_transit(api, loop)
    return walk_to(api, manifest["number"], "closed")


def batch_form(received, first="800", second="", **extra) -> dict:
    db.session.rollback()
    from app.ledger.models import Manifest

    manifest = db.session.scalar(select(Manifest).where(Manifest.number == received["number"]))
    ids = {line.line_no: line.id for line in manifest.lines}
    form = {"batch_no": "ZS-2026-001", "output_kg": "600", "iodine_mg_g": "850", "method_code": "R7"}
    form[f"input_{ids[1]}"] = first
    if second:
        form[f"input_{ids[2]}"] = second
    return {**form, **extra}


def test_a_batch_from_received_carbon(app, world, api, received):
    client = login(app, "svc")
    page = client.get("/regeneration/new")
    assert page.status_code == 200
    words = text(page)
    assert received["number"] in words and "可用 1,000.0 kg" in words and "可用 600.0 kg" in words
    assert "R7 回收污染减除剂的组分" in words and "D1" not in words  # utilisation only

    r = client.post("/regeneration/new", data=batch_form(received, first="800", second="200"))
    assert r.status_code == 302, text(r)
    batch = db.session.scalar(select(RegenerationBatch))
    assert r.location.endswith(f"/regeneration/{batch.id}")
    assert (float(batch.input_kg), float(batch.output_kg), batch.iodine_mg_g) == (1000, 600, 850)
    detail = client.get(r.location)
    assert "再生批次 ZS-2026-001 已登记" in text(detail) and "剩余 600.0 kg" in text(detail)
    listing = client.get("/regeneration")
    assert f'data-remaining="{batch.id}">600.0<' in listing.get_data(as_text=True)
    # What is left to regenerate: 200 kg of line 1, 400 kg of line 2.
    words = text(client.get("/regeneration/new"))
    assert "可用 200.0 kg" in words and "可用 400.0 kg" in words


def test_batch_errors_per_field_in_chinese(app, world, api, received):
    client = login(app, "svc")
    r = client.post("/regeneration/new", data=batch_form(received, first="5000", output_kg="abc"))
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert 'data-error-for="output_kg"' in html and "不是有效的数字" in text(r)
    assert 'value="5000"' in html and 'value="ZS-2026-001"' in html  # kept
    r = client.post("/regeneration/new", data=batch_form(received, first="5000"))
    assert r.status_code == 422
    assert re.search(r'data-error-for="input_\d+">联单 \d+ 第 1 行只剩 1000 kg 可用', r.get_data(as_text=True))
    r = client.post("/regeneration/new", data=batch_form(received, first="500", output_kg="900"))
    assert r.status_code == 422 and "产出量不能超过投入的 500 kg 废活性炭" in text(r)
    r = client.post("/regeneration/new", data=batch_form(received, first=""))
    assert r.status_code == 422 and "请至少填写一行投入量" in text(r)
    assert db.session.scalar(select(RegenerationBatch.id)) is None


def test_labels_and_a_fill_of_the_regenerated_carbon(app, world, api, loop, received):
    client = login(app, "svc")
    client.post("/regeneration/new", data=batch_form(received, first="1000"))
    batch = db.session.scalar(select(RegenerationBatch))
    pdf = client.get(f"/regeneration/{batch.id}/labels.pdf?bags=3&bag_kg=200")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert pdf.data.count(b"/Type /Page\n") + pdf.data.count(b"/Type /Page ") + pdf.data.count(b"/Type /Page/") >= 1
    assert client.get(f"/regeneration/{batch.id}/labels.pdf?bags=0").status_code == 302
    # The label's QR opens the batch page with its signature: the enterprise sees the summary.
    from app.web.regeneration_pages import _signed

    with app.test_request_context():
        signature = _signed(batch.id)
    ent = login(app, "ent")
    assert ent.get(f"/regeneration/{batch.id}").status_code == 404  # without the label
    assert ent.get(f"/regeneration/{batch.id}?s=aaaaaaaaaaaaaaaa").status_code == 404
    summary = ent.get(f"/regeneration/{batch.id}?s={signature}")
    assert summary.status_code == 200 and "850 mg/g" in text(summary) and "投入的废活性炭" not in text(summary)
    go = ent.get(f"/regeneration/{batch.id}/fill?s={signature}&code={loop.box.code.lower()}")
    assert go.status_code == 302
    target = urlparse(go.location)
    assert target.path == f"/c/{loop.box.code}" and parse_qs(target.query)["regeneration_batch"] == [str(batch.id)]
    scan = ent.get(go.location)
    assert f'name="regeneration_batch_id" type="number" min="1" step="1" inputmode="numeric" value="{batch.id}"' in (
        scan.get_data(as_text=True)
    )
    # Too much iodine for the batch: refused on the field, in Chinese.
    form = {"mass_kg": "500", "iodine_mg_g": "900", "removed_waste_kg": "1900", "regeneration_batch_id": str(batch.id)}
    r = ent.post(f"/c/{loop.box.code}", data=form)
    assert r.status_code == 422 and "碘值为 850 mg/g，装填的碘值不能更高" in text(r)
    r = ent.post(f"/c/{loop.box.code}", data={**form, "iodine_mg_g": "840"})
    assert r.status_code == 302
    db.session.rollback()
    fill = db.session.scalar(select(Fill).order_by(Fill.id.desc()))
    assert fill.regeneration_batch_id == batch.id and fill.supplier_name == world.service.name
    assert float(db.session.get(RegenerationBatch, batch.id).used_kg) == 500
    # (one app context for the whole test: signing in again, not the first client, picks the plant)
    assert "剩余 100.0 kg" in text(login(app, "svc").get(f"/regeneration/{batch.id}"))


def test_other_plants_and_enterprises_get_not_found(app, world, api, received):
    client = login(app, "svc")
    client.post("/regeneration/new", data=batch_form(received, first="1000"))
    batch = db.session.scalar(select(RegenerationBatch))
    other_receiver(world)
    db.session.commit()
    plant2 = login(app, "plant2")
    for path in (f"/regeneration/{batch.id}", f"/regeneration/{batch.id}/labels.pdf?bags=1"):
        assert plant2.get(path).status_code == 404, path
    assert batch.batch_no not in text(plant2.get("/regeneration"))
    assert "没有可再生的已接收废活性炭" in text(plant2.get("/regeneration/new"))
    assert login(app, "ent").get("/regeneration/new").status_code == 403
    # A regulator over the plant reads the batch, but prints no labels.
    reg = login(app, "reg_tt")
    assert reg.get(f"/regeneration/{batch.id}").status_code == 200
    assert reg.get(f"/regeneration/{batch.id}/labels.pdf?bags=1").status_code == 404
