"""A schema's compiled dump (app/common/lean_dump.py) gives exactly what marshmallow's dump gives."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from marshmallow import Schema, fields
from sqlalchemy import select

from app.boxes import presenters, schemas
from app.boxes import services as box_services
from app.boxes.models import Box
from app.common.lean_dump import compile_dump
from app.extensions import db
from tests.boxes.builders import register


def test_box_json_compiled_equals_marshmallows(api, app, now):
    empty = register(api)["code"]
    filled = register(api)["code"]
    api.post(f"/api/v1/boxes/{filled}/fills", {"mass_kg": 2000, "iodine_mg_g": 900}, as_="ent")
    replaced = register(api, has_sensors=True, name="一号箱")["code"]
    api.post(f"/api/v1/boxes/{replaced}/fills", {"mass_kg": 2000, "iodine_mg_g": 900}, as_="ent")
    r = api.post(
        f"/api/v1/boxes/{replaced}/fills",
        {"mass_kg": 1800, "iodine_mg_g": 850, "removed_waste_kg": 2100, "batch_no": "B-7"},
        as_="ent",
    )
    assert r.status_code == 201, r.get_json()
    schema = schemas.BoxOut()
    dump = compile_dump(schema)
    seen_fill = False
    with app.test_request_context():
        session = db.session()
        for code in (empty, filled, replaced):
            box = session.scalar(select(Box).where(Box.code == code))
            for moment in (now, now + timedelta(days=40)):  # green, then red with reasons
                payload = presenters.box_payload(box_services.view_box(session, box, moment))
                expected = schema.dump(payload)
                got = dump(payload)
                assert got == expected, code
                assert list(got) == list(expected)  # the same keys in the same order
                assert json.dumps(got, ensure_ascii=False) == json.dumps(expected, ensure_ascii=False)
                seen_fill |= got["current_fill"] is not None and bool(got["reasons"])
        session.rollback()
    assert seen_fill


def test_compiled_dump_leaves_out_missing_keys_and_keeps_none():
    class Inner(Schema):
        n = fields.Int()

    class Outer(Schema):
        a = fields.Float(allow_none=True)
        b = fields.Str()
        items = fields.List(fields.Nested(Inner))
        one = fields.Nested(Inner, allow_none=True)

    data = {"a": None, "items": [{"n": 2.0}, {}], "one": {"n": "3"}}
    assert compile_dump(Outer())(data) == Outer().dump(data) == {"a": None, "items": [{"n": 2}, {}], "one": {"n": 3}}


def test_compiled_dump_refuses_fields_it_does_not_reproduce():
    class Odd(Schema):
        when = fields.Date()

    class AsText(Schema):
        n = fields.Int(as_string=True)

    for schema in (Odd(), AsText()):
        with pytest.raises(TypeError):
            compile_dump(schema)
