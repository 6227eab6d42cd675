"""Signed hand-overs: every manifest step is signed by a person of the acting party who
authenticates at that moment; the consignor's hand-over at pickup by its one-time code; the
signatures' content hashes are checked on the verification page and by `audit verify`."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta

import pytest
from flask_babel import refresh
from sqlalchemy import select

from app.accounts.models import User
from app.accounts.services import Principal
from app.audit import signatures
from app.audit.models import HandoverCode, ManifestSignature
from app.extensions import db
from app.ledger.models import Manifest, ManifestLine
from tests import factories
from tests.audit.builders import tamper, verify
from tests.ledger.builders import ago, build_loop, new_manifest, walk_to

PICKUP = {"vehicle_plate": "浙J12345", "driver_name": "王师傅"}
SIGN = {"password": factories.PASSWORD}


def _submitted(world, api, quantity: float = 1000.0) -> str:
    loop = build_loop(world, api)
    return new_manifest(api, loop, quantity, submit=True)["number"]


def _manifest(number: str) -> Manifest:
    db.session.rollback()
    return db.session.scalar(select(Manifest).where(Manifest.number == number))


def test_each_step_is_signed_by_its_party_and_the_pickup_twice(world, api):
    number = _submitted(world, api)
    closed = walk_to(api, number, "closed")
    got = [(s["step"], s["party"], s["signer_name"], s["method"]) for s in closed["signatures"]]
    assert got == [
        ("submit", "consignor", "ent", "password"),
        ("pickup", "carrier", "drv", "password"),
        ("pickup", "consignor", "ent", "one_time_code"),  # the code the consignor's staff issued
        ("receive", "receiver", "svc", "password"),
        ("process", "receiver", "svc", "password"),
    ]
    assert all(len(s["content_sha256"]) == 64 for s in closed["signatures"])
    assert closed["signatures"][0]["organization_name"] == world.enterprise.name
    # each hash is the one recomputed from the manifest's content at that step
    manifest = _manifest(number)
    assert [c.matches for c in signatures.checks(db.session, manifest)] == [True] * 5
    code = db.session.scalar(select(HandoverCode).where(HandoverCode.manifest_id == manifest.id))
    assert code.used_at is not None and code.code_hash.count(factories.PASSWORD) == 0
    drv = db.session.scalar(select(User).where(User.username == "drv"))
    assert manifest.signatures[2].entered_by_user_id == drv.id


def test_a_step_without_a_signature_or_with_a_wrong_password_is_refused(world, api):
    loop = build_loop(world, api)
    number = new_manifest(api, loop, 500)["number"]
    r = api.post(f"/api/v1/manifests/{number}/submit", {}, as_="ent", sign=False)
    assert r.status_code == 422 and "signature" in r.get_json()["errors"]
    assert r.headers["Content-Type"].startswith("application/problem+json")
    r = api.post(f"/api/v1/manifests/{number}/submit", {"signature": {"password": "nope"}}, as_="ent", sign=False)
    assert r.status_code == 401 and "signature.password" in r.get_json()["errors"]
    # creating with submit: true is a submission too
    r = api.post("/api/v1/manifests", {**_body(loop), "submit": True}, as_="ent", sign=False)
    assert r.status_code == 422 and "signature" in r.get_json()["errors"]
    assert _manifest(number).status == "draft"
    r = api.post(f"/api/v1/manifests/{number}/submit", {"signature": SIGN}, as_="ent", sign=False)
    assert r.status_code == 200 and r.get_json()["signatures"][0]["signer_name"] == "ent"


def _body(loop) -> dict:
    from tests.ledger.builders import manifest_body

    return manifest_body(loop, 100)


def test_wrong_passwords_count_against_the_sign_in_throttle(app, world, api, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_FAILURES_PER_ACCOUNT", "3 per 15 minutes")
    loop = build_loop(world, api)
    number = new_manifest(api, loop, 500)["number"]
    for _ in range(3):
        r = api.post(f"/api/v1/manifests/{number}/submit", {"signature": {"password": "x"}}, as_="ent", sign=False)
        assert r.status_code == 401
    r = api.post(f"/api/v1/manifests/{number}/submit", {"signature": SIGN}, as_="ent", sign=False)
    assert r.status_code == 429  # even the right password waits now
    assert _manifest(number).status == "draft"


def test_a_device_token_cannot_sign(world, api):
    number = _submitted(world, api)
    r = api.post("/api/v1/device-tokens", {"organization_id": world.enterprise.id, "name": "gw"})
    token = r.get_json()["token"]
    r = api.client.post(
        f"/api/v1/manifests/{number}/submit", json={"signature": SIGN}, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code in (401, 403) and r.status_code != 200
    with pytest.raises(Exception) as raised:
        signatures.authenticate_signer(db.session, None, password=factories.PASSWORD)
    assert getattr(raised.value, "status", None) == 403


def test_pickup_needs_the_consignors_handover_and_refuses_another_organisations(world, api):
    number = _submitted(world, api)
    r = api.post(f"/api/v1/manifests/{number}/pickup", {**PICKUP, "signature": SIGN}, as_="drv", sign=False)
    assert r.status_code == 422 and "handover" in r.get_json()["errors"]
    # a user of another organisation (another enterprise's admin) cannot hand over this waste
    foreign = {"username": "other", "password": factories.PASSWORD}
    r = api.post(
        f"/api/v1/manifests/{number}/pickup", {**PICKUP, "signature": SIGN, "handover": foreign}, as_="drv", sign=False
    )
    assert r.status_code == 422 and "consignor" in r.get_json()["errors"]["handover"][0]
    # another organisation's user cannot sign the carrier's step either
    r = api.post(f"/api/v1/manifests/{number}/pickup", PICKUP, as_="other")
    assert r.status_code in (403, 404)
    # a consignor staff member's own password is a hand-over too
    own = {"username": "ent_staff", "password": factories.PASSWORD}
    r = api.post(
        f"/api/v1/manifests/{number}/pickup", {**PICKUP, "signature": SIGN, "handover": own}, as_="drv", sign=False
    )
    assert r.status_code == 200, r.get_json()
    assert [(s["party"], s["signer_name"], s["method"]) for s in r.get_json()["signatures"][1:]] == [
        ("carrier", "drv", "password"),
        ("consignor", "ent_staff", "password"),
    ]


def test_handover_codes_are_single_use_expire_and_are_throttled(app, world, api, monkeypatch):
    loop = build_loop(world, api)
    number = new_manifest(api, loop, 1000, submit=True)["number"]
    other = new_manifest(api, loop, 100, submit=True)["number"]

    def pickup(code: str, on: str = number):
        body = {**PICKUP, "signature": SIGN, "handover": {"one_time_code": code}}
        return api.post(f"/api/v1/manifests/{on}/pickup", body, as_="drv", sign=False)

    # only the consignor's staff issue codes, 6 digits
    assert api.post(f"/api/v1/manifests/{number}/handover-code", {}, as_="drv").status_code == 403
    first = api.post(f"/api/v1/manifests/{number}/handover-code", {}, as_="ent").get_json()["code"]
    assert len(first) == 6 and first.isdigit()
    # a newer code replaces it; a code is for its own manifest only
    second = api.handover_code(number)
    assert pickup(first).status_code == 401
    r = pickup(second, on=other)
    assert r.status_code == 401 and "handover.one_time_code" in r.get_json()["errors"]
    # expired: issued 31 minutes ago
    manifest = _manifest(number)
    ent = Principal(user=world.users["ent"])
    stale, _row = signatures.issue_handover_code(db.session, ent, manifest, now=ago(minutes=31))
    db.session.commit()
    assert pickup(stale).status_code == 401
    # used: a code signs one pickup; once used it is gone
    fresh = api.handover_code(number)
    with app.test_request_context():
        proof = signatures.authenticate_signer(db.session, world.users["svc"], one_time_code=fresh, manifest=manifest)
    assert proof.user.username == "ent" and proof.method == "one_time_code"
    db.session.commit()
    assert pickup(fresh).status_code == 401
    # attempts are throttled per manifest: after 5 failures even a right code waits
    monkeypatch.setitem(app.config, "HANDOVER_CODE_FAILURES", "5 per 30 minutes")
    right = api.handover_code(other)
    for wrong in ("000000", "111111", "222222", "333333"):  # the fifth failure on this manifest
        assert pickup(wrong, on=other).status_code == 401
    assert pickup(right, on=other).status_code == 429
    assert _manifest(other).status == "submitted"


def test_an_sql_edit_shows_on_the_verification_page_and_in_audit_verify(app, world, api, client):
    number = _submitted(world, api, 1800)
    walk_to(api, number, "closed")
    manifest = _manifest(number)
    line_id = db.session.scalar(select(ManifestLine.id).where(ManifestLine.manifest_id == manifest.id))
    page = client.get(f"/m/{number}").get_data(as_text=True)
    assert page.count('data-matches="yes"') == 5 and "内容与签名不符" not in page
    assert "ent" not in page.split("电子签名核验")[1].split("</ul>")[0]  # no names for the public
    tamper("UPDATE manifest_lines SET quantity_kg = 900 WHERE id = :id", id=line_id)
    page = client.get(f"/m/{number}").get_data(as_text=True)
    assert page.count('data-matches="no"') == 5 and "内容与签名不符" in page
    refresh()  # the test's app context outlives requests: forget the locale Flask-Babel cached there
    english = client.get(f"/m/{number}?lang=en").get_data(as_text=True)
    assert "Content differs from what was signed" in english and "内容与签名不符" not in english
    result = verify(app)
    assert result.exit_code == 1
    assert f"manifest {number}: signature" in result.output and "内容与签名不符" in result.output
    assert result.output.count("the content differs from what was signed") == 5


def test_the_pdf_prints_the_signatures(world, api):
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext is required (poppler-utils)")
    number = _submitted(world, api)
    walk_to(api, number, "in_transit")
    r = api.get(f"/api/v1/manifests/{number}.pdf", as_="ent")
    assert r.status_code == 200
    text = subprocess.run(["pdftotext", "-", "-"], input=r.data, capture_output=True, check=True).stdout.decode()
    assert "电子签名" in text and "ent（" in text and "drv（" in text
    assert "一次性交接码签名" in text
    manifest = _manifest(number)
    first = db.session.scalar(select(ManifestSignature).where(ManifestSignature.manifest_id == manifest.id))
    assert first.content_sha256[:16] in text.replace("\n", "")


def test_the_signature_check_is_fresh_within_a_step(world, api):
    """The hash covers what the step wrote: a receipt's weights are in the receive signature."""
    number = _submitted(world, api)
    walk_to(api, number, "received")
    manifest = _manifest(number)
    receive = next(s for s in manifest.signatures if s.step == "receive")
    content = signatures.signed_content(manifest, "receive")
    assert content["lines"][0]["received_kg"] == "1000.000" and content["received_at"]
    assert receive.content_sha256 == signatures.content_hash(manifest, "receive")
    assert receive.signed_at - ago(minutes=0) < timedelta(minutes=5)
