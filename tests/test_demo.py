"""The Taizhou demo data (``flask --app wsgi demo`` / :func:`app.demo.data.load_demo`)."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy import func, select

from app.accounts.models import Organization, Park, User
from app.accounts.uscc import uscc_error
from app.boxes import services as box_services
from app.boxes.models import Box, Fill
from app.demo.data import PASSWORD, USERS, load_demo
from app.extensions import db

NOW = datetime(2025, 9, 30, 2, 0, tzinfo=timezone.utc)
LOGINS = {"admin", "qiye", "qiye2", "huanta", "tiantai", "shiju", "yuanqu", "yunshu", "zaisheng"}


def _snapshot(session) -> dict:
    """Every table's row count, and the rows a second load could plausibly touch."""
    return {
        "counts": {t.name: session.scalar(select(func.count()).select_from(t)) for t in db.metadata.sorted_tables},
        "boxes": session.execute(select(Box.code, Box.colour, Box.colour_since, Box.status, Box.colour_evaluated_at)
                                 .order_by(Box.code)).all(),
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
    assert "password for all: demo1234" in first.output
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
    assert "nothing changed" in second.output and "demo1234" in second.output
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
    reasons = Counter(r["code"] for b in boxes for r in b.colour_reasons)
    for code in ("replacement_overdue", "iodine_below_minimum", "saturation_high", "replacement_due_soon",
                 "no_active_fill", "box_not_in_service"):
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
            assert 1.04 * before.mass_kg <= fill.removed_waste_kg <= 1.26 * before.mass_kg
        previous[fill.box_id] = fill
    assert replacements > 500
    # The colour history has red and yellow spells before replacements, not only today's colours.
    history = box_services.history(session, boxes[0])
    assert [c.colour for c in history["colour_changes"]][0] == "grey"

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
    assert counties_with_regulators == {None, "331002", "331003", "331004", "331022", "331023", "331024", "331081",
                                        "331082", "331083"}
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
    regenerated = session.scalar(select(func.count()).select_from(Fill).where(
        Fill.supplier_org_id.in_([p.id for p in plants])))
    assert regenerated > len(fills) / 3

    # The showcase enterprise (qiye) has boxes in every colour, some replaced by its own staff.
    qiye = session.scalar(select(User).where(User.username == "qiye"))
    own = [b for b in boxes if b.enterprise_id == qiye.organization_id]
    assert {b.colour for b in own} == {"grey", "green", "yellow", "red"}
    assert qiye.role == "admin" and qiye.organization.has_role("generator")

    # Every printed login works with the printed password.
    assert {login["username"] for login in summary["logins"]} == LOGINS
    assert summary["password"] == PASSWORD == "demo1234"
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
