"""The Taizhou demo data (``flask --app wsgi demo`` / :func:`app.demo.data.load_demo`)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import func, select

from app.accounts.models import Organization, Park, User
from app.accounts.uscc import uscc_error
from app.boxes import services as box_services
from app.boxes.models import Box, Fill
from app.common.timeutil import local_date
from app.demo.data import PASSWORD, USERS, load_demo
from app.extensions import db

NOW = datetime(2025, 9, 30, 2, 0, tzinfo=UTC)
LOGINS = {"admin", "qiye", "qiye2", "huanta", "tiantai", "shiju", "yuanqu", "yunshu", "zaisheng"}


def _snapshot(session) -> dict:
    """Every table's row count, and the rows a second load could plausibly touch."""
    return {
        "counts": {t.name: session.scalar(select(func.count()).select_from(t)) for t in db.metadata.sorted_tables},
        "boxes": session.execute(
            select(Box.code, Box.colour, Box.colour_since, Box.status, Box.colour_evaluated_at).order_by(Box.code)
        ).all(),
        "users": session.execute(select(User.username, User.password_hash).order_by(User.username)).all(),
        "fills": session.execute(select(Fill.id, Fill.filled_at, Fill.mass_kg).order_by(Fill.id)).all(),
    }


def _by_name(session, name: str) -> Organization:
    return session.scalar(select(Organization).where(Organization.name == name))


