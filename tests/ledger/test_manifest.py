"""Transfer manifests (联单) through the HTTP API: the loop, parties and states, bad input, flags."""

from __future__ import annotations

import io
import re
from datetime import timedelta

from pypdf import PdfReader
from sqlalchemy import select

from app.accounts.models import User
from app.accounts.services import Principal
from app.common.timeutil import local_date
from app.extensions import db
from app.ledger import services
from app.ledger.models import LedgerRecord, Manifest
from tests import factories
from tests.ledger.builders import (
    HW49_LICENCE,
    ago,
    build_loop,
    iso,
    ledger_count,
    manifest_body,
    manifest_status,
    new_manifest,
    stock_api,
    stock_row,
    walk_to,
)


def test_whole_manifest_loop(api, world):
    loop = build_loop(world, api, removed_kg=1800)
    draft = new_manifest(api, loop, 1750, line={"source_batches": [loop.batch_code]})
    number = draft["number"]
    assert re.fullmatch(r"20\d{2}3310\d{6}", number), number
    assert draft["status"] == "draft" and draft["lines"][0]["hazard"] == "T"
    assert draft["lines"][0]["waste_name"].startswith("烟气、VOCs治理过程")
    assert draft["receiver_licence"] == HW49_LICENCE["number"]
    assert stock_api(api)["reserved_kg"] == 0  # a draft reserves nothing

    r = api.post(f"/api/v1/manifests/{number}/submit", {}, as_="ent_staff")
    assert r.status_code == 200, r.get_json()
    submitted = r.get_json()
    assert submitted["status"] == "submitted"
    assert submitted["lines"][0]["sources"] == [{"batch_code": loop.batch_code, "quantity_kg": 1750, "returned_kg": 0}]
    item = stock_api(api)
    assert (item["on_hand_kg"], item["reserved_kg"], item["available_kg"]) == (1800, 1750, 50)

    r = api.post(
        f"/api/v1/manifests/{number}/pickup",
        {"vehicle_plate": "浙J12345", "driver_name": "王师傅", "driver_phone": "13800000000"},
        as_="drv",
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "in_transit" and r.get_json()["receipt_due_at"]
    item = stock_api(api)
    assert (item["on_hand_kg"], item["reserved_kg"], item["available_kg"]) == (50, 0, 50)

    r = api.post(f"/api/v1/manifests/{number}/receive", {"lines": [{"line_no": 1, "received_kg": 1740}]}, as_="svc")
    assert r.status_code == 200, r.get_json()
    received = r.get_json()
    assert received["status"] == "received" and received["acceptance"] == "full"
    assert received["discrepant"] is False and received["overdue"] is False  # 0.6 % is inside the 5 % tolerance

    r = api.post(f"/api/v1/manifests/{number}/process", {"lines": [{"line_no": 1, "method_code": "R7"}]}, as_="svc")
    assert r.status_code == 200, r.get_json()
    closed = r.get_json()
    assert closed["status"] == "closed" and closed["lines"][0]["method_code"] == "R7"
    assert closed["processed_at"] and closed["closed_at"]
    history = [(e["action"], e["to_status"], e["party"], e["actor"]) for e in closed["events"]]
    assert history == [
        ("create", "draft", "consignor", "ent"),
        ("submit", "submitted", "consignor", "ent_staff"),
        ("pickup", "in_transit", "carrier", "drv"),
        ("receive", "received", "receiver", "svc"),
        ("process", "processed", "receiver", "svc"),
        ("close", "closed", "", "system"),
    ]
    assert closed["events"][2]["organization_name"] == "台州危运物流有限公司"

    # The consignor's ledger: generation, storage, out of storage, sent out (with receiver, licence, method).
    records = api.get(f"/api/v1/ledger?enterprise={world.enterprise.id}", as_="ent").get_json()["items"]
    assert [x["stage"] for x in records] == ["generation", "storage", "out_of_storage", "sent_out"]
    sent = records[3]
    assert sent["source_batch_code"] == loop.batch_code and sent["manifest_number"] == number
    assert sent["receiver_name"] == world.service.name and sent["licence_number"] == HW49_LICENCE["number"]
    assert sent["method_code"] == "R7" and sent["quantity_kg"] == 1750
    assert records[0]["on_site_kg"] == 50 and records[0]["available_kg"] == 50
    # Everyone involved and the regulator read the same history; others do not see it.
    for who in ("ent", "drv", "svc", "reg_tt", "reg_city", "park"):
        assert api.get(f"/api/v1/manifests/{number}", as_=who).status_code == 200, who
    assert api.get(f"/api/v1/manifests/{number}", as_="other").status_code == 404
    assert api.get("/api/v1/manifests", as_="other").get_json()["total"] == 0
    assert api.get("/api/v1/manifests?party=carrier", as_="drv").get_json()["total"] == 1


def test_wrong_party_and_wrong_state_change_nothing(api, world):
    loop = build_loop(world, api)
    number = new_manifest(api, loop, 1000)["number"]
    before = (stock_row(world.enterprise.id), ledger_count())
    pickup = {"vehicle_plate": "浙J12345", "driver_name": "王师傅"}
    # Wrong state (draft): the carrier cannot pick up yet, the receiver cannot receive.
    r = api.post(f"/api/v1/manifests/{number}/pickup", pickup, as_="drv")
    assert r.status_code == 409 and "draft" in r.get_json()["detail"]
    # Wrong party: the carrier cannot submit, the receiver cannot cancel, a regulator cannot act.
    r = api.post(f"/api/v1/manifests/{number}/submit", {}, as_="drv")
    assert r.status_code == 403 and "consignor" in r.get_json()["detail"]
    assert api.post(f"/api/v1/manifests/{number}/cancel", {}, as_="svc").status_code == 403
    assert api.post(f"/api/v1/manifests/{number}/submit", {}, as_="reg_tt").status_code == 403
    assert api.post(f"/api/v1/manifests/{number}/submit", {}, as_="other").status_code == 404
    assert (stock_row(world.enterprise.id), ledger_count()) == before and manifest_status(number) == "draft"

    assert api.post(f"/api/v1/manifests/{number}/submit", {}, as_="ent").status_code == 200
    assert api.post(f"/api/v1/manifests/{number}/submit", {}, as_="ent").status_code == 409
    r = api.post(f"/api/v1/manifests/{number}/pickup", pickup, as_="ent")
    assert r.status_code == 403 and "carrier" in r.get_json()["detail"]
    r = api.post(f"/api/v1/manifests/{number}/receive", {"lines": [{"line_no": 1, "received_kg": 1000}]}, as_="svc")
    assert r.status_code == 409
    r = api.post(f"/api/v1/manifests/{number}/process", {"lines": [{"line_no": 1, "method_code": "R7"}]}, as_="svc")
    assert r.status_code == 409
    assert stock_row(world.enterprise.id) == (1800, 1000) and manifest_status(number) == "submitted"

    walk_to(api, number, "in_transit")
    r = api.post(f"/api/v1/manifests/{number}/cancel", {}, as_="ent")
    assert r.status_code == 409 and "before pickup" in r.get_json()["detail"]
    r = api.post(f"/api/v1/manifests/{number}/receive", {"lines": [{"line_no": 1, "received_kg": 1000}]}, as_="drv")
    assert r.status_code == 403 and "receiver" in r.get_json()["detail"]
    assert manifest_status(number) == "in_transit" and stock_row(world.enterprise.id) == (800, 0)


def test_bad_input_is_refused_with_the_field_named(api, world):
    loop = build_loop(world, api)
    stranger = factories.org("无证处置公司", ["receiver"])
    other_category = factories.org(
        "废矿物油处置公司",
        ["receiver"],
        licences=[
            {
                "number": "浙危废经第331000099号",
                "kind": "hw_operation",
                "waste_codes": ["HW08"],
                "valid_until": "2030-12-31",
            }
        ],
    )
    unlicensed_carrier = factories.org("无证运输公司", ["carrier"])
    expired_permit = factories.org(
        "过期运输公司",
        ["carrier"],
        licences=[
            {
                "number": "浙交运管许可台字331000000009号",
                "kind": "transport",
                "waste_codes": [],
                "valid_until": "2020-01-01",
            }
        ],
    )
    expired = factories.org(
        "过期许可公司",
        ["regenerator"],
        licences=[
            {"number": "浙危废经第331000098号", "kind": "hw_operation", "waste_codes": [], "valid_until": "2020-12-31"}
        ],
    )
    db.session.commit()
    before = (
        stock_row(world.enterprise.id),
        ledger_count(),
        api.get("/api/v1/manifests", as_="ent").get_json()["total"],
    )
    cases = [
        (manifest_body(loop, line={"waste_code": "900-000-49"}), "lines.0.waste_code"),
        (manifest_body(loop, 0), "lines"),
        (manifest_body(loop, -3), "lines"),
        (manifest_body(loop, 5000), "lines.0.quantity_kg"),  # more than in stock
        (manifest_body(loop, line={"source_batches": ["CS2025010100000999"]}), "lines.0.source_batches"),
        ({**manifest_body(loop), "carrier_id": world.service.id}, "carrier_id"),  # no carrier role
        ({**manifest_body(loop), "carrier_id": unlicensed_carrier.id}, "carrier_id"),  # no transport permit
        ({**manifest_body(loop), "carrier_id": expired_permit.id}, "carrier_id"),  # permit expired
        ({**manifest_body(loop), "receiver_id": loop.carrier.id}, "receiver_id"),  # no receiver role
        ({**manifest_body(loop), "receiver_id": stranger.id}, "receiver_id"),  # no licence
        ({**manifest_body(loop), "receiver_id": other_category.id}, "receiver_id"),  # HW08 only
        ({**manifest_body(loop), "receiver_id": expired.id}, "receiver_id"),  # expired
        ({**manifest_body(loop), "origin": "national", "number": "2025331000012"}, "number"),  # 13 digits
        ({**manifest_body(loop), "origin": "national", "number": "20259910000012"}, "number"),  # province 99
        ({**manifest_body(loop), "origin": "paper"}, "transferred_at"),
    ]
    for body, field in cases:
        r = api.post("/api/v1/manifests", body, as_="ent")
        assert r.status_code == 422, (field, r.get_json())
        errors = r.get_json()["errors"]
        assert any(key == field or key.startswith(field + ".") or key.startswith(field) for key in errors), (
            field,
            errors,
        )
    licence_error = api.post(
        "/api/v1/manifests", {**manifest_body(loop), "receiver_id": other_category.id}, as_="ent"
    ).get_json()["errors"]["receiver_id"][0]
    assert "900-039-49" in licence_error and "HW49" in licence_error
    assert (
        stock_row(world.enterprise.id),
        ledger_count(),
        api.get("/api/v1/manifests", as_="ent").get_json()["total"],
    ) == before

    number = new_manifest(api, loop, 1000, submit=True)["number"]
    walk_to(api, number, "in_transit")
    before = (stock_row(world.enterprise.id), ledger_count())
    for body, field in [
        ({"lines": [{"line_no": 2, "received_kg": 1000}]}, "lines.0.line_no"),
        ({"lines": [{"line_no": 1, "received_kg": -1}]}, "lines"),
        ({"lines": [{"line_no": 1, "received_kg": 1000, "accepted_kg": 1200}]}, "lines.0.accepted_kg"),
        ({"lines": [{"line_no": 1, "received_kg": 1000, "accepted_kg": 600}]}, "lines.0.refusal_reason"),
        ({"lines": [{"line_no": 1, "received_kg": 1000}], "received_at": iso(ago(days=30))}, "received_at"),
    ]:
        r = api.post(f"/api/v1/manifests/{number}/receive", body, as_="svc")
        assert r.status_code == 422, (field, r.get_json())
        assert any(k.startswith(field) for k in r.get_json()["errors"]), (field, r.get_json())
    assert api.post(f"/api/v1/manifests/{number}/reject", {"reason": ""}, as_="svc").status_code == 422
    assert manifest_status(number) == "in_transit" and (stock_row(world.enterprise.id), ledger_count()) == before
    walk_to(api, number, "received")
    r = api.post(f"/api/v1/manifests/{number}/process", {"lines": [{"line_no": 1, "method_code": "X9"}]}, as_="svc")
    assert r.status_code == 422 and "lines.0.method_code" in r.get_json()["errors"]
    # A line named twice is refused, as in a receipt (the second would have overwritten the first).
    twice = {"lines": [{"line_no": 1, "method_code": "R7"}, {"line_no": 1, "method_code": "R7"}]}
    r = api.post(f"/api/v1/manifests/{number}/process", twice, as_="svc")
    assert r.status_code == 422 and r.get_json()["errors"]["lines.1.line_no"] == ["line 1 is given twice"]
    assert manifest_status(number) == "received"


def test_stock_limits_and_cancel(api, world):
    loop = build_loop(world, api, removed_kg=1000)
    first = new_manifest(api, loop, 700)["number"]
    second = new_manifest(api, loop, 600)["number"]  # each fits on its own
    assert api.post(f"/api/v1/manifests/{first}/submit", {}, as_="ent").status_code == 200
    r = api.post(f"/api/v1/manifests/{second}/submit", {}, as_="ent")
    assert r.status_code == 409 and "lines.0.quantity_kg" in r.get_json()["errors"]
    assert manifest_status(second) == "draft" and stock_row(world.enterprise.id) == (1000, 700)
    # Cancel before pickup releases the reservation; then the second fits.
    r = api.post(f"/api/v1/manifests/{first}/cancel", {"reason": "改期"}, as_="ent")
    assert r.status_code == 200 and r.get_json()["status"] == "cancelled"
    assert stock_row(world.enterprise.id) == (1000, 0)
    assert api.post(f"/api/v1/manifests/{second}/submit", {}, as_="ent").status_code == 200
    assert api.post(f"/api/v1/manifests/{first}/submit", {}, as_="ent").status_code == 409
    item = stock_api(api)
    assert (item["on_hand_kg"], item["reserved_kg"], item["available_kg"]) == (1000, 600, 400)


def test_refusal_returns_waste_to_stock(api, world):
    loop = build_loop(world, api, removed_kg=1800)
    number = new_manifest(api, loop, 1800, submit=True)["number"]
    walk_to(api, number, "in_transit")
    assert stock_row(world.enterprise.id) == (0, 0)
    r = api.post(f"/api/v1/manifests/{number}/reject", {"reason": "包装破损，标签不符"}, as_="svc")
    assert r.status_code == 200, r.get_json()
    rejected = r.get_json()
    assert rejected["status"] == "rejected" and rejected["acceptance"] == "refused"
    assert rejected["reject_reason"] == "包装破损，标签不符"
    assert stock_row(world.enterprise.id) == (1800, 0)
    records = api.get("/api/v1/ledger?stage=returned", as_="ent").get_json()["items"]
    assert (
        len(records) == 1 and records[0]["quantity_kg"] == 1800 and records[0]["source_batch_code"] == loop.batch_code
    )
    # The returned waste can be shipped again, on a new manifest.
    again = new_manifest(api, loop, 1800, submit=True)
    assert again["lines"][0]["sources"][0]["batch_code"] == loop.batch_code
    assert api.get("/api/v1/manifests?flag=rejected", as_="reg_tt").get_json()["total"] == 1


def test_partial_acceptance_and_discrepancy(api, world):
    loop = build_loop(world, api, removed_kg=2000)
    far = factories.org("温岭市生态环境局", ["regulator"], county="331081")
    factories.user(far, "reg_wl")
    db.session.commit()
    number = new_manifest(api, loop, 2000, submit=True)["number"]
    walk_to(api, number, "in_transit")
    r = api.post(
        f"/api/v1/manifests/{number}/receive",
        {"lines": [{"line_no": 1, "received_kg": 1850, "accepted_kg": 1600, "refusal_reason": "含水率过高"}]},
        as_="svc",
    )
    assert r.status_code == 200, r.get_json()
    received = r.get_json()
    assert received["acceptance"] == "partial" and received["discrepant"] is True  # 7.5 % off the 2000 kg shipped
    assert received["lines"][0]["accepted_kg"] == 1600 and received["lines"][0]["sources"][0]["returned_kg"] == 250
    assert stock_row(world.enterprise.id) == (250, 0)  # the refused 250 kg came back; 150 kg are unaccounted
    listed = api.get("/api/v1/manifests?flag=discrepant", as_="reg_tt").get_json()
    assert [m["number"] for m in listed["items"]] == [number]
    assert api.get("/api/v1/manifests?flag=discrepant", as_="reg_wl").get_json()["total"] == 0
    assert api.get("/api/v1/manifests?flag=overdue", as_="reg_tt").get_json()["total"] == 0
    # Within tolerance: 1950 of 2000 (2.5 %) is not discrepant.
    assert api.post("/api/v1/ledger", {"waste_code": "900-039-49", "quantity_kg": 2000}, as_="ent").status_code == 201
    other = new_manifest(api, loop, 2000, submit=True)["number"]
    walk_to(api, other, "in_transit")
    r = api.post(f"/api/v1/manifests/{other}/receive", {"lines": [{"line_no": 1, "received_kg": 1950}]}, as_="svc")
    assert r.get_json()["discrepant"] is False


def test_overdue_receipt_counts_working_days(api, world):
    loop = build_loop(world, api, removed_kg=1800, replaced_at=ago(days=40))
    number = new_manifest(api, loop, 900)["number"]
    # Submitted and picked up 20 days ago (the services take the time; the API always uses now).
    # 20 calendar days hold at least 5 working days even across the Spring Festival.
    manifest = db.session.scalar(select(Manifest).where(Manifest.number == number))
    services.submit(
        db.session,
        Principal(user=world.users["ent"]),
        manifest,
        now=ago(days=21),
        signature=factories.signed(world.users["ent"]),
    )
    carrier_user = db.session.scalar(select(User).where(User.username == "drv"))
    services.pickup(
        db.session,
        Principal(user=carrier_user),
        manifest,
        {"vehicle_plate": "浙JD12345", "driver_name": "李师傅"},
        now=ago(days=20),
        signature=factories.signed(carrier_user),
        handover=factories.handed_over(manifest),
    )
    db.session.commit()
    r = api.get(f"/api/v1/manifests/{number}", as_="drv")
    # Still on the road after 20 calendar days: overdue for the regulator already.
    assert r.get_json()["status"] == "in_transit" and r.get_json()["overdue"] is True
    listed = api.get("/api/v1/manifests?flag=overdue", as_="reg_city").get_json()
    assert [m["number"] for m in listed["items"]] == [number]
    r = api.post(f"/api/v1/manifests/{number}/receive", {"lines": [{"line_no": 1, "received_kg": 900}]}, as_="svc")
    assert r.get_json()["overdue"] is True and r.get_json()["events"][-1]["detail"]["overdue"] is True
    # A prompt receipt is not overdue.
    prompt = new_manifest(api, loop, 900, submit=True)["number"]
    walk_to(api, prompt, "received")
    assert api.get(f"/api/v1/manifests/{prompt}", as_="ent").get_json()["overdue"] is False
    assert api.get("/api/v1/manifests?flag=overdue", as_="reg_tt").get_json()["total"] == 1


def test_numbers_paper_and_national_manifests(api, world):
    loop = build_loop(world, api, removed_kg=3000, replaced_at=ago(days=60))
    year = str(local_date(ago(days=0)).year)  # numbers carry the local (Shanghai) year
    numbers = [new_manifest(api, loop, 100)["number"] for _ in range(3)]
    serials = [int(n[8:]) for n in numbers]
    assert all(n.startswith(year + "3310") for n in numbers) and serials == [serials[0], serials[0] + 1, serials[0] + 2]
    # A manifest issued by the national system keeps its number; ours continue after it.
    national = f"{year}3310{serials[-1] + 50:06d}"
    r = api.post("/api/v1/manifests", {**manifest_body(loop, 100), "origin": "national", "number": national}, as_="ent")
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["number"] == national and r.get_json()["status"] == "draft"
    assert new_manifest(api, loop, 100)["number"] == f"{year}3310{serials[-1] + 51:06d}"
    r = api.post("/api/v1/manifests", {**manifest_body(loop, 100), "origin": "national", "number": national}, as_="ent")
    assert r.status_code == 409
    # A national number from another prefecture is not this consignor's.
    r = api.post(
        "/api/v1/manifests",
        {**manifest_body(loop, 100), "origin": "national", "number": f"{year}3301000001"},
        as_="ent",
    )
    assert r.status_code == 422 and "number" in r.get_json()["errors"]
    # Paper manifests entered afterwards ship at once; late when > 10 working days after the transfer.
    paper = {**manifest_body(loop, 500), "origin": "paper", "vehicle_plate": "浙J54321", "driver_name": "赵师傅"}
    late = api.post("/api/v1/manifests", {**paper, "transferred_at": iso(ago(days=30))}, as_="ent").get_json()
    assert late["status"] == "in_transit" and late["late_entry"] is True and late["entry_working_days"] > 10
    on_time = api.post("/api/v1/manifests", {**paper, "transferred_at": iso(ago(days=1))}, as_="ent").get_json()
    assert on_time["status"] == "in_transit" and on_time["late_entry"] is False
    assert stock_row(world.enterprise.id) == (2000, 0)
    assert [m["number"] for m in api.get("/api/v1/manifests?flag=late", as_="reg_tt").get_json()["items"]] == [
        late["number"]
    ]
    r = api.post(
        f"/api/v1/manifests/{late['number']}/receive", {"lines": [{"line_no": 1, "received_kg": 500}]}, as_="svc"
    )
    assert r.status_code == 200 and r.get_json()["overdue"] is True


def test_pdf_and_verification_page(api, world, client):
    loop = build_loop(world, api)
    number = new_manifest(api, loop, 1200, submit=True)["number"]
    walk_to(api, number, "in_transit")
    r = api.get(f"/api/v1/manifests/{number}.pdf", as_="ent")
    assert r.status_code == 200 and r.mimetype == "application/pdf" and r.data.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(r.data))
    text = "".join(page.extract_text() for page in reader.pages)
    assert number in text and f"http://testserver.local/m/{number}" in text and "危险废物转移联单" in text
    assert b"FontFile2" in r.data and b"STSong-Light" not in r.data  # the CJK font is embedded
    assert api.get(f"/api/v1/manifests/{number}.pdf", as_="other").status_code == 404
    # The public verification page: state and steps, no names or quantities.
    page = client.get(f"/m/{number}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert number in html and "运输中" in html and "承运人提货" in html
    assert world.enterprise.name not in html and "1200" not in html and "王师傅" not in html
    assert client.get("/m/20253310999999").status_code == 404
    assert client.get("/m/not-a-number").status_code == 404


def test_carrier_picks_up_from_the_scanned_page(api, world, client):
    loop = build_loop(world, api)
    number = new_manifest(api, loop, 1000, submit=True)["number"]
    assert client.post("/login", data={"username": "drv", "password": factories.PASSWORD}).status_code == 302
    page = client.get(f"/m/{number}").get_data(as_text=True)
    assert "确认提货" in page and 'name="signature_password"' in page and 'name="handover_code"' in page
    form = {"vehicle_plate": "浙j12345", "driver_name": "王师傅", "driver_phone": "13812345678"}
    code = api.handover_code(number)
    # Unsigned, or signed with a wrong password: nothing happens, the page says why (422, input kept).
    for unsigned in ({**form, "handover_code": code}, {**form, "signature_password": "wrong", "handover_code": code}):
        r = client.post(f"/m/{number}/pickup", data=unsigned)
        assert r.status_code == 422 and 'value="王师傅"' in r.get_data(as_text=True)
        assert manifest_status(number) == "submitted"
    r = client.post(
        f"/m/{number}/pickup", data={**form, "signature_password": factories.PASSWORD, "handover_code": code}
    )
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/m/{number}/picked-up")
    assert manifest_status(number) == "in_transit"
    assert stock_row(world.enterprise.id) == (800, 0)
    db.session.rollback()
    sent = db.session.scalars(select(LedgerRecord).where(LedgerRecord.stage == "sent_out")).all()
    assert len(sent) == 1 and sent[0].manifest_number == number
    assert ago(days=0) - sent[0].occurred_at < timedelta(minutes=5)


def test_manifest_pdf_qr_code_opens_the_verification_page(api, world, client, tmp_path):
    """The carrier scans the printed manifest: decode the QR code from the rendered PDF page."""
    import shutil
    import subprocess

    import zxingcpp
    from PIL import Image

    from tests.support import service_missing

    if shutil.which("pdftoppm") is None:
        service_missing("pdftoppm (Debian's poppler-utils)", "not installed")
    loop = build_loop(world, api)
    number = new_manifest(api, loop, 900, submit=True)["number"]
    pdf = tmp_path / "manifest.pdf"
    pdf.write_bytes(api.get(f"/api/v1/manifests/{number}.pdf", as_="ent").data)
    subprocess.run(
        ["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
        check=True,
        capture_output=True,
    )
    page_png = next(tmp_path.glob("page*.png"))
    found = [r.text for r in zxingcpp.read_barcodes(Image.open(page_png))]
    assert found == [f"http://testserver.local/m/{number}"], found
    assert client.get(f"/m/{number}").status_code == 200
