"""Revisions instead of edits, through HTTP: request, approve, refuse, cancel; versions; stock,
statistics and the audit trail follow the approved figures."""

from __future__ import annotations

from sqlalchemy import select

from app.audit.models import AuditEntry
from app.common.timeutil import local_date, utcnow
from app.extensions import db
from app.ledger.models import LedgerRecord, Manifest, Stage
from tests.audit.builders import verify
from tests.ledger.builders import build_loop, new_manifest, stock_api, walk_to


def _closed(world, api, quantity: float = 1500.0) -> tuple:
    loop = build_loop(world, api)
    manifest = new_manifest(api, loop, quantity, submit=True)
    walk_to(api, manifest["number"], "closed")
    return loop, manifest["number"]


def _revise(api, number: str, changes: dict, as_: str = "ent", reason: str = "过磅单录错"):
    return api.post(f"/api/v1/manifests/{number}/revisions", {"reason": reason, "changes": changes}, as_=as_)


def test_a_closed_manifests_weight_is_corrected_by_an_approved_revision(app, world, api):
    loop, number = _closed(world, api)
    assert stock_api(api)["on_hand_kg"] == 300.0
    r = _revise(api, number, {"lines": [{"line_no": 1, "quantity_kg": 1600.0, "received_kg": 1600.0}]})
    assert r.status_code == 201, r.get_json()
    revision = r.get_json()
    assert revision["state"] == "pending" and revision["base_version"] == 1
    assert revision["changes"]["lines"] == [
        {"line_no": 1, "quantity_kg": "1600.000", "received_kg": "1600.000", "accepted_kg": "1600.000"}
    ]
    # The consignor asked: the carrier and the receiver must approve.
    assert sorted((a["party"], a["state"]) for a in revision["approvals"]) == [
        ("carrier", "pending"),
        ("receiver", "pending"),
    ]
    # Nothing changed yet.
    assert api.get(f"/api/v1/manifests/{number}", as_="ent").get_json()["lines"][0]["quantity_kg"] == 1500.0
    r = api.post(f"/api/v1/revisions/{revision['id']}/approve", {}, as_="drv")
    assert r.status_code == 200 and r.get_json()["state"] == "pending"
    r = api.post(f"/api/v1/revisions/{revision['id']}/approve", {"note": "核对无误"}, as_="svc")
    assert r.status_code == 200, r.get_json()
    done = r.get_json()
    assert done["state"] == "approved" and done["version"] == 2
    assert done["before"]["lines"][0]["quantity_kg"] == "1500.000"
    assert done["after"]["lines"][0]["quantity_kg"] == "1600.000"
    m = api.get(f"/api/v1/manifests/{number}", as_="ent").get_json()
    assert m["version"] == 2
    assert m["lines"][0]["quantity_kg"] == 1600.0 and m["lines"][0]["accepted_kg"] == 1600.0
    assert m["events"][-1]["action"] == "revise" and m["events"][-1]["detail"]["version"] == 2
    # Stock follows: 1800 generated, 1600 shipped.
    item = stock_api(api)
    assert item["on_hand_kg"] == 200.0 and item["available_kg"] == 200.0
    # The ledger's out-of-storage and sent-out records follow; the batch balance too.
    db.session.rollback()
    records = db.session.scalars(select(LedgerRecord).where(LedgerRecord.manifest_number == number)).all()
    assert {(r.stage, r.quantity_kg) for r in records} == {(Stage.OUT_OF_STORAGE, 1600), (Stage.SENT_OUT, 1600)}
    batch = db.session.scalar(select(LedgerRecord).where(LedgerRecord.batch_code == loop.batch_code))
    assert batch.on_site_kg == 200 and batch.available_kg == 200
    # The old version stays readable.
    versions = api.get(f"/api/v1/manifests/{number}/versions", as_="ent").get_json()["items"]
    assert [(v["version"], v["current"]) for v in versions] == [(1, False), (2, True)]
    old = api.get(f"/api/v1/manifests/{number}/versions/1", as_="reg_tt").get_json()
    assert old["content"]["lines"][0]["quantity_kg"] == "1500.000"
    assert api.get(f"/api/v1/manifests/{number}/versions/3", as_="ent").status_code == 404
    # The signatures of version 1 are superseded by the approved correction, not broken.
    page = api.client.get(f"/m/{number}").get_data(as_text=True)
    assert "data-superseded" in page and "内容与签名不符" not in page
    assert verify(app).exit_code == 0


