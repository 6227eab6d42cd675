"""Plausibility confirmations (issue 11): impossible values refused with the field and the limit;
unusual ones answered 422 confirmation_required per field unless confirmed; a confirmed value is
stored flagged (and audited). The API and the scan page alike."""

from __future__ import annotations

import re
from datetime import timedelta

from flask_babel import refresh
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.boxes.models import Fill
from app.common.timeutil import utcnow
from app.extensions import db
from app.ledger.models import LedgerRecord
from tests import factories
from tests.boxes.builders import register
from tests.ledger.builders import ago, iso


def _fill(api, code, body, as_="ent"):
    return api.post(f"/api/v1/boxes/{code}/fills", body, as_=as_)


def test_an_impossible_iodine_is_refused_naming_the_limit(api):
    box = register(api)
    r = _fill(api, box["code"], {"mass_kg": 2000, "iodine_mg_g": 99999})
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    assert "3000" in " ".join(r.get_json()["errors"]["iodine_mg_g"])
    # Confirming does not make an impossible value possible.
    assert _fill(api, box["code"], {"mass_kg": 2000, "iodine_mg_g": 99999, "confirm_unusual": True}).status_code == 422


def test_unusual_fill_values_need_a_confirmation_and_are_stored_flagged(api):
    box = register(api)  # design fill 2000 kg
    body = {"mass_kg": 3500, "iodine_mg_g": 1800, "filled_at": iso(ago(days=3))}
    r = _fill(api, box["code"], body)
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    problem = r.get_json()
    assert problem["code"] == "confirmation_required"
    assert problem["warnings"] == problem["errors"]
    assert problem["warnings"] == {
        "iodine_mg_g": ["unusual: outside the usual 300–1500 mg/g"],
        "mass_kg": ["unusual: more than 1.5 × the box's design fill (2000 kg)"],
    }
    assert db.session.scalar(select(Fill.id)) is None
    r = _fill(api, box["code"], {**body, "confirm_unusual": True})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["confirmed_unusual"] is True
    # A usual fill is not flagged.
    usual = _fill(api, box["code"], {"mass_kg": 2000, "iodine_mg_g": 900, "removed_waste_kg": 3000})
    assert usual.status_code == 201 and usual.get_json()["confirmed_unusual"] is False


def test_waste_carbon_removed_above_what_the_box_held(api):
    box = register(api)
    assert (
        _fill(api, box["code"], {"mass_kg": 2000, "iodine_mg_g": 900, "filled_at": iso(ago(days=3))}).status_code == 201
    )
    # 2000 kg of carbon + 35 % adsorbed = 2700 kg at most came out of the box.
    body = {"mass_kg": 2000, "iodine_mg_g": 900, "removed_waste_kg": 99999}
    r = _fill(api, box["code"], body)
    assert r.status_code == 422 and r.get_json()["code"] == "confirmation_required"
    assert r.get_json()["warnings"] == {
        "removed_waste_kg": ["unusual: more than the box held (2000 kg of carbon + 35% adsorbed = 2700 kg)"]
    }
    assert len(db.session.scalars(select(LedgerRecord)).all()) == 0  # nothing reached the ledger
    r = _fill(api, box["code"], {**body, "confirm_unusual": True})
    assert r.status_code == 201
    db.session.rollback()
    records = db.session.scalars(select(LedgerRecord).where(LedgerRecord.origin == "replacement")).all()
    assert records and all(rec.confirmed_unusual for rec in records)
    fill = db.session.scalars(select(Fill).where(Fill.removed_waste_kg.is_not(None))).one()
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.table_name == "fills")).all()
    mine = [e for e in entries if str(fill.id) in e.row_key and e.action == "insert"]
    assert mine and '"confirmed_unusual":true' in (mine[0].after or "").replace(" ", ""), [e.after for e in mine]


def test_an_unusual_ledger_quantity_needs_a_confirmation(api):
    body = {"waste_code": "900-041-49", "quantity_kg": 80000}
    r = api.post("/api/v1/ledger", body, as_="ent")
    assert r.status_code == 422 and r.get_json()["code"] == "confirmation_required"
    assert r.get_json()["warnings"] == {"quantity_kg": ["unusual: more than 50000 kg in one record"]}
    r = api.post("/api/v1/ledger", {**body, "confirm_unusual": True}, as_="ent")
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["confirmed_unusual"] is True


def test_the_scan_page_shows_the_warnings_keeps_what_was_typed_and_takes_the_checkbox(app, world):
    box = factories.box(world.enterprise, world.service, now=utcnow() - timedelta(days=10))
    db.session.commit()
    form = {"mass_kg": "2000", "iodine_mg_g": "1800", "batch_no": "ZS-9"}
    for lang, warning, checkbox in (
        ("zh", "不常见：超出常见范围 300–1500 mg/g", "我已核实以上数值"),
        ("en", "unusual: outside the usual 300–1500 mg/g", "I have checked these values"),
    ):
        refresh()  # the test's app context is shared by its requests: Babel's cached locale goes
        client = app.test_client()
        client.post("/login", data={"username": "svc", "password": factories.PASSWORD})
        r = client.post(f"/c/{box.code}?lang={lang}", data=form)
        page = r.get_data(as_text=True)
        assert r.status_code == 422
        assert warning in page and checkbox in page
        assert 'name="confirm_unusual"' in page
        assert 'value="1800"' in page and 'value="ZS-9"' in page  # what was typed is kept
    assert db.session.scalar(select(Fill.id)) is None
    r = client.post(f"/c/{box.code}", data={**form, "confirm_unusual": "true"})
    assert r.status_code == 302, re.sub(r"\s+", " ", r.get_data(as_text=True))[-800:]
    db.session.rollback()
    assert db.session.scalars(select(Fill)).one().confirmed_unusual is True


def test_unusual_manifest_lines_and_receipts_need_a_confirmation(api, world):
    from tests.ledger.builders import build_loop, manifest_body, walk_to

    loop = build_loop(world, api, removed_kg=60000)  # a confirmed, unusual replacement: 60 t in stock
    body = manifest_body(loop, 60000)
    r = api.post("/api/v1/manifests", body, as_="ent")
    assert r.status_code == 422 and r.get_json().get("code") == "confirmation_required", r.get_json()
    assert r.get_json()["warnings"] == {"lines.0.quantity_kg": ["unusual: more than 50000 kg in one record"]}
    # A usual manifest, received at twice its quantity: the receipt needs a confirmation.
    number = api.post("/api/v1/manifests", {**manifest_body(loop, 500), "submit": True}, as_="ent").get_json()["number"]
    walk_to(api, number, "in_transit")
    receipt = {"lines": [{"line_no": 1, "received_kg": 1000, "accepted_kg": 500, "refusal_reason": "wet"}]}
    r = api.post(f"/api/v1/manifests/{number}/receive", receipt, as_="svc")
    assert r.status_code == 422 and r.get_json()["code"] == "confirmation_required", r.get_json()
    assert r.get_json()["warnings"] == {"lines.0.received_kg": ["unusual: more than 1.5 × the 500 kg shipped"]}
    r = api.post(f"/api/v1/manifests/{number}/receive", {**receipt, "confirm_unusual": True}, as_="svc")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["lines"][0]["confirmed_unusual"] is True