def test_demo_loads_taizhou_once(app, session, client):
    """``flask demo`` (one load per backend: it is the slow part) prints the logins; the data
    is what the brief asks for; a second run, CLI or function, changes nothing."""
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "--now", NOW.isoformat()])
    assert first.exit_code == 0, first.output
    assert "台州演示数据已载入" in first.output
    assert "password for all: carbon-demo-2024" in first.output
    lines = first.output.splitlines()
    for username in LOGINS:
        assert any(line.split()[:1] == [username] for line in lines), (username, first.output)
    assert "浙江天台以废治废再生炭科技有限公司" in first.output  # the zaisheng login's organisation
    session.expire_all()
    loaded = session.scalar(select(func.count()).select_from(Box))
    assert f"{loaded} 碳箱 boxes" in first.output

    before = _snapshot(session)
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0, second.output
    assert "nothing changed" in second.output and "carbon-demo-2024" in second.output
    summary = load_demo(session)
    assert summary["status"] == "already_loaded"
    session.expire_all()
    assert _snapshot(session) == before

    # ~300 boxes in all four colours, as the rule engine sees them "now".
    boxes = list(session.scalars(select(Box).order_by(Box.id)))
    assert 280 <= len(boxes) <= 320
    colours = Counter(b.colour for b in boxes)
    assert set(colours) == {"grey", "green", "yellow", "red"}, colours
    assert min(colours.values()) >= 10, colours
    assert summary["colours"] == {c: colours[c] for c in ("grey", "green", "yellow", "red")}
    fresh = box_services.evaluate_boxes(session, boxes, NOW)
    assert {b.code: b.colour for b in boxes} == {b.code: fresh[b.id].colour for b in boxes}
    # (Before any API call: reading boxes through the API re-evaluates them at the real clock.)
    _check_colour_mix(boxes)
    reporting = _check_sensors(session, boxes)
    reasons = Counter(r["code"] for b in boxes for r in b.colour_reasons)
    for code in (
        "replacement_overdue",
        "iodine_below_minimum",
        "saturation_high",
        "replacement_due_soon",
        "no_active_fill",
        "box_not_in_service",
    ):
        assert reasons[code] > 0, (code, reasons)
    statuses = Counter(b.status for b in boxes)
    assert statuses["stopped"] > 0 and statuses["decommissioned"] > 0
    assert Counter(b.carbon_type for b in boxes).keys() == {"granular", "honeycomb"}
    assert Counter(b.carbon_type for b in boxes)["granular"] > len(boxes) / 2

    # Design parameters in their realistic ranges.
    for b in boxes:
        assert 200 <= b.design_fill_kg <= 3000 and 5000 <= b.design_airflow_m3_h <= 40000
        assert 20 <= b.design_removed_mg_m3 <= 150 and 8 <= b.hours_per_day <= 24
        assert b.adsorption_capacity in (0.10, 0.15)

    # Histories: backdated fills, replacements that weigh the loaded waste carbon.
    fills = list(session.scalars(select(Fill).order_by(Fill.box_id, Fill.filled_at)))
    assert len(fills) > len(boxes) * 2
    assert all(f.filled_at <= NOW for f in fills)
    previous: dict[int, Fill] = {}
    replacements = 0
    for fill in fills:
        before = previous.get(fill.box_id)
        if before is None:
            assert fill.kind == "initial" and fill.removed_waste_kg is None
        else:
            replacements += 1
            assert fill.kind == "replacement"
            assert 1.04 * float(before.mass_kg) <= fill.removed_waste_kg <= 1.26 * float(before.mass_kg)
        previous[fill.box_id] = fill
    assert replacements > 500
    # The colour history has red and yellow spells before replacements, not only today's colours.
    history = box_services.history(session, boxes[0])
    assert history["colour_changes"][0].colour == "grey"

    # Organisations: valid USCCs whose characters 3–8 are the county (the city's for city bodies).
    orgs = list(session.scalars(select(Organization)))
    assert len(orgs) >= 55
    assert len({o.uscc for o in orgs}) == len(orgs)
    for org in orgs:
        assert uscc_error(org.uscc) is None, (org.name, org.uscc)
        assert org.uscc[2:8] == (org.county_code or "331000"), (org.name, org.uscc)
    enterprises = [o for o in orgs if o.has_role("generator")]
    assert 30 <= len(enterprises) <= 45
    assert len({o.county_code for o in enterprises}) == 9
    counties_with_regulators = {o.county_code for o in orgs if o.has_role("regulator")}
    assert counties_with_regulators == {
        None,
        "331002",
        "331003",
        "331004",
        "331022",
        "331023",
        "331024",
        "331081",
        "331082",
        "331083",
    }
    assert _by_name(session, "台州市生态环境局").county_code is None
    assert _by_name(session, "台州市生态环境局天台分局").county_code == "331023"

    # The parks the plan names, each with its administration.
    parks = {p.name: p.county_code for p in session.scalars(select(Park))}
    assert parks["台州湾经济技术开发区医化园区"] == "331082"
    assert parks["天台县经济开发区"] == "331023"
    assert parks["温岭市东部产业集聚区"] == "331081"
    park_admins = {o.park_id for o in orgs if o.has_role("park_admin")}
    assert park_admins == {p.id for p in session.scalars(select(Park))}
    assert all(any(e.park_id == p.id for e in enterprises) for p in session.scalars(select(Park)))

    # Regeneration in 天台 and 温岭, licensed for HW49 900-039-49; a licensed carrier.
    plants = [o for o in orgs if o.has_role("regenerator")]
    assert {p.county_code for p in plants} == {"331023", "331081"}
    for plant in plants:
        assert {"supplier", "regenerator", "receiver"} <= set(plant.roles)
        assert any(lic["kind"] == "hw_operation" and "900-039-49" in lic["waste_codes"] for lic in plant.licences)
    carriers = [o for o in orgs if o.has_role("carrier")]
    assert carriers and all(any(lic["kind"] == "transport" for lic in c.licences) for c in carriers)
    regenerated = session.scalar(
        select(func.count()).select_from(Fill).where(Fill.supplier_org_id.in_([p.id for p in plants]))
    )
    assert regenerated > len(fills) / 3

    # The showcase enterprise (qiye) has boxes in every colour, some replaced by its own staff.
    qiye = session.scalar(select(User).where(User.username == "qiye"))
    own = [b for b in boxes if b.enterprise_id == qiye.organization_id]
    assert {b.colour for b in own} == {"grey", "green", "yellow", "red"}
    assert qiye.role == "admin" and qiye.organization.has_role("generator")

    # Every printed login works with the printed password.
    assert {login["username"] for login in summary["logins"]} == LOGINS
    assert summary["password"] == PASSWORD == "carbon-demo-2024"
    session.commit()
    for username in sorted(LOGINS):
        r = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
        assert r.status_code == 201, (username, r.get_json())
    assert client.post("/api/v1/auth/token", json={"username": "qiye", "password": "wrong-pass"}).status_code == 401
    # …and sees what its role allows: the 天台 regulator sees 天台's boxes only.
    token = client.post("/api/v1/auth/token", json={"username": "tiantai", "password": PASSWORD}).get_json()["token"]
    r = client.get("/api/v1/boxes?per_page=500", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    seen = r.get_json()["items"]
    assert seen and {b["county_code"] for b in seen} == {"331023"}

    # The rest of the checks share this load (the tables are emptied after each test).
    _check_manifests(session, client)
    _check_regeneration(session)
    _check_readings_api(client, reporting)
    _check_synergy_index(client)


def _token(client, username: str) -> dict:
    r = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert r.status_code == 201, r.get_json()
    return {"Authorization": f"Bearer {r.get_json()['token']}"}


def _check_colour_mix(boxes) -> None:
    """A plausible city: mostly green, some yellow, red and grey, every rule seen somewhere."""
    from app.boxes.colour import load_rules

    colours = Counter(b.colour for b in boxes)
    share = {c: colours[c] / len(boxes) for c in ("green", "yellow", "red", "grey")}
    assert max(colours, key=colours.get) == "green", colours
    assert 0.55 <= share["green"] <= 0.70, share
    assert 0.10 <= share["yellow"] <= 0.20, share
    assert 0.08 <= share["red"] <= 0.15, share
    assert 0.05 <= share["grey"] <= 0.15, share
    seen = Counter(r["code"] for b in boxes for r in b.colour_reasons)
    for rule in load_rules().rules:
        assert seen[rule.code] > 0, (rule.code, seen)
    # Each waste rule has a box of its own colour for that reason alone (the waste left behind).
    only = Counter((b.colour, b.colour_reasons[0]["code"]) for b in boxes if len(b.colour_reasons) == 1)
    assert only[("red", "waste_held_too_long")] >= 1 and only[("yellow", "waste_not_on_manifest")] >= 1, only


def _check_manifests(session, client) -> None:
    from app.ledger.models import LedgerRecord, Manifest, WasteStock

    manifests = list(session.scalars(select(Manifest).order_by(Manifest.id)))
    states = Counter(m.status for m in manifests)
    assert {"draft", "submitted", "in_transit", "received", "closed", "rejected", "cancelled"} <= set(states), states
    assert states["closed"] > 0.8 * len(manifests), states
    enterprises = {o.id for o in session.scalars(select(Organization)) if o.has_role("generator")}
    assert len({m.consignor_id for m in manifests}) >= 0.8 * len(enterprises)
    carrier = session.scalar(select(User).where(User.username == "yunshu")).organization_id
    assert {m.carrier_id for m in manifests} == {carrier}
    assert {m.receiver.name for m in manifests} == {
        "浙江天台以废治废再生炭科技有限公司",
        "温岭市绿环活性炭再生有限公司",
    }
    for m in manifests:
        assert m.created_at <= NOW and all(e.at <= NOW for e in m.events)
        assert [e.at for e in m.events] == sorted(e.at for e in m.events), m.number
    closed = [m for m in manifests if m.status == "closed"]
    for m in closed:
        assert [e.action for e in m.events][-6:] == ["create", "submit", "pickup", "receive", "process", "close"]
        assert all(line.method_code for line in m.lines)
    # Mostly regenerated or utilised; landfill (D1) is the exception, but it exists.
    processed_kg = Counter()
    for m in closed:
        for line in m.lines:
            processed_kg[line.method_code] += line.accepted_kg
    total = sum(processed_kg.values())
    assert {"R7", "R15", "D10", "C1", "D1"} <= set(processed_kg), processed_kg
    assert processed_kg["R7"] / total > 0.5 and 0 < processed_kg["D1"] / total < 0.03, processed_kg

    # The flags as the rules define them, at the demo's "now".
    overdue_now = {m.number for m in manifests if m.overdue or m.is_overdue(NOW)}
    assert sum(m.status == "in_transit" and m.is_overdue(NOW) for m in manifests) >= 1
    assert any(m.overdue and m.status == "closed" for m in manifests)  # received late, then processed
    assert any(m.status == "in_transit" and not m.is_overdue(NOW) for m in manifests)
    discrepant = [m for m in manifests if m.discrepant]
    assert len(discrepant) >= 1
    for m in discrepant:
        line = m.lines[0]
        assert abs(line.received_kg - line.quantity_kg) / line.quantity_kg > 0.05
    rejected = [m for m in manifests if m.status == "rejected"]
    assert rejected and all("拒收" in m.reject_reason for m in rejected)
    # The refused waste went back into stock and left again on a later manifest.
    for m in rejected:
        batches = set(m.lines[0].requested_batches)
        assert any(
            batches <= set(later.lines[0].requested_batches)
            for later in manifests
            if later.created_at > m.rejected_at and later.status != "cancelled"
        ), m.number
    cancelled = [m for m in manifests if m.status == "cancelled"]
    assert cancelled and all(m.picked_up_at is None for m in cancelled)

    # The city regulator sees them through the API.
    shiju = _token(client, "shiju")
    listed = {}
    for flag in ("overdue", "discrepant", "rejected"):
        r = client.get(f"/api/v1/manifests?flag={flag}&per_page=500", headers=shiju)
        assert r.status_code == 200, r.get_json()
        listed[flag] = {item["number"] for item in r.get_json()["items"]}
    assert overdue_now <= listed["overdue"]
    assert {m.number for m in discrepant} == listed["discrepant"]
    assert {m.number for m in rejected} == listed["rejected"]
    detail = client.get(f"/api/v1/manifests/{closed[0].number}", headers=shiju).get_json()
    assert [e["action"] for e in detail["events"]][-1] == "close"

    # Stock never negative; what is on site is the generation batches not shipped.
    for stock in session.scalars(select(WasteStock)):
        assert stock.on_hand_kg >= 0 and 0 <= stock.reserved_kg <= stock.on_hand_kg
        on_site = session.scalar(
            select(func.coalesce(func.sum(LedgerRecord.on_site_kg), 0)).where(
                LedgerRecord.enterprise_id == stock.enterprise_id, LedgerRecord.stage == "generation"
            )
        )
        assert on_site == stock.on_hand_kg  # exact: masses are Decimals to the gram


def _check_regeneration(session) -> None:
    from app.ledger.models import Manifest
    from app.regeneration.models import RegenerationBatch

    batches = list(session.scalars(select(RegenerationBatch)))
    assert {b.plant.name for b in batches} == {"浙江天台以废治废再生炭科技有限公司", "温岭市绿环活性炭再生有限公司"}
    for batch in batches:
        assert 850 <= batch.iodine_mg_g <= 950 and batch.method_code == "R7"
        assert 0 < batch.output_kg < batch.input_kg
        for item in batch.inputs:
            manifest = session.get(Manifest, item.line.manifest_id)
            assert manifest.receiver_id == batch.plant_id and manifest.status == "closed"
            assert item.line.method_code == "R7" and item.line.consumed_kg <= item.line.accepted_kg
    fills = list(session.scalars(select(Fill).where(Fill.regeneration_batch_id.is_not(None))))
    assert len(fills) >= 10
    by_batch = {b.id: b for b in batches}
    used = Counter()
    for fill in fills:
        batch = by_batch[fill.regeneration_batch_id]
        used[batch.id] += fill.mass_kg
        assert local_date(fill.filled_at) > batch.produced_on  # produced before it was filled
        assert fill.iodine_mg_g == batch.iodine_mg_g and fill.supplier_org_id == batch.plant_id
        assert fill.batch_no == batch.batch_no and fill.filled_at <= NOW
    for batch in batches:
        assert batch.used_kg == used[batch.id] and batch.used_kg <= batch.output_kg  # exact


def _check_sensors(session, boxes) -> list[str]:
    """Every active sensor box with carbon in it reports; returns their codes."""
    from app.telemetry.models import BoxSensorState, SensorReading

    total = session.scalar(select(func.count()).select_from(SensorReading))
    assert 5_000 <= total <= 60_000, total
    reporting = [b for b in boxes if b.has_sensors and b.status == "active" and b.colour != "grey"]
    assert len(reporting) >= 30
    states = {s.box_id: s for s in session.scalars(select(BoxSensorState))}
    assert {b.id for b in reporting} <= set(states)
    fresh = [b for b in reporting if states[b.id].latest_ts >= NOW - timedelta(minutes=15)]
    assert len(fresh) >= len(reporting) - 4  # the silent ones
    assert all(states[b.id].latest_ts <= NOW for b in reporting)
    # Quiet boxes read like real ones: outlet below the limit while running, gas 25–35 °C, RH 40–80 %.
    quiet = [b for b in reporting if not b.colour_reasons]
    assert quiet
    for box in quiet[:10]:
        rows = session.scalars(select(SensorReading).where(SensorReading.box_id == box.id)).all()
        assert len(rows) >= 400
        running = [r for r in rows if r.running]
        assert running
        for r in running:
            assert 30 <= r.inlet_mg_m3 <= 150 and r.outlet_mg_m3 < box.emission_limit_mg_m3
            assert 25 <= r.inlet_temp_c <= 35 and 40 <= r.rh_pct <= 80
            assert box.pressure_drop_min_pa <= r.pressure_drop_pa <= box.pressure_drop_max_pa
            assert 0.7 * box.design_airflow_m3_h <= r.airflow_m3_h <= 1.1 * box.design_airflow_m3_h
    return [b.code for b in fresh]


def _check_readings_api(client, codes: list[str]) -> None:
    """The hourly roll-ups through the API, as the regulator's charts read them."""
    shiju = _token(client, "shiju")
    window = f"from={(NOW - timedelta(days=2)).isoformat()}&to={NOW.isoformat()}".replace("+", "%2B")
    for code in codes[:3]:
        r = client.get(f"/api/v1/boxes/{code}/readings?resolution=hour&{window}", headers=shiju)
        assert r.status_code == 200, r.get_json()
        rollups = r.get_json()["rollups"]
        assert len(rollups) >= 40 and all(row["count"] > 0 for row in rollups), code


def test_demo_refuses_a_database_with_other_data(app, session):
    from tests import factories

    factories.org("天台橡胶制品有限公司", ["generator"])
    session.commit()
    before = _snapshot(session)
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code != 0
    assert "only into an empty database" in result.output
    session.expire_all()
    assert _snapshot(session) == before
    assert session.scalar(select(func.count()).select_from(User).where(User.username.in_([u[0] for u in USERS]))) == 0
    assert sa.inspect(db.engine).has_table("boxes")


def _check_synergy_index(client) -> None:
    """The index page has something to rank: the last two full years' imported values (indicator
    25 is computed from manifests, none of which were processed in those years)."""
    last = NOW.year - 1
    r = client.get(f"/api/v1/index/scores?period={last}", headers=_token(client, "shiju"))
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    counties = body["counties"]
    assert len(counties) == 9 and body["base_period"] == str(last - 1)
    assert all(c["missing"] == [25] for c in counties), [c["missing"] for c in counties]
    totals = [c["total"] for c in counties]
    assert totals == sorted(totals, reverse=True) and 0 < min(totals) < max(totals) <= body["max_score"]
    assert all(c["change_vs_base_share"] is not None for c in counties)