def test_statistics_follow_the_approved_figures(app, world, api):
    _loop, number = _closed(world, api)

    def figures() -> dict:
        r = api.get(f"/api/v1/metrics?period={local_date(utcnow()).year}", as_="reg_city")
        assert r.status_code == 200, r.get_json()
        return r.get_json()

    before = figures()
    assert (before["received_kg"], before["accepted_kg"], before["shipped_kg"]) == (1500.0, 1500.0, 1500.0)
    changes = {"lines": [{"line_no": 1, "quantity_kg": 1450.0, "received_kg": 1400.0, "accepted_kg": 1400.0}]}
    r = _revise(api, number, changes, as_="svc")
    assert r.status_code == 201, r.get_json()
    rid = r.get_json()["id"]
    for who in ("ent", "drv"):
        assert api.post(f"/api/v1/revisions/{rid}/approve", {}, as_=who).status_code == 200
    after = figures()
    assert (after["received_kg"], after["accepted_kg"], after["shipped_kg"]) == (1400.0, 1400.0, 1450.0)
    assert after["generated_kg"] == before["generated_kg"] == 1800.0


def test_a_partial_acceptance_corrected_returns_the_refused_part_to_stock(app, world, api):
    _loop, number = _closed(world, api, 1800.0)
    assert stock_api(api)["on_hand_kg"] == 0.0
    r = _revise(
        api,
        number,
        {"lines": [{"line_no": 1, "accepted_kg": 1500.0, "refusal_reason": "含水过高"}]},
        as_="svc",
    )
    assert r.status_code == 201, r.get_json()
    rid = r.get_json()["id"]
    for who in ("ent", "drv"):
        assert api.post(f"/api/v1/revisions/{rid}/approve", {}, as_=who).status_code == 200
    assert stock_api(api)["on_hand_kg"] == 300.0
    m = api.get(f"/api/v1/manifests/{number}", as_="ent").get_json()
    assert m["acceptance"] == "partial" and m["lines"][0]["sources"][0]["returned_kg"] == 300.0
    db.session.rollback()
    returned = db.session.scalars(
        select(LedgerRecord).where(LedgerRecord.manifest_number == number, LedgerRecord.stage == Stage.RETURNED)
    ).all()
    assert [r.quantity_kg for r in returned] == [300]
    assert verify(app).exit_code == 0


def test_a_refusal_changes_nothing_and_needs_a_note(app, world, api):
    _loop, number = _closed(world, api)
    rid = _revise(api, number, {"route": "经 G15 沈海高速"}).get_json()["id"]
    r = api.post(f"/api/v1/revisions/{rid}/refuse", {}, as_="svc")
    assert r.status_code == 422 and r.content_type.startswith("application/problem+json")
    assert "note" in r.get_json()["errors"]
    r = api.post(f"/api/v1/revisions/{rid}/refuse", {"note": "路线无误"}, as_="svc")
    assert r.status_code == 200 and r.get_json()["state"] == "refused"
    assert api.post(f"/api/v1/revisions/{rid}/approve", {}, as_="drv").status_code == 409
    m = api.get(f"/api/v1/manifests/{number}", as_="ent").get_json()
    assert m["route"] == "" and m["version"] == 1


