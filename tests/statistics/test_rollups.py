"""The statistics' roll-ups (app/statistics/rollup_models.py) equal a recomputation from the raw
records: after random sequences of events through the API (fills, back-dated fills, ledger records,
manifest steps, revisions), through ``statistics verify`` and ``statistics rebuild``, and the
figures read from them agree with figures worked out from the raw rows here."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.boxes.models import ColourChange, Fill
from app.extensions import db
from app.ledger.models import LedgerRecord, Stage
from app.ledger.revision_models import Revision
from app.statistics import services
from app.statistics.rollup_models import ColourSpan, ConsignmentMonth, FillMonth, WasteMonth
from app.statistics.services import rollups
from tests import factories
from tests.ledger.builders import build_loop, iso, manifest_body

CODE = "900-039-49"
ACTIONS = [
    "fill",
    "fill",
    "backfill",
    "record",
    "revise_record",
    "create",
    "pickup",
    "receive",
    "process",
    "reject",
    "revise",
    "approve",
]
STEPS = st.lists(
    st.tuples(
        st.sampled_from(ACTIONS),
        st.integers(min_value=0, max_value=7),  # which manifest, record, box, variant
        st.integers(min_value=1, max_value=1300),  # whole kg
        st.integers(min_value=0, max_value=999),  # grams, or hours back for a back-dated fill
    ),
    min_size=1,
    max_size=8,
)


def cli(app, *args: str):
    db.session.rollback()
    db.session.remove()
    return app.test_cli_runner().invoke(args=["statistics", *args])


def assert_rollups_equal_raw() -> None:
    db.session.rollback()  # what is committed
    problems = rollups.verify(db.session())
    db.session.rollback()
    assert problems == [], problems[:10]


def test_random_events_through_the_api_keep_the_rollups_equal_to_the_raw_records(app, world, api):
    loop = build_loop(world, api)
    second = factories.box(world.enterprise, world.service)
    db.session.commit()
    codes = [loop.box.code, second.code]
    base = manifest_body(loop)
    users = {world.enterprise.id: "ent", loop.carrier.id: "drv", world.service.id: "svc"}
    users[world.regulator_tiantai.id] = "reg_tt"
    numbers: list[str] = []
    records: list[int] = []
    seen: dict[str, int] = defaultdict(int)

    def step(action: str, pick: int, whole: int, grams: int) -> int:
        amount = float(Decimal(whole) + Decimal(grams) / 1000)
        number = numbers[pick % len(numbers)] if numbers else None
        if action in ("fill", "backfill"):
            # now, or back-dated (after the box's previous fill): the colour history is rewritten from it
            now = datetime.now(UTC)
            at = now - timedelta(minutes=grams % 50 + 1) if action == "backfill" else now
            body = {"mass_kg": 1500 + pick, "iodine_mg_g": 900, "filled_at": iso(at)}
            if pick % 3:
                body.update(removed_waste_kg=amount, confirm_unusual=True)
            return api.post(f"/api/v1/boxes/{codes[pick % 2]}/fills", body, as_="svc").status_code
        if action == "record" or (action == "revise_record" and not records):
            r = api.post("/api/v1/ledger", {"waste_code": CODE, "quantity_kg": amount}, as_="ent")
            if r.status_code == 201:
                records.append(r.get_json()["id"])
            return r.status_code
        if action == "revise_record":
            body = {"reason": "复称", "changes": {"quantity_kg": amount}}
            return api.post(f"/api/v1/ledger/{records[pick % len(records)]}/revisions", body, as_="ent").status_code
        if action == "approve":
            db.session.rollback()
            ids = list(db.session.scalars(select(Revision.id).where(Revision.state == "pending").order_by(Revision.id)))
            if not ids:
                return 0
            rid = ids[pick % len(ids)]
            status = 0
            for a in api.get(f"/api/v1/revisions/{rid}", as_="op").get_json()["approvals"]:
                if a["state"] == "pending":
                    status = api.post(
                        f"/api/v1/revisions/{rid}/approve", {}, as_=users[a["organization_id"]]
                    ).status_code
            return status
        if action == "create" or number is None:
            line = {**base["lines"][0], "quantity_kg": amount}
            r = api.post("/api/v1/manifests", {**base, "submit": True, "lines": [line]}, as_="ent")
            if r.status_code == 201:
                numbers.append(r.get_json()["number"])
            return r.status_code
        url = f"/api/v1/manifests/{number}"
        if action == "pickup":
            return api.post(
                f"{url}/pickup", {"vehicle_plate": "浙J12345", "driver_name": "王师傅"}, as_="drv"
            ).status_code
        if action == "receive":
            item = {"line_no": 1, "received_kg": amount}
            if pick % 2:
                item.update(accepted_kg=float(Decimal(amount) / 2), refusal_reason="含水")
            return api.post(f"{url}/receive", {"lines": [item]}, as_="svc").status_code
        if action == "reject":
            return api.post(f"{url}/reject", {"reason": "包装破损"}, as_="svc").status_code
        if action == "process":
            method = ("R7", "D1", "D10")[pick % 3]
            return api.post(f"{url}/process", {"lines": [{"line_no": 1, "method_code": method}]}, as_="svc").status_code
        variants = [{"quantity_kg": amount}, {"received_kg": amount}, {"accepted_kg": amount, "refusal_reason": "更正"}]
        changes = {"lines": [{"line_no": 1, **variants[pick % len(variants)]}]}
        who = ("ent", "drv", "svc")[(pick // 3) % 3]
        return api.post(f"{url}/revisions", {"reason": "录入错误", "changes": changes}, as_=who).status_code

    @given(steps=STEPS)
    # Always among the examples: a manifest through processing, revised after its receipt, and a
    # fill back-dated before the box's earlier fills (its colour history rewritten from then).
    @example(
        steps=[
            ("create", 0, 900, 250),
            ("pickup", 0, 1, 0),
            ("receive", 1, 880, 125),
            ("process", 1, 1, 0),
            ("revise", 1, 870, 5),
            ("approve", 0, 1, 0),
            ("record", 0, 40, 7),
            ("revise_record", 1, 39, 999),
            ("approve", 0, 1, 0),
            ("backfill", 3, 200, 30),
            ("fill", 1, 300, 0),
        ]
    )
    @settings(max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(steps):
        for action, pick, whole, grams in steps:
            status = step(action, pick, whole, grams)
            assert status < 500, (action, status)
            if status in (200, 201):
                seen[action] += 1
            assert_rollups_equal_raw()

    run()
    assert seen["process"] >= 1 and seen["approve"] >= 2 and seen["backfill"] >= 1, dict(seen)
    db.session.rollback()
    assert db.session.scalar(select(sa.func.count()).select_from(ColourSpan)) == db.session.scalar(
        select(sa.func.count()).select_from(ColourChange)
    )


def test_city_figures_from_rollups_equal_the_raw_rows(app, world, api):
    loop = build_loop(world, api, removed_kg=1234.5)
    r = api.post("/api/v1/ledger", {"waste_code": CODE, "quantity_kg": 10.125}, as_="ent")
    assert r.status_code == 201, r.get_json()
    db.session.rollback()
    now = datetime.now(UTC)
    period = services.month_of(now)
    figures = services.compute(db.session(), services.CITY, period, now=now)
    raw_generated = sum(
        (
            rec.quantity_kg
            for rec in db.session.scalars(select(LedgerRecord).where(LedgerRecord.stage == Stage.GENERATION))
            if period.start_utc <= rec.occurred_at < period.end_utc
        ),
        Decimal("0.000"),
    )
    assert figures["generated_kg"] == raw_generated and raw_generated == Decimal("1244.625")
    fills = [f for f in db.session.scalars(select(Fill)) if period.start_utc <= f.filled_at < period.end_utc]
    assert figures["regeneration"]["fills_count"] == len(fills)
    assert figures["mass_balance"]["waste_carbon_weighed_kg"] == Decimal("1234.500")
    # the box exists and has a colour: counted once, in its stored colour
    assert figures["boxes"]["total_count"] == 1
    assert figures["boxes"]["by_colour"][loop.box.colour] == 1


def test_verify_reports_each_difference_and_rebuild_repairs_it(app, world, api):
    build_loop(world, api)
    ok = cli(app, "verify")
    assert ok.exit_code == 0, ok.output
    assert "equal" in ok.output
    # Tamper with the stored roll-ups: a month's generation, a fill count, a span's end, a stray row.
    db.session.execute(sa.update(WasteMonth).values(generated_kg=WasteMonth.generated_kg + 1))
    db.session.execute(sa.update(FillMonth).values(fills_count=FillMonth.fills_count + 5))
    db.session.execute(sa.delete(ColourSpan))
    db.session.add(FillMonth(enterprise_id=world.other_enterprise.id, month="2001-01", fills_count=1))
    db.session.add(ConsignmentMonth(enterprise_id=world.enterprise.id, month="2001-02", delivered_count=1))
    db.session.commit()
    bad = cli(app, "verify")
    assert bad.exit_code == 1, bad.output
    assert "rollup_waste_months" in bad.output and "generated_kg" in bad.output
    assert "rollup_fill_months" in bad.output and "2001-01" in bad.output
    assert "rollup_colour_spans" in bad.output
    assert "rollup_consignment_months 2001-02" in bad.output
    rebuilt = cli(app, "rebuild", "--box-chunk", "1")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "rebuilt 2001-01" in rebuilt.output  # a stored month without raw records is rewritten too
    again = cli(app, "verify")
    assert again.exit_code == 0, again.output
    db.session.rollback()
    assert db.session.scalar(select(sa.func.count()).select_from(FillMonth).where(FillMonth.month == "2001-01")) == 0
    assert db.session.scalar(select(sa.func.count()).select_from(ConsignmentMonth)) == 0  # no manifest received


def test_a_refused_request_changes_no_rollup_and_the_next_one_adds_exactly_its_own(app, world, api):
    build_loop(world, api)

    def generated() -> Decimal:
        db.session.rollback()
        total = db.session.scalar(select(sa.func.sum(WasteMonth.generated_kg)))
        db.session.rollback()
        return Decimal(str(total or 0)).quantize(Decimal("0.001"))

    before = generated()
    refused = api.post("/api/v1/ledger", {"waste_code": CODE, "quantity_kg": -1}, as_="ent")
    assert refused.status_code == 422
    assert generated() == before
    good = api.post("/api/v1/ledger", {"waste_code": CODE, "quantity_kg": 12.345}, as_="ent")
    assert good.status_code == 201, good.get_json()
    assert generated() == before + Decimal("12.345")
    assert_rollups_equal_raw()
