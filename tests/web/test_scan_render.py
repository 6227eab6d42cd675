"""The scan page compiled per language (app/web/scan_render.py) is the page the app's own
environment renders, byte for byte, in both languages and every state it shows."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from app.boxes import presenters
from app.boxes import services as box_services
from app.boxes.models import Box
from app.extensions import db
from app.web import scan_render
from tests.boxes.builders import register


def _one_time(html: str) -> str:
    """The form's idempotency key is new on every rendering (app/web/form_tokens.py)."""
    return re.sub(r'name="([^"]*idempotency[^"]*)" value="[0-9a-f]{32}"', r'name="\1" value="…"', html)


def _contexts(box, payload, now):
    plain = {
        "box": box,
        "p": payload,
        "label_state": "typed",
        "form": {},
        "last_replacement": box_services.last_replacement(db.session(), box.id),
        "now": now,
        "can_fill": False,
        "form_errors": {},
        "needs_confirmation": False,
        "principal": None,
        "field_labels": {},
    }
    yield plain
    for state in ("ok", "forged", "superseded"):
        yield {**plain, "label_state": state}
    yield {  # the replacement form with a refused value, as signed-in staff see it
        **plain,
        "can_fill": True,
        "principal": object(),
        "form_errors": {"mass_kg": ["必须大于 0"], "_": ["x % y"]},
        "needs_confirmation": True,
        "field_labels": {"mass_kg": "装填量 (kg)"},
    }


def test_compiled_scan_page_equals_the_plain_rendering(api, app, now):
    plain_box = register(api)["code"]
    sensor_box = register(api, has_sensors=True)["code"]
    for code in (plain_box, sensor_box):
        api.post(f"/api/v1/boxes/{code}/fills", {"mass_kg": 2000, "iodine_mg_g": 900}, as_="ent")
    api.post(
        f"/api/v1/boxes/{plain_box}/fills",
        {"mass_kg": 1800, "iodine_mg_g": 850, "removed_waste_kg": 2100, "batch_no": "B-7"},
        as_="ent",
    )
    compared = 0
    for lang, word in (("zh", "<h2>原因</h2>"), ("en", "<h2>Why</h2>")):
        for code in (plain_box, sensor_box):
            # A fresh app context: Flask-Babel keeps the locale on it (g)
            with app.app_context(), app.test_request_context(f"/c/{code}?lang={lang}&v=1&s=abc"):
                box = db.session.scalar(select(Box).where(Box.code == code))
                moment = now + timedelta(days=30)  # red, with reasons
                payload = presenters.box_payload(box_services.view_box(db.session(), box, moment))
                for context in _contexts(box, payload, moment):
                    fast = _one_time(scan_render.render_page("scan.html", **context))
                    plain = _one_time(scan_render.render_page_plainly("scan.html", **context))
                    assert fast == plain, (lang, code, context["label_state"], context["can_fill"])
                    assert word in fast
                    compared += 1
                db.session.rollback()
    assert compared == 20


def test_a_message_that_is_not_a_plain_string_stays_a_call():
    class Catalogue:
        def ugettext(self, message):
            return {"a": "50% of <b>", "b": "%(n)s left", "c": "<i>&</i>"}[message]

    assert scan_render._fixed(Catalogue(), "a") is None  # a stray %: formatted at render time
    assert scan_render._fixed(Catalogue(), "b") is None  # needs its variable
    assert scan_render._fixed(Catalogue(), "c") == "<i>&</i>"  # trusted markup, as gettext gives it
