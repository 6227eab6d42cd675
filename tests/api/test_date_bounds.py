"""Dates inside the stored history (issue 9): refused with problem+json naming the field and the
bound; on pages in the page's language. Through HTTP."""

from __future__ import annotations

import re
from datetime import timedelta

from flask_babel import refresh
from sqlalchemy import func, select

from app.boxes.models import Fill
from app.common.limits import load as load_limits
from app.common.timeutil import local_date
from app.extensions import db
from tests import factories
from tests.boxes.builders import register
from tests.ledger.builders import ago, build_loop, iso, new_manifest, walk_to

BACKFILL = load_limits().backfill_days  # plausibility.yaml dates.backfill_days (5 years)


def _filled_at_errors(r) -> list[str]:
    assert r.status_code == 422, r.get_json()
    assert r.mimetype == "application/problem+json"
    return r.get_json()["errors"]["filled_at"]


def test_a_first_fill_long_before_the_boxs_registration_is_refused(api):
    box = register(api)
    registered = local_date(ago(days=0))
    r = api.post(
        f"/api/v1/boxes/{box['code']}/fills",
        {"mass_kg": 2000, "iodine_mg_g": 900, "filled_at": "2001-01-01T08:00:00"},
        as_="ent",
    )
    earliest = registered - timedelta(days=BACKFILL)
    assert _filled_at_errors(r) == [f"cannot be before {earliest} (the box was registered on {registered})"]
    # Inside the back-fill window (the carbon already in a box registered today) it is stored.
    r = api.post(
        f"/api/v1/boxes/{box['code']}/fills",
        {"mass_kg": 2000, "iodine_mg_g": 900, "filled_at": iso(ago(days=30))},
        as_="ent",
    )
    assert r.status_code == 201, r.get_json()


def test_a_fill_before_the_previous_fill_is_refused_whatever_its_kind(api):
    box = register(api)
    first = ago(days=5)
    r = api.post(
        f"/api/v1/boxes/{box['code']}/fills", {"mass_kg": 2000, "iodine_mg_g": 900, "filled_at": iso(first)}, as_="ent"
    )
    assert r.status_code == 201
    for body in (
        {"mass_kg": 2000, "iodine_mg_g": 900, "removed_waste_kg": 100, "filled_at": iso(first - timedelta(days=1))},
        {"mass_kg": 2000, "iodine_mg_g": 900, "kind": "initial", "filled_at": iso(first - timedelta(days=1))},
    ):
        messages = _filled_at_errors(api.post(f"/api/v1/boxes/{box['code']}/fills", body, as_="ent"))
        assert len(messages) == 1 and re.fullmatch(
            r"must be after the previous fill \(\d{4}-\d\d-\d\d \d\d:\d\d\)", messages[0]
        )
    assert db.session.scalar(select(func.count()).select_from(Fill)) == 1


def test_the_scan_page_names_the_bound_in_chinese_and_english(app, world):
    box = factories.box(world.enterprise, world.service)
    db.session.commit()
    form = {"mass_kg": "2000", "iodine_mg_g": "900", "filled_at": "2001-01-01T08:00"}
    registered = local_date(box.created_at)
    earliest = registered - timedelta(days=BACKFILL)
    expected = {
        "zh": f"不能早于 {earliest}（碳箱登记于 {registered}）",
        "en": f"cannot be before {earliest} (the box was registered on {registered})",
    }
    for lang, message in expected.items():
        refresh()  # the test's app context (world) is shared by its requests: Babel's cached locale goes
        client = app.test_client()  # each language from a fresh browser (the lang cookie)
        client.post("/login", data={"username": "svc", "password": factories.PASSWORD})
        r = client.post(f"/c/{box.code}?lang={lang}", data=form)
        assert r.status_code == 422
        assert message in r.get_data(as_text=True)
        assert 'value="2001-01-01T08:00"' in r.get_data(as_text=True)  # what was typed is kept


def test_a_ledger_record_before_the_enterprise_existed_is_refused(api, world):
    registered = local_date(world.enterprise.created_at)
    body = {"waste_code": "900-041-49", "quantity_kg": 12.5, "generated_at": "1000-01-01T00:00:00"}
    r = api.post("/api/v1/ledger", body, as_="ent")
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    assert "generated_at" in r.get_json()["errors"]  # the schema's own floor (plausibility.yaml dates.min)
    r = api.post("/api/v1/ledger", {**body, "generated_at": "2015-06-01T08:00:00"}, as_="ent")
    assert r.status_code == 422, r.get_json()
    earliest = registered - timedelta(days=BACKFILL)
    assert r.get_json()["errors"] == {
        "generated_at": [f"cannot be before {earliest} (the enterprise was registered on {registered})"]
    }
    assert api.post("/api/v1/ledger", {**body, "generated_at": iso(ago(days=40))}, as_="ent").status_code == 201


def test_a_regeneration_batch_before_its_inputs_were_received_is_refused(api, world):
    loop = build_loop(world, api, removed_kg=1800)
    number = new_manifest(api, loop, 1800, submit=True)["number"]
    walk_to(api, number, "in_transit")
    r = api.post(f"/api/v1/manifests/{number}/receive", {"lines": [{"line_no": 1, "received_kg": 1790}]}, as_="svc")
    assert r.status_code == 200, r.get_json()
    received = local_date(ago(days=0))
    body = {
        "batch_no": "ZS-2026-001",
        "method_code": "R7",
        "output_kg": 1500,
        "iodine_mg_g": 950,
        "produced_on": (received - timedelta(days=3)).isoformat(),
        "inputs": [{"manifest_number": number, "line_no": 1, "quantity_kg": 1790}],
    }
    r = api.post("/api/v1/regeneration-batches", body, as_="svc")
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    assert r.get_json()["errors"] == {"produced_on": [f"cannot be before its inputs were received ({received})"]}
    r = api.post("/api/v1/regeneration-batches", {**body, "produced_on": received.isoformat()}, as_="svc")
    assert r.status_code == 201, r.get_json()
