"""Boxes through the public API: registration, fills, colours with reasons, history, tenants."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from app.boxes import codes
from app.boxes import services as box_services
from tests import factories
from tests.boxes.builders import BOX, iso, register


def test_register_box_and_first_fill_turns_green(api, now):
    box = register(api)
    assert codes.normalise(box["code"]) == box["code"]
    assert box["colour"] == "grey" and box["reasons"][0]["code"] == "no_active_fill"
    # Formula T of domain-reference.md: M=2000, S=0.10, C=80, Q=15000, t=16 → 19.2 kg/d, T ≈ 10.4 d.
    assert box["design_daily_load_kg"] == pytest.approx(19.2)
    assert box["design_cycle_days"] == pytest.approx(2000 * 0.10 / 19.2)
    r = api.post(
        f"/api/v1/boxes/{box['code']}/fills", {"mass_kg": 2000, "iodine_mg_g": 900, "batch_no": "B1"}, as_="ent"
    )
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["kind"] == "initial"
    got = api.get(f"/api/v1/boxes/{box['code']}", as_="ent").get_json()
    assert got["colour"] == "green" and got["reasons"] == []
    assert got["saturation_basis"] == "design"
    assert 0 <= got["saturation"] < 0.01
    predicted = datetime.fromisoformat(got["predicted_replacement_at"])
    assert abs((predicted - now).total_seconds() - 2000 * 0.10 / 19.2 * 86400) < 120
    assert got["current_fill"]["iodine_mg_g"] == 900


def test_colour_rules_from_design_load(api, now):
    box = register(api)
    code = box["code"]
    # Filled 9 days ago: saturation 9 × 19.2 / 200 = 86 % and ≤ 7 days left → yellow with both reasons.
    api.post(
        f"/api/v1/boxes/{code}/fills",
        {"mass_kg": 2000, "iodine_mg_g": 900, "filled_at": iso(now - timedelta(days=9))},
        as_="ent",
    )
    got = api.get(f"/api/v1/boxes/{code}", as_="ent").get_json()
    assert got["colour"] == "yellow"
    reasons = {r["code"]: r for r in got["reasons"]}
    assert set(reasons) == {"saturation_high", "replacement_due_soon"}
    assert reasons["saturation_high"]["observed"] == "86%" and reasons["saturation_high"]["threshold"] == "80%"
    assert "饱和度" in reasons["saturation_high"]["zh"] and "Saturation" in reasons["saturation_high"]["en"]


def test_red_when_saturated_and_low_iodine(api, now):
    code = register(api)["code"]
    api.post(
        f"/api/v1/boxes/{code}/fills",
        {"mass_kg": 2000, "iodine_mg_g": 700, "filled_at": iso(now - timedelta(days=12))},
        as_="ent",
    )
    got = api.get(f"/api/v1/boxes/{code}", as_="ent").get_json()
    assert got["colour"] == "red"
    codes = {r["code"] for r in got["reasons"]}
    assert {"saturation_full", "replacement_overdue", "iodine_below_minimum"} <= codes
    # What saturation 100 % and the passed date imply is not listed again (supersedes).
    assert not codes & {"saturation_high", "replacement_due_soon"}
    iodine = next(r for r in got["reasons"] if r["code"] == "iodine_below_minimum")
    assert iodine["observed"] == 700 and iodine["threshold"] == 800
    # Honeycomb carbon has a lower minimum (650 mg/g).
    code2 = register(api, carbon_type="honeycomb", facility_code="TA002")["code"]
    api.post(f"/api/v1/boxes/{code2}/fills", {"mass_kg": 2000, "iodine_mg_g": 700}, as_="ent")
    assert api.get(f"/api/v1/boxes/{code2}", as_="ent").get_json()["colour"] == "green"


def test_colour_changes_with_time_alone_and_history_records_when(app, world, session, now):
    box = factories.box(world.enterprise, now=now - timedelta(days=2))
    actor = factories.op_principal()
    fill_at = now - timedelta(days=1)
    box_services.record_fill(
        session, actor, box, {"mass_kg": 2000.0, "iodine_mg_g": 900.0, "filled_at": fill_at}, now=now
    )
    session.commit()
    assert box.colour == "green"
    cycle = timedelta(days=200 / 19.2)
    later = fill_at + cycle * 0.85  # nobody wrote anything; the sweep runs
    assert box.colour_next_check_at is not None and box.colour_next_check_at <= later
    assert box_services.refresh_due(session, later) == 1
    session.commit()
    assert box.colour == "yellow"
    changes = box_services.history(session, box)["colour_changes"]
    assert [c.colour for c in changes] == ["grey", "green", "yellow"]
    # Yellow began when the predicted date came within 7 days (before 80 % saturation here).
    began = min(fill_at + cycle - timedelta(days=7), fill_at + cycle * 0.8)
    assert abs((changes[-1].changed_at - began).total_seconds()) < 2
    even_later = fill_at + cycle + timedelta(hours=1)
    box_services.refresh_due(session, even_later)
    session.commit()
    assert box.colour == "red"
    red = box_services.history(session, box)["colour_changes"][-1]
    assert abs((red.changed_at - (fill_at + cycle)).total_seconds()) < 2
    days_red = box_services.days_in_colour(
        box_services.history(session, box)["colour_changes"], "red", fill_at, fill_at + cycle + timedelta(days=2)
    )
    assert days_red == pytest.approx(2.0, abs=0.01)


def test_replacement_needs_removed_waste_and_resets_colour(api, now):
    code = register(api)["code"]
    api.post(
        f"/api/v1/boxes/{code}/fills",
        {"mass_kg": 2000, "iodine_mg_g": 900, "filled_at": iso(now - timedelta(days=12))},
        as_="ent",
    )
    assert api.get(f"/api/v1/boxes/{code}", as_="ent").get_json()["colour"] == "red"
    r = api.post(f"/api/v1/boxes/{code}/fills", {"mass_kg": 2000, "iodine_mg_g": 900}, as_="ent")
    assert r.status_code == 422 and "removed_waste_kg" in r.get_json()["errors"]
    r = api.post(
        f"/api/v1/boxes/{code}/fills", {"mass_kg": 2000, "iodine_mg_g": 900, "removed_waste_kg": 2230.5}, as_="ent"
    )
    assert r.status_code == 201 and r.get_json()["kind"] == "replacement"
    got = api.get(f"/api/v1/boxes/{code}", as_="ent").get_json()
    assert got["colour"] == "green"
    hist = api.get(f"/api/v1/boxes/{code}/history", as_="ent").get_json()
    # The back-dated fill's history is what happened since: green, yellow a week before the
    # predicted date (≈ day 3.4), red from that date (≈ day 10.4), green at the replacement.
    assert [c["colour"] for c in hist["colour_changes"]] == ["grey", "green", "yellow", "red", "green"]
    cycle = 2000 * 0.10 / 19.2
    changed = [datetime.fromisoformat(c["changed_at"]) for c in hist["colour_changes"]]
    start = now - timedelta(days=12)
    assert abs((changed[2] - start).total_seconds() - (cycle - 7) * 86400) < 2
    assert abs((changed[3] - start).total_seconds() - cycle * 86400) < 2
    assert [f["kind"] for f in hist["fills"]] == ["initial", "replacement"]
    assert hist["fills"][1]["removed_waste_kg"] == 2230.5
    assert hist["days_by_colour"]["red"] >= 0


def test_a_replacement_records_whether_the_carbon_it_replaced_was_spent(api, now):
    code = register(api)["code"]  # design load: T ≈ 10.4 days
    url = f"/api/v1/boxes/{code}/fills"
    # Carbon below its minimum iodine value: red from the first day, for that reason.
    r = api.post(url, {"mass_kg": 2000, "iodine_mg_g": 500, "filled_at": iso(now - timedelta(days=25))}, as_="ent")
    assert r.status_code == 201 and r.get_json()["replaced_overdue"] is None  # a first fill replaces nothing
    # Replaced after 13 days: saturated since day 10.4, while the box was red anyway, so the
    # colour history shows no change when the carbon ran out; the replacement itself knows.
    r = api.post(
        url,
        {"mass_kg": 2000, "iodine_mg_g": 900, "removed_waste_kg": 2200, "filled_at": iso(now - timedelta(days=12))},
        as_="ent",
    )
    assert r.status_code == 201 and r.get_json()["replaced_overdue"] is True
    hist = api.get(f"/api/v1/boxes/{code}/history", as_="ent").get_json()
    assert [c["colour"] for c in hist["colour_changes"]][:2] == ["grey", "red"]
    # Replaced after 7 days (67 % saturated): on time.
    r = api.post(
        url,
        {"mass_kg": 2000, "iodine_mg_g": 900, "removed_waste_kg": 2100, "filled_at": iso(now - timedelta(days=5))},
        as_="ent",
    )
    assert r.status_code == 201 and r.get_json()["replaced_overdue"] is False


@pytest.mark.parametrize(
    "body,field",
    [
        ({"mass_kg": 0, "iodine_mg_g": 900}, "mass_kg"),
        ({"mass_kg": -5, "iodine_mg_g": 900}, "mass_kg"),
        ({"mass_kg": 100, "iodine_mg_g": 900, "filled_at": "2999-01-01T00:00:00"}, "filled_at"),
        ({"mass_kg": 100, "iodine_mg_g": 900, "carbon_type": "coconut"}, "carbon_type"),
        ({"mass_kg": 100}, "iodine_mg_g"),
        ({"mass_kg": "lots", "iodine_mg_g": 900}, "mass_kg"),
        ({"mass_kg": 100, "iodine_mg_g": 900, "filled_at": "yesterday"}, "filled_at"),
    ],
)
def test_bad_fills_are_refused_and_change_nothing(api, body, field):
    code = register(api)["code"]
    before = api.get(f"/api/v1/boxes/{code}/history", as_="ent").get_json()
    r = api.post(f"/api/v1/boxes/{code}/fills", body, as_="ent")
    assert r.status_code == 422, r.get_json()
    assert r.mimetype == "application/problem+json"
    assert field in r.get_json()["errors"]
    after = api.get(f"/api/v1/boxes/{code}/history", as_="ent").get_json()
    assert after["fills"] == before["fills"] and after["colour_changes"] == before["colour_changes"]


@pytest.mark.parametrize(
    "change,field",
    [
        ({"carbon_type": "coconut"}, "carbon_type"),
        ({"design_fill_kg": 0}, "design_fill_kg"),
        ({"hours_per_day": 25}, "hours_per_day"),
        ({"design_airflow_m3_h": -1}, "design_airflow_m3_h"),
        ({"facility_code": ""}, "facility_code"),
    ],
)
def test_bad_box_registration(api, change, field):
    r = api.post("/api/v1/boxes", {**BOX, **change}, as_="ent")
    assert r.status_code == 422 and field in r.get_json()["errors"]
    assert api.get("/api/v1/boxes", as_="ent").get_json()["total"] == 0


def test_tenants_cannot_see_or_change_each_others_boxes(api, world):
    mine = register(api, as_="ent", service_org_id=world.service.id)["code"]
    theirs = register(api, as_="other")["code"]
    assert api.get(f"/api/v1/boxes/{theirs}", as_="ent").status_code == 404
    assert api.get(f"/api/v1/boxes/{mine}", as_="other").status_code == 404
    assert api.post(f"/api/v1/boxes/{theirs}/fills", {"mass_kg": 1, "iodine_mg_g": 900}, as_="ent").status_code == 404
    assert api.get(f"/api/v1/boxes/{theirs}/history", as_="ent").status_code == 404
    assert api.get(f"/api/v1/boxes/{theirs}/qr.png", as_="ent").status_code == 404
    assert {b["code"] for b in api.get("/api/v1/boxes", as_="ent").get_json()["items"]} == {mine}
    # The carbon service sees and fills the box it serves, not others.
    assert {b["code"] for b in api.get("/api/v1/boxes", as_="svc").get_json()["items"]} == {mine}
    assert api.post(f"/api/v1/boxes/{mine}/fills", {"mass_kg": 2000, "iodine_mg_g": 900}, as_="svc").status_code == 201
    # The 天台 regulator sees 天台's box, the city regulator both, the park its park's.
    assert {b["code"] for b in api.get("/api/v1/boxes", as_="reg_tt").get_json()["items"]} == {mine}
    assert {b["code"] for b in api.get("/api/v1/boxes", as_="reg_city").get_json()["items"]} == {mine, theirs}
    assert {b["code"] for b in api.get("/api/v1/boxes", as_="park").get_json()["items"]} == {mine}
    # Regulators read but do not record fills.
    assert (
        api.post(
            f"/api/v1/boxes/{mine}/fills", {"mass_kg": 2000, "iodine_mg_g": 900, "removed_waste_kg": 10}, as_="reg_tt"
        ).status_code
        == 403
    )
    # Nor can an enterprise register a box for another enterprise.
    r = api.post("/api/v1/boxes", {**BOX, "enterprise_id": world.other_enterprise.id}, as_="ent")
    assert r.status_code == 403


def test_list_filters(api, world, now):
    a = register(api)["code"]
    b = register(api, facility_code="TA002")["code"]
    api.post(f"/api/v1/boxes/{a}/fills", {"mass_kg": 2000, "iodine_mg_g": 900}, as_="ent")
    api.post(
        f"/api/v1/boxes/{b}/fills",
        {"mass_kg": 2000, "iodine_mg_g": 900, "filled_at": iso(now - timedelta(days=30))},
        as_="ent",
    )
    other = register(api, as_="other")["code"]
    assert [x["code"] for x in api.get("/api/v1/boxes?colour=red").get_json()["items"]] == [b]
    assert [x["code"] for x in api.get("/api/v1/boxes?colour=green").get_json()["items"]] == [a]
    assert [x["code"] for x in api.get("/api/v1/boxes?colour=grey").get_json()["items"]] == [other]
    assert {x["code"] for x in api.get("/api/v1/boxes?county=331023").get_json()["items"]} == {a, b}
    assert {x["code"] for x in api.get(f"/api/v1/boxes?park={world.park.id}").get_json()["items"]} == {a, b}
    assert {
        x["code"] for x in api.get(f"/api/v1/boxes?enterprise={world.other_enterprise.id}").get_json()["items"]
    } == {other}
    assert api.get("/api/v1/boxes?colour=purple").status_code == 422


def test_unknown_and_mistyped_codes(api):
    code = register(api)["code"]
    assert api.get("/api/v1/boxes/23-ZZZZZZ", as_="ent").status_code == 404
    # Lower case, no hyphen and O for 0 are accepted; a changed character is caught by the check.
    sloppy = code.replace("-", "").lower().replace("0", "o").replace("5", "s")
    assert api.get(f"/api/v1/boxes/{sloppy}", as_="ent").get_json()["code"] == code
    body = code[3:]
    swapped = code[:3] + body[1] + body[0] + body[2:] if body[0] != body[1] else code[:3] + "X" + body[1:]
    assert codes.normalise(swapped) is None or codes.normalise(swapped) != code


def test_stop_and_decommission(api, now):
    code = register(api)["code"]
    api.post(
        f"/api/v1/boxes/{code}/fills",
        {"mass_kg": 2000, "iodine_mg_g": 900, "filled_at": iso(now - timedelta(days=30))},
        as_="ent",
    )
    assert api.get(f"/api/v1/boxes/{code}", as_="ent").get_json()["colour"] == "red"
    r = api.post(f"/api/v1/boxes/{code}/status", {"status": "stopped"}, as_="ent")
    assert r.status_code == 200 and r.get_json()["colour"] == "grey"
    api.post(f"/api/v1/boxes/{code}/status", {"status": "decommissioned"}, as_="ent")
    assert api.post(f"/api/v1/boxes/{code}/status", {"status": "active"}, as_="ent").status_code == 409
    assert (
        api.post(
            f"/api/v1/boxes/{code}/fills", {"mass_kg": 1, "iodine_mg_g": 900, "removed_waste_kg": 1}, as_="ent"
        ).status_code
        == 409
    )
