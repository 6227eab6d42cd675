"""The lean read (app/boxes/lean.py) shows exactly what the ordinary path shows, to exactly
those who may see it; the rules digest is the same in every process."""

from __future__ import annotations

import dataclasses
import types
from datetime import timedelta

from sqlalchemy import select, update

from app.accounts.models import ApiToken
from app.accounts.services import hash_token
from app.boxes import cache, lean, presenters, schemas
from app.boxes import services as box_services
from app.boxes.models import Box
from app.boxes.services.stored import rules_digest
from app.common.timeutil import utcnow
from app.common.wiring import wiring_of
from app.extensions import db
from tests.boxes.builders import register


def _both(app, code, now):
    """The box's JSON by the ORM path and by the lean read, at the same moment."""
    with app.test_request_context():
        session = db.session()
        box = session.scalar(select(Box).where(Box.code == code))
        rules = wiring_of(session).colour_rules()
        ordinary = schemas.BoxOut().dump(presenters.box_payload(box_services.view_box(session, box, now)))
        session.commit()  # the evaluation a first read stores
        read = lean.read_box(db.engine, code, now, rules, rules_digest(rules), with_last_replacement=True)
        assert read is not None
        view = box_services.BoxView(read.box, read.evaluation, read.fill)  # type: ignore[arg-type]
        lean_json = schemas.BoxOut().dump(presenters.box_payload(view))
        last = box_services.last_replacement(session, box.id)
        return ordinary, lean_json, last, read.last_replacement


def test_lean_read_equals_the_ordinary_path(api, app, now):
    empty = register(api)["code"]
    filled = register(api)["code"]
    api.post(f"/api/v1/boxes/{filled}/fills", {"mass_kg": 2000, "iodine_mg_g": 900}, as_="ent")
    replaced = register(api)["code"]
    api.post(f"/api/v1/boxes/{replaced}/fills", {"mass_kg": 2000, "iodine_mg_g": 900}, as_="ent")
    r = api.post(
        f"/api/v1/boxes/{replaced}/fills",
        {"mass_kg": 1800, "iodine_mg_g": 850, "removed_waste_kg": 2100, "batch_no": "B-7"},
        as_="ent",
    )
    assert r.status_code == 201, r.get_json()
    later = now + timedelta(hours=5)  # the design saturation is worked out for the moment read
    for code in (empty, filled, replaced):
        ordinary, lean_json, last, lean_last = _both(app, code, later)
        assert lean_json == ordinary, code
        assert (last is None) == (lean_last is None)
        if last is not None:
            assert (lean_last.filled_at, lean_last.removed_waste_kg) == (last.filled_at, last.removed_waste_kg)
    assert _both(app, replaced, later)[1]["current_fill"]["batch_no"] == "B-7"


def test_a_box_due_for_its_check_is_not_read_lean(api, app, now):
    code = register(api)["code"]
    api.post(f"/api/v1/boxes/{code}/fills", {"mass_kg": 2000, "iodine_mg_g": 900}, as_="ent")
    api.get(f"/api/v1/boxes/{code}", as_="ent")
    with app.app_context():
        rules = wiring_of(db.session()).colour_rules()
        due = db.session.scalar(select(Box.colour_next_check_at).where(Box.code == code))
        assert due is not None
        assert lean.read_box(db.engine, code, due - timedelta(seconds=1), rules, rules_digest(rules)) is not None
        assert lean.read_box(db.engine, code, due, rules, rules_digest(rules)) is None
        assert lean.read_box(db.engine, code, now, rules, "other rules") is None
        assert lean.read_box(db.engine, "NOSUCHBOX", now, rules, rules_digest(rules)) is None


