"""The signatures and the audit trail on pages: the manifest page (signatures, hand-over code
button, 变更记录), the box page's trail, in Chinese and English, scoped like the API."""

from __future__ import annotations

import re

from flask_babel import refresh
from sqlalchemy import select

from app.boxes.models import Box
from app.extensions import db
from tests import factories
from tests.ledger.builders import build_loop, new_manifest, walk_to


def login(app, username: str):
    client = app.test_client()
    r = client.post("/login", data={"username": username, "password": factories.PASSWORD})
    assert r.status_code == 302, r.get_data(as_text=True)
    return client


def page(client, path: str, lang: str = "zh") -> str:
    refresh()  # the test's app context outlives requests: forget the locale Flask-Babel cached
    r = client.get(f"{path}?lang={lang}")
    assert r.status_code == 200, (path, r.status_code)
    return r.get_data(as_text=True)


def test_the_manifest_page_shows_who_signed_and_what_changed(app, world, api):
    loop = build_loop(world, api)
    number = new_manifest(api, loop, 1000, submit=True)["number"]
    walk_to(api, number, "closed")
    for username in ("ent", "svc", "reg_tt"):  # a party and the county's regulator
        html = page(login(app, username), f"/manifests/{number}")
        section = html.split('id="signatures"')[1].split("</section>")[0]
        assert section.count("<li ") == 5 and section.count('data-matches="yes"') == 5, username
        assert "一次性交接码" in section and world.enterprise.name in section and "SHA-256" in section
        trail = html.split('id="audit-trail"')[1].split("</section>")[0]
        assert "变更记录" in html and "drv" in trail and "状态: 已提交 → 运输中" in trail, username
    english = page(login(app, "reg_tt"), f"/manifests/{number}", "en")
    assert "Electronic signatures" in english and "Change history" in english
    assert "电子签名" not in english and "变更记录" not in english
    assert "Status: Submitted → In transit" in english or "In transit" in english
    # another enterprise reads neither the manifest nor its trail
    assert login(app, "other").get(f"/manifests/{number}").status_code == 404


def test_the_consignor_creates_a_handover_code_from_the_manifest_page(app, world, api):
    loop = build_loop(world, api)
    number = new_manifest(api, loop, 1000, submit=True)["number"]
    consignor = login(app, "ent_staff")
    html = page(consignor, f"/manifests/{number}")
    assert "生成交接码（给承运人）" in html
    r = consignor.post(f"/manifests/{number}/handover-code")
    assert r.status_code == 200
    code = re.search(r'data-code="(\d{6})"', r.get_data(as_text=True)).group(1)
    # the carrier types it on the scanned page, with its own password
    carrier = login(app, "drv")
    form = {
        "vehicle_plate": "浙J12345",
        "driver_name": "王师傅",
        "driver_phone": "13812345678",
        "signature_password": factories.PASSWORD,
        "handover_code": code,
    }
    r = carrier.post(f"/m/{number}/pickup", data=form)
    assert r.status_code == 302 and r.headers["Location"].endswith("/picked-up")
    signed = api.get(f"/api/v1/manifests/{number}", as_="ent").get_json()["signatures"]
    assert [(s["party"], s["signer_name"], s["method"]) for s in signed[1:]] == [
        ("carrier", "drv", "password"),
        ("consignor", "ent_staff", "one_time_code"),
    ]
    # the carrier (not the consignor) has no button and cannot create codes
    assert "生成交接码" not in page(carrier, f"/manifests/{number}")
    assert carrier.post(f"/manifests/{number}/handover-code").status_code in (403, 404, 409)


def test_the_box_page_shows_its_trail(app, world, api):
    build_loop(world, api)
    code = db.session.scalar(select(Box.code).order_by(Box.id))
    html = page(login(app, "ent"), f"/boxes/{code}")
    trail = html.split('id="audit-trail"')[1].split("</section>")[0]
    assert "变更记录" in html and trail.count("<li ") >= 2
    english = page(login(app, "reg_tt"), f"/boxes/{code}", "en")
    assert "Change history" in english and "变更记录" not in english