def test_only_the_requester_cancels_and_only_while_pending(app, world, api):
    _loop, number = _closed(world, api)
    rid = _revise(api, number, {"note": "更正备注"}).get_json()["id"]
    # A second request while one is pending is a conflict.
    assert _revise(api, number, {"note": "再次更正"}, as_="svc").status_code == 409
    assert api.post(f"/api/v1/revisions/{rid}/cancel", {}, as_="svc").status_code == 403
    r = api.post(f"/api/v1/revisions/{rid}/cancel", {}, as_="ent")
    assert r.status_code == 200 and r.get_json()["state"] == "cancelled"
    assert api.post(f"/api/v1/revisions/{rid}/cancel", {}, as_="ent").status_code == 409
    assert _revise(api, number, {"note": "再次更正"}, as_="svc").status_code == 201


def test_bad_requests_are_problem_documents(app, world, api):
    loop, number = _closed(world, api)
    cases = [
        ({"reason": "", "changes": {"note": "x"}}, 422, "reason"),
        ({"changes": {"note": "x"}}, 422, "reason"),
        ({"reason": "r", "changes": {}}, 422, "changes"),
        ({"reason": "r", "changes": {"note": ""}}, 422, "changes"),  # nothing would change
        ({"reason": "r", "changes": {"lines": [{"line_no": 9, "quantity_kg": 1}]}}, 422, "lines.0.line_no"),
        ({"reason": "r", "changes": {"lines": [{"line_no": 1, "quantity_kg": -5}]}}, 422, "changes"),
        ({"reason": "r", "changes": {"lines": [{"line_no": 1, "quantity_kg": 1e12}]}}, 422, "changes"),
        ({"reason": "r", "changes": {"lines": [{"line_no": 1, "accepted_kg": 1600}]}}, 422, "lines.0.accepted_kg"),
        (
            {"reason": "r", "changes": {"lines": [{"line_no": 1, "accepted_kg": 1000}]}},
            422,
            "lines.0.refusal_reason",
        ),
        ({"reason": "r", "changes": {"receiver_id": world.enterprise.id}}, 422, "receiver_id"),
        ({"reason": "r", "changes": {"carrier_id": world.service.id}}, 422, "carrier_id"),
        ({"reason": "r", "changes": {"lines": [{"line_no": 1, "quantity_kg": 5000}]}}, 409, "lines.0.quantity_kg"),
        ({"reason": "r", "changes": {"surprise": 1}}, 422, "changes"),
    ]
    for body, status, field in cases:
        r = api.post(f"/api/v1/manifests/{number}/revisions", body, as_="ent")
        assert r.status_code == status, (body, r.get_json())
        assert r.content_type.startswith("application/problem+json")
        errors = r.get_json().get("errors") or {}
        assert any(k == field or k.startswith(field) for k in _flat(errors)), (body, errors)
    # Not a party: regulators and other enterprises cannot request.
    assert _revise(api, number, {"note": "x"}, as_="reg_tt").status_code == 403
    assert _revise(api, number, {"note": "x"}, as_="other").status_code == 404
    # A draft is not revised (it is cancelled and redone).
    draft = new_manifest(api, loop, 100.0)
    assert _revise(api, draft["number"], {"note": "x"}).status_code == 409