def test_lean_api_reads_keep_visibility_and_token_checks(api, app):
    code = register(api)["code"]
    for user, status in (("ent", 200), ("other", 404), ("reg_city", 200), ("op", 200)):
        cache.box_json_cache.clear()
        first = api.get(f"/api/v1/boxes/{code}", as_=user)  # the token's first use: the ordinary path
        second = api.get(f"/api/v1/boxes/{code}", as_=user)  # a known token: the lean read
        assert (first.status_code, second.status_code) == (status, status), user
        if status == 200:
            assert second.get_json()["code"] == code
    # A token revoked elsewhere (another worker) stops working at once on the lean path too.
    with app.app_context():
        db.session.execute(
            update(ApiToken).where(ApiToken.token_hash == hash_token(api.token("ent"))).values(revoked_at=db.func.now())
        )
        db.session.commit()
    assert api.get(f"/api/v1/boxes/{code}", as_="ent").status_code == 401


def test_box_json_and_scan_page_answer_304_to_their_etag(api, client):
    code = register(api)["code"]
    api.get(f"/api/v1/boxes/{code}", as_="ent")
    r = api.get(f"/api/v1/boxes/{code}", as_="ent")
    tag = r.headers["ETag"]
    again = api.get(f"/api/v1/boxes/{code}", as_="ent", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.data == b""
    page = client.get(f"/c/{code}")
    assert page.status_code == 200 and page.headers.get("ETag")
    assert client.get(f"/c/{code}", headers={"If-None-Match": page.headers["ETag"]}).status_code == 304
    assert client.get(f"/c/{code}", headers={"If-None-Match": '"other"'}).status_code == 200


def test_rules_digest_names_checks_not_their_addresses(app):
    with app.app_context():
        rules = wiring_of(db.session()).colour_rules()
        digest = rules_digest(rules)
        # The same checks as other function objects (another process): the same digest.
        copies = {
            code: types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
            for code, fn in rules.checks.items()
        }
        for code, fn in copies.items():
            fn.__qualname__ = rules.checks[code].__qualname__
        assert rules_digest(dataclasses.replace(rules, checks=copies)) == digest
        other = dataclasses.replace(rules, version=rules.version + "-x")
        assert rules_digest(other) != digest


def test_core_reader_rows_equal_cores(api, app, now):
    """The reader runs the statement on the driver's cursor with each column's own result
    processor: the same values, of the same types, as Core's execution of it."""
    from app.common.fastread import core_reader

    codes = [register(api)["code"] for _ in range(2)]
    api.post(f"/api/v1/boxes/{codes[0]}/fills", {"mass_kg": 2000, "iodine_mg_g": 900}, as_="ent")
    _both(app, codes[0], now)  # its stored evaluation
    with app.app_context(), db.engine.connect() as connection:
        for code in codes:
            for statement in (lean.BOX_READ, lean.SCAN_READ):
                core = dict(connection.execute(statement, {"code": code}).one()._mapping)
                mine = core_reader.first(db.engine, statement, {"code": code})
                assert mine is not None and dict(mine) == core
                assert {k: type(v) for k, v in mine.items()} == {k: type(v) for k, v in core.items()}
                assert mine.code == mine._mapping["code"] == code
        assert core_reader.first(db.engine, lean.BOX_READ, {"code": "NOSUCHBOX"}) is None


def test_box_api_reads_the_callers_token_in_the_boxs_statement(api, app):
    """One statement: the box with the caller's token row; an unknown token gives the box with
    no caller (the view then takes the ordinary path, which answers 401)."""
    from app.common.auth import LEAN_CALLER, visibility_from_row

    code = register(api)["code"]
    api.get(f"/api/v1/boxes/{code}", as_="ent")  # stores the evaluation
    with app.test_request_context():
        rules = wiring_of(db.session()).colour_rules()
        digest = rules_digest(rules)
        now = utcnow()
        known = lean.read_box(
            db.engine,
            code,
            now,
            rules,
            digest,
            caller=LEAN_CALLER,
            caller_params={"token_hash": hash_token(api.token("ent"))},
        )
        assert known is not None and known.caller is not None
        viewer = visibility_from_row(known.caller)
        assert viewer is not None and box_services.can_see(viewer, **known.visibility)
        unknown = lean.read_box(
            db.engine, code, now, rules, digest, caller=LEAN_CALLER, caller_params={"token_hash": "no such token"}
        )
        assert unknown is not None and unknown.caller is None and unknown.box.code == code
