"""States are types (StrEnums the database checks); masses are exact kilograms (NUMERIC(14, 3), Decimal).

Each CHECK constraint is shown to refuse a violating row written straight to the database; the
mass balance closes to the gram through the services, the statistics and the HTTP API.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from itertools import count

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.common.columns import Kilograms, kg
from app.common.timeutil import utcnow
from app.extensions import db
from tests import factories
from tests.ledger.builders import HW49_LICENCE

_names = count(1)
TRANSPORT = [{"number": "浙交运管许可台字331000000009号", "kind": "transport", "waste_codes": []}]


# ---------------------------------------------------------------- units (no database)


def test_kg_quantizes_to_the_gram_as_decimal():
    assert kg(0.1 + 0.2) == Decimal("0.300") and str(kg(0.1 + 0.2)) == "0.300"
    assert kg(1 / 3) == Decimal("0.333") and kg(2 / 3) == Decimal("0.667")
    assert kg(0.0005) == Decimal("0.000") and kg(0.0015) == Decimal("0.002")  # half-even, like round()
    assert kg(-0.0) == Decimal("0.000") and not kg(-0.0).is_signed()
    assert kg("12.5") == Decimal("12.500") and kg(7) == Decimal("7.000") and kg(None) == Decimal("0.000")
    assert isinstance(kg(1.0), Decimal)
    with pytest.raises(TypeError):
        kg(True)
    with pytest.raises(ValueError):
        kg("a lot")
    # Mixing a float into exact arithmetic fails loudly instead of drifting.
    with pytest.raises(TypeError):
        kg(1) + 0.1


def test_the_colours_are_defined_once_in_severity_order():
    from app.boxes import colour as engine
    from app.boxes.models import COLOURS, Colour
    from app.labels import pdf
    from app.statistics.services import definitions

    assert [c.value for c in Colour] == ["grey", "green", "yellow", "red"]
    assert [c.severity for c in Colour] == [0, 1, 2, 3]
    assert Colour.by_severity(descending=True)[0] == "red"
    assert definitions.COLOURS is COLOURS
    assert engine.LEVELS == {"grey": 0, "green": 1, "yellow": 2, "red": 3}
    assert set(pdf.COLOURS) == set(Colour)
    assert Colour.RED == "red" and f"{Colour.RED}" == "red" and json.dumps({"c": Colour.RED}) == '{"c": "red"}'


def test_state_columns_are_checked_enums():
    from app.accounts.models import ApiToken, OrganizationRole, User
    from app.boxes.models import Box, ColourChange, Fill
    from app.ledger.models import LedgerRecord, Manifest, ManifestEvent

    for column in (
        Manifest.status,
        ManifestEvent.from_status,
        ManifestEvent.to_status,
        LedgerRecord.stage,
        Box.colour,
        Box.status,
        Fill.kind,
        ColourChange.colour,
        OrganizationRole.role,
        User.role,
        ApiToken.kind,
    ):
        kind = column.property.columns[0].type
        assert isinstance(kind, sa.Enum) and not kind.native_enum and kind.create_constraint, column
    for column in ("quantity_kg", "on_site_kg", "available_kg"):
        kind = LedgerRecord.__table__.c[column].type
        assert isinstance(kind, Kilograms) and (kind.impl.precision, kind.impl.scale) == (14, 3)


# ---------------------------------------------------------------- CHECK constraints, both databases


def _refused(sql: str, **params) -> None:
    with pytest.raises(sa.exc.IntegrityError), db.session.begin_nested():
        db.session.execute(sa.text(sql), params)


def _manifest(world, carrier, status="draft", **timestamps) -> int:
    now = utcnow()
    values = {
        "number": f"2025331{next(_names):07d}",
        "origin": "electronic",
        "status": status,
        "consignor_id": world.enterprise.id,
        "carrier_id": carrier.id,
        "receiver_id": world.service.id,
        "receiver_licence": "",
        "route": "",
        "note": "",
        "vehicle_plate": "",
        "driver_name": "",
        "driver_phone": "",
        "created_at": now,
        "reject_reason": "",
        "discrepant": False,
        "overdue": False,
        "late_entry": False,
        **timestamps,
    }
    result = db.session.execute(sa.insert(db.metadata.tables["manifests"]).values(**values))
    return result.inserted_primary_key[0]


@pytest.fixture
def carrier(world):
    org = factories.org(f"危运{next(_names)}", ["carrier"])
    db.session.commit()
    return org


def test_manifest_states_need_their_timestamps(world, carrier):
    now = utcnow()
    manifests = db.metadata.tables["manifests"]
    cases = [
        ("in_transit", {}),  # picked up without picked_up_at
        ("rejected", {"picked_up_at": now}),  # rejected without rejected_at
        ("received", {"picked_up_at": now}),  # received without received_at
        ("processed", {"picked_up_at": now, "received_at": now}),  # processed without processed_at
        ("closed", {"picked_up_at": now, "received_at": now}),
        ("cancelled", {}),
    ]
    for status, timestamps in cases:
        with pytest.raises(sa.exc.IntegrityError), db.session.begin_nested():
            _manifest(world, carrier, status, **timestamps)
    # With them the same rows are accepted; an unknown state never is.
    ok = _manifest(world, carrier, "closed", picked_up_at=now, received_at=now, processed_at=now, closed_at=now)
    _manifest(world, carrier, "cancelled", cancelled_at=now)
    _manifest(world, carrier, "draft")
    _refused("UPDATE manifests SET status = 'lost' WHERE id = :id", id=ok)
    _refused("UPDATE manifests SET processed_at = NULL WHERE id = :id", id=ok)
    with pytest.raises(sa.exc.IntegrityError), db.session.begin_nested():
        db.session.execute(sa.update(manifests).where(manifests.c.id == ok).values(received_at=None))
    db.session.commit()


def test_ledger_stock_fill_and_line_bounds_are_checked(world, api, carrier):
    from tests.ledger.builders import build_loop

    loop = build_loop(world, api, removed_kg=900.0)
    record_id = db.session.scalar(
        sa.text("SELECT id FROM ledger_records WHERE batch_code = :c"), {"c": loop.batch_code}
    )
    storage_id = db.session.scalar(sa.text("SELECT id FROM ledger_records WHERE stage = 'storage'"))
    _refused("UPDATE ledger_records SET quantity_kg = -1 WHERE id = :id", id=storage_id)
    _refused("UPDATE ledger_records SET stage = 'evaporated' WHERE id = :id", id=storage_id)
    _refused("UPDATE ledger_records SET available_kg = 901 WHERE id = :id", id=record_id)  # > on site
    _refused("UPDATE ledger_records SET on_site_kg = 950 WHERE id = :id", id=record_id)  # > generated
    _refused("UPDATE ledger_records SET available_kg = -0.001 WHERE id = :id", id=record_id)
    _refused("UPDATE ledger_records SET on_site_kg = NULL WHERE id = :id", id=record_id)
    _refused("UPDATE ledger_records SET on_site_kg = 1 WHERE id = :id", id=storage_id)  # not a batch
    _refused("UPDATE waste_stock SET on_hand_kg = -1, reserved_kg = 0")
    _refused("UPDATE waste_stock SET reserved_kg = -1")
    _refused("UPDATE waste_stock SET reserved_kg = on_hand_kg + 0.001")
    _refused("UPDATE fills SET mass_kg = 0")
    _refused("UPDATE fills SET removed_waste_kg = -5 WHERE removed_waste_kg IS NOT NULL")
    _refused("UPDATE fills SET kind = 'topup'")
    _refused("UPDATE boxes SET colour = 'purple'")
    _refused("UPDATE boxes SET status = 'lost'")
    _refused("UPDATE colour_changes SET previous_colour = 'blue'")
    _refused("UPDATE users SET role = 'root'")
    _refused("UPDATE organization_roles SET role = 'smuggler'")
    # A manifest line: shipped > 0, accepted within received, consumed within accepted.
    api.post(
        "/api/v1/manifests",
        {
            "carrier_id": loop.carrier.id,
            "receiver_id": world.service.id,
            "submit": True,
            "lines": [{"waste_code": "900-039-49", "quantity_kg": 300}],
        },
        as_="ent",
    )
    line_id = db.session.scalar(sa.text("SELECT id FROM manifest_lines"))
    assert line_id is not None
    _refused("UPDATE manifest_lines SET quantity_kg = 0 WHERE id = :id", id=line_id)
    _refused("UPDATE manifest_lines SET received_kg = 10, accepted_kg = 11 WHERE id = :id", id=line_id)
    _refused("UPDATE manifest_lines SET consumed_kg = 1 WHERE id = :id", id=line_id)  # nothing accepted
    _refused("UPDATE manifest_line_sources SET returned_kg = quantity_kg + 1")
    _refused("UPDATE manifest_events SET to_status = 'vanished'")
    # The ORM refuses an unknown state before the database sees it.
    from app.ledger.models import Manifest

    manifest = db.session.scalar(sa.select(Manifest))
    manifest.status = "vanished"
    with pytest.raises(sa.exc.StatementError):
        db.session.flush()
    db.session.rollback()


def test_regeneration_bounds_are_checked(world):
    plant = world.service
    now = utcnow()
    table = db.metadata.tables["regeneration_batches"]
    row = {
        "plant_id": plant.id,
        "produced_on": now.date(),
        "method_code": "R7",
        "iodine_mg_g": 900.0,
        "note": "",
        "created_at": now,
    }
    for masses in (
        {"input_kg": 10, "output_kg": 11, "used_kg": 0},  # more out than in
        {"input_kg": 10, "output_kg": 8, "used_kg": 9},  # used more than produced
        {"input_kg": 0, "output_kg": 0, "used_kg": 0},
    ):
        with pytest.raises(sa.exc.IntegrityError), db.session.begin_nested():
            db.session.execute(sa.insert(table).values(batch_no=f"B{next(_names)}", **row, **masses))
    db.session.execute(sa.insert(table).values(batch_no="OK", **row, input_kg=10, output_kg=8, used_kg=8))
    db.session.commit()


# ---------------------------------------------------------------- exact mass balance


def _principals(world, carrier_org):
    from app.accounts.services import Principal

    driver = factories.user(carrier_org, f"drv{next(_names)}")
    return Principal(user=world.users["ent"]), Principal(user=driver), Principal(user=world.users["svc"])


def test_thirds_of_a_kilogram_sum_exactly_in_stock_statistics_and_json(world, api):
    from app.ledger import services as ledger
    from app.ledger.models import WasteStock
    from app.statistics.services import resolve_scope
    from app.statistics.services.report import compute

    world.service.licences = [HW49_LICENCE]
    carrier = factories.org("危运三分", ["carrier"], licences=TRANSPORT)
    ent, drv, _svc = _principals(world, carrier)
    db.session.commit()
    at = utcnow() - timedelta(hours=2)
    for _ in range(60):  # 60 × ⅓ kg (0.333) and 30 × 0.1 kg: floats would drift, grams do not
        ledger.record_by_hand(
            db.session, ent, {"waste_code": "900-039-49", "quantity_kg": 1 / 3, "generated_at": at}, now=at
        )
    for _ in range(30):
        ledger.record_by_hand(
            db.session, ent, {"waste_code": "900-039-49", "quantity_kg": 0.1, "generated_at": at}, now=at
        )
    generated = Decimal("0.333") * 60 + Decimal("0.1") * 30  # 22.980
    shipped = Decimal(0)
    for quantity in (0.1, 0.2, 2 / 3, 1 / 3):  # ship four small manifests
        manifest = ledger.create_manifest(
            db.session,
            ent,
            {
                "carrier_id": carrier.id,
                "receiver_id": world.service.id,
                "submit": True,
                "lines": [{"waste_code": "900-039-49", "quantity_kg": quantity}],
            },
            now=at,
            signature=factories.signed(ent.user),
        )
        ledger.pickup(
            db.session,
            drv,
            manifest,
            {"vehicle_plate": "浙J1", "driver_name": "王"},
            now=at,
            signature=factories.signed(drv.user),
            handover=factories.handed_over(manifest),
        )
        shipped += kg(quantity)
    db.session.commit()
    stock = db.session.scalar(sa.select(WasteStock).where(WasteStock.enterprise_id == world.enterprise.id))
    db.session.refresh(stock)
    assert generated == Decimal("22.980") and shipped == Decimal("1.300")
    assert stock.on_hand_kg == generated - shipped == Decimal("21.680")
    assert stock.reserved_kg == 0 and isinstance(stock.on_hand_kg, Decimal)
    on_site = db.session.scalar(
        sa.select(sa.func.sum(sa.column("on_site_kg", Kilograms())))
        .select_from(sa.table("ledger_records"))
        .where(sa.text("stage = 'generation'"))
    )
    assert kg(on_site) == stock.on_hand_kg

    period = f"{at.astimezone(ledger.SHANGHAI):%Y-%m}"
    from app.statistics.services.periods import parse_period

    report = compute(db.session, resolve_scope(db.session, "park", world.park.id), parse_period(period))
    assert report["generated_kg"] == generated and isinstance(report["generated_kg"], Decimal)
    assert report["shipped_kg"] == shipped
    balance = {g["code"]: g for g in report["mass_balance"]["gaps"]}
    assert balance["generated_vs_shipped"]["gap_kg"] == generated - shipped

    # Over HTTP the masses stay JSON numbers, exact to the gram.
    r = api.get(f"/api/v1/parks/{world.park.id}/metrics?period={period}", as_="park")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["generated_kg"] == 22.98 and isinstance(body["generated_kg"], float)
    assert body["shipped_kg"] == 1.3
    r = api.get("/api/v1/stock", as_="ent")
    assert r.status_code == 200, r.get_json()
    items = r.get_json()["items"]
    assert items[0]["on_hand_kg"] == 21.68 and not isinstance(items[0]["on_hand_kg"], str)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("generate"), st.integers(2, 90_000).map(lambda g: g / 3000)),  # thirds of grams
        st.tuples(
            st.just("manifest"),
            st.floats(0.01, 1.0),
            st.sampled_from(
                [
                    "draft",
                    "cancel_after_submit",
                    "submitted",
                    "in_transit",
                    "received_full",
                    "received_part",
                    "rejected",
                ]
            ),
        ),
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(steps=ops)
def test_random_ledger_and_manifests_keep_stock_equal_to_ins_minus_outs(world, steps):
    from app.ledger import services as ledger
    from app.ledger.models import LedgerRecord, WasteStock

    world.service.licences = [HW49_LICENCE]
    enterprise = factories.org(f"随机企业{next(_names)}", ["generator"], park=world.park)
    staff = factories.user(enterprise, f"ent{next(_names)}")
    carrier = factories.org(f"随机危运{next(_names)}", ["carrier"], licences=TRANSPORT)
    from app.accounts.services import Principal

    ent, drv, svc = (
        Principal(user=staff),
        Principal(user=factories.user(carrier, f"d{next(_names)}")),
        Principal(user=world.users["svc"]),
    )
    db.session.commit()
    now = utcnow()
    model_in = model_out = model_reserved = Decimal(0)
    for step in steps:
        if step[0] == "generate":
            ledger.record_by_hand(db.session, ent, {"waste_code": "900-039-49", "quantity_kg": step[1]}, now=now)
            model_in += kg(step[1])
            continue
        _, share, fate = step
        available = model_in - model_out - model_reserved
        quantity = kg(float(available) * share)
        if quantity <= 0:
            continue
        manifest = ledger.create_manifest(
            db.session,
            ent,
            {
                "carrier_id": carrier.id,
                "receiver_id": world.service.id,
                "submit": fate != "draft",
                "lines": [{"waste_code": "900-039-49", "quantity_kg": quantity}],
            },
            now=now,
            signature=factories.signed(ent.user) if fate != "draft" else None,
        )
        if fate == "draft":
            continue
        if fate == "cancel_after_submit":
            ledger.cancel(db.session, ent, manifest, {}, now=now)
            continue
        if fate == "submitted":
            model_reserved += quantity
            continue
        ledger.pickup(
            db.session,
            drv,
            manifest,
            {"vehicle_plate": "浙J2", "driver_name": "李"},
            now=now,
            signature=factories.signed(drv.user),
            handover=factories.handed_over(manifest),
        )
        model_out += quantity
        if fate == "rejected":
            ledger.reject(
                db.session, svc, manifest, {"reason": "包装破损"}, now=now, signature=factories.signed(svc.user)
            )
            model_out -= quantity
        elif fate.startswith("received"):
            accepted = quantity if fate == "received_full" else kg(quantity / 3)
            if accepted <= 0:  # a third of a few grams rounds to nothing: the receiver must accept something
                accepted = quantity
            ledger.receive(
                db.session,
                svc,
                manifest,
                {
                    "lines": [
                        {
                            "line_no": 1,
                            "received_kg": float(quantity),
                            "accepted_kg": float(accepted),
                            "refusal_reason": "" if accepted == quantity else "部分不符",
                        }
                    ]
                },
                now=now,
                signature=factories.signed(svc.user),
            )
            model_out -= quantity - accepted  # the refused part comes back
    db.session.commit()
    stock = db.session.scalar(sa.select(WasteStock).where(WasteStock.enterprise_id == enterprise.id))
    if stock is None:
        assert model_in == 0
        return
    db.session.refresh(stock)
    assert stock.on_hand_kg == model_in - model_out  # exactly, to the gram
    assert stock.reserved_kg == model_reserved
    sums = dict(
        db.session.execute(
            sa.select(LedgerRecord.stage, sa.func.sum(LedgerRecord.quantity_kg))
            .where(LedgerRecord.enterprise_id == enterprise.id)
            .group_by(LedgerRecord.stage)
        ).all()
    )
    ins = kg(sums.get("generation", 0)) + kg(sums.get("returned", 0))
    outs = kg(sums.get("out_of_storage", 0))
    assert stock.on_hand_kg == ins - outs
    assert kg(sums.get("storage", 0)) == kg(sums.get("generation", 0))
    assert kg(sums.get("sent_out", 0)) == outs