def _flat(errors: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in errors.items():
        name = f"{prefix}{key}"
        out.append(name)
        if isinstance(value, dict):
            out += _flat(value, f"{name}.")
    return out


def test_direct_edits_stay_impossible_through_the_api(app, world, api):
    _loop, number = _closed(world, api)
    for method in ("put", "patch"):
        r = getattr(api.client, method)(
            f"/api/v1/manifests/{number}",
            json={"route": "x"},
            headers={"Authorization": f"Bearer {api.token('ent')}"},
        )
        assert r.status_code == 405
    r = api.client.patch("/api/v1/ledger", json={}, headers={"Authorization": f"Bearer {api.token('ent')}"})
    assert r.status_code == 405


def test_a_submitted_manifest_revised_moves_its_reservation(app, world, api):
    loop = build_loop(world, api)
    number = new_manifest(api, loop, 1000.0, submit=True)["number"]
    assert stock_api(api)["reserved_kg"] == 1000.0
    rid = _revise(api, number, {"lines": [{"line_no": 1, "quantity_kg": 1200.0, "packaging": "铁桶"}]}).get_json()["id"]
    for who in ("drv", "svc"):
        assert api.post(f"/api/v1/revisions/{rid}/approve", {}, as_=who).status_code == 200
    item = stock_api(api)
    assert item["reserved_kg"] == 1200.0 and item["on_hand_kg"] == 1800.0
    m = walk_to(api, number, "closed")
    assert m["lines"][0]["packaging"] == "铁桶" and m["lines"][0]["quantity_kg"] == 1200.0
    assert stock_api(api)["on_hand_kg"] == 600.0


def test_an_approval_that_stock_no_longer_covers_is_a_conflict(app, world, api):
    loop = build_loop(world, api)
    number = new_manifest(api, loop, 1000.0, submit=True)["number"]
    rid = _revise(api, number, {"lines": [{"line_no": 1, "quantity_kg": 1700.0}]}).get_json()["id"]
    new_manifest(api, loop, 500.0, submit=True)  # the other 500 kg are reserved meanwhile
    assert api.post(f"/api/v1/revisions/{rid}/approve", {}, as_="drv").status_code == 200
    r = api.post(f"/api/v1/revisions/{rid}/approve", {}, as_="svc")
    assert r.status_code == 409 and r.content_type.startswith("application/problem+json")
    assert stock_api(api)["reserved_kg"] == 1500.0
    assert api.get(f"/api/v1/revisions/{rid}", as_="ent").get_json()["state"] == "pending"


def test_a_new_carrier_named_by_a_revision_approves_it_too(app, world, api):
    from tests import factories

    _loop, number = _closed(world, api)
    other = factories.org(
        "椒江危险品运输有限公司",
        ["carrier"],
        licences=[{"number": "浙交运管许可台字331000000002号", "kind": "transport", "waste_codes": []}],
    )
    factories.user(other, "drv2")
    db.session.commit()
    revision = _revise(api, number, {"carrier_id": other.id}).get_json()
    assert sorted(a["party"] for a in revision["approvals"]) == ["carrier", "carrier", "receiver"]
    for who in ("drv", "svc"):
        assert api.post(f"/api/v1/revisions/{revision['id']}/approve", {}, as_=who).status_code == 200
    assert api.get(f"/api/v1/revisions/{revision['id']}", as_="ent").get_json()["state"] == "pending"
    assert api.post(f"/api/v1/revisions/{revision['id']}/approve", {}, as_="drv2").status_code == 200
    assert api.get(f"/api/v1/manifests/{number}", as_="ent").get_json()["carrier"]["id"] == other.id


def test_who_sees_which_revisions(app, world, api):
    _loop, number = _closed(world, api)
    pending = _revise(api, number, {"note": "一"}).get_json()["id"]
    api.post(f"/api/v1/revisions/{pending}/cancel", {}, as_="ent")
    second = _revise(api, number, {"note": "二"}).get_json()["id"]

    def ids(as_: str, query: str = "") -> list[int]:
        r = api.get(f"/api/v1/revisions{query}", as_=as_)
        assert r.status_code == 200, r.get_json()
        return [item["id"] for item in r.get_json()["items"]]

    assert ids("ent") == [second, pending]
    assert ids("drv") == [second, pending]
    assert ids("reg_tt") == [second]  # regulators: pending and approved in their jurisdiction
    assert ids("reg_tt", "?state=pending") == [second]
    assert ids("reg_tt", "?state=cancelled") == []
    assert ids("other") == []
    assert api.get(f"/api/v1/revisions/{second}", as_="other").status_code == 404
    assert api.get("/api/v1/revisions?state=nonsense", as_="ent").status_code == 422
    # A regulator is not a party of the manifest: it cannot decide.
    assert api.post(f"/api/v1/revisions/{second}/approve", {}, as_="reg_tt").status_code == 403


def test_a_ledger_record_is_corrected_with_the_regulators_approval(app, world, api):
    r = api.post("/api/v1/ledger", {"waste_code": "900-041-49", "quantity_kg": 500.0}, as_="ent")
    assert r.status_code == 201, r.get_json()
    record = r.get_json()
    assert record["version"] == 1
    rid_url = f"/api/v1/ledger/{record['id']}/revisions"
    assert api.post(rid_url, {"reason": "x", "changes": {"quantity_kg": 600.0}}, as_="reg_tt").status_code == 403
    r = api.post(rid_url, {"reason": "称重有误", "changes": {"quantity_kg": 450.0, "note": "复称"}}, as_="ent")
    assert r.status_code == 201, r.get_json()
    revision = r.get_json()
    assert [(a["party"], a["organization_id"]) for a in revision["approvals"]] == [
        ("regulator", world.regulator_tiantai.id)
    ]
    assert api.post(f"/api/v1/revisions/{revision['id']}/approve", {}, as_="ent").status_code == 403
    assert revision["id"] in [
        i["id"] for i in api.get("/api/v1/revisions?state=pending", as_="reg_tt").get_json()["items"]
    ]
    r = api.post(f"/api/v1/revisions/{revision['id']}/approve", {}, as_="reg_tt")
    assert r.status_code == 200 and r.get_json()["state"] == "approved", r.get_json()
    assert stock_api(api, code="900-041-49")["on_hand_kg"] == 450.0
    versions = api.get(f"/api/v1/ledger/{record['id']}/versions", as_="reg_tt").get_json()["items"]
    assert [(v["version"], v["content"]["quantity_kg"]) for v in versions] == [(1, "500.000"), (2, "450.000")]
    ledger = api.get("/api/v1/ledger?waste_code=900-041-49", as_="ent").get_json()["items"]
    assert {(i["stage"], i["quantity_kg"]) for i in ledger} == {("generation", 450.0), ("storage", 450.0)}
    assert verify(app).exit_code == 0


def test_a_ledger_record_cannot_drop_below_what_is_on_manifests(app, world, api):
    loop = build_loop(world, api)
    new_manifest(api, loop, 1000.0, submit=True)
    db.session.rollback()
    batch = db.session.scalar(select(LedgerRecord).where(LedgerRecord.batch_code == loop.batch_code))
    url = f"/api/v1/ledger/{batch.id}/revisions"
    r = api.post(url, {"reason": "r", "changes": {"quantity_kg": 900.0}}, as_="ent")
    assert r.status_code == 422 and "quantity_kg" in r.get_json()["errors"]
    out = db.session.scalar(select(LedgerRecord).where(LedgerRecord.stage == Stage.STORAGE))
    r = api.post(f"/api/v1/ledger/{out.id}/revisions", {"reason": "r", "changes": {"note": "x"}}, as_="ent")
    assert r.status_code == 409  # a later stage follows its manifest


def test_the_audit_trail_shows_the_revision_and_its_approvals(app, world, api):
    _loop, number = _closed(world, api)
    rid = _revise(api, number, {"route": "G15"}).get_json()["id"]
    for who in ("drv", "svc"):
        api.post(f"/api/v1/revisions/{rid}/approve", {}, as_=who)
    db.session.rollback()
    m = db.session.scalar(select(Manifest).where(Manifest.number == number))
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.subject == f"manifests:[{m.id}]")).all()
    tables = {e.table_name for e in entries}
    assert {"revisions", "revision_approvals"} <= tables
    approved = [e for e in entries if e.table_name == "revisions" and e.after and '"approved"' in e.after]
    assert approved and approved[-1].actor == "svc"
    r = api.get(f"/api/v1/audit?manifest={number}", as_="reg_tt")
    assert r.status_code == 200, r.get_json()
    assert "revisions" in {item["table"] for item in r.get_json()["items"]}
