"""Shared helpers for the ledger, manifest and regeneration tests (no tests here).

A "loop" is the world of tests/factories.py plus a carrier, a licensed receiver/regenerator
(the carbon service), a box at the enterprise and a replacement that put waste carbon in stock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.extensions import db
from app.ledger.models import LedgerRecord, Manifest, WasteStock
from tests import factories

HW49_LICENCE = {
    "number": "浙危废经第331000012号",
    "kind": "hw_operation",
    "waste_codes": ["HW49"],
    "valid_until": "2030-12-31",
}


@dataclass
class Loop:
    world: factories.World
    carrier: object
    box: object
    batch_code: str


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def ago(**kw) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(**kw)


def build_loop(
    world,
    api,
    removed_kg: float = 1800.0,
    replaced_at: datetime | None = None,
    filled_at: datetime | None = None,
    **box_extra,
) -> Loop:
    carrier = factories.org(
        "台州危运物流有限公司",
        ["carrier"],
        licences=[{"number": "浙交运管许可台字331000000001号", "kind": "transport", "waste_codes": []}],
    )
    factories.user(carrier, "drv")
    world.service.licences = [HW49_LICENCE]
    box = factories.box(world.enterprise, world.service, **box_extra)
    db.session.commit()
    replaced_at = replaced_at or ago(days=2)
    filled_at = filled_at or replaced_at - timedelta(days=10)
    r = api.post(
        f"/api/v1/boxes/{box.code}/fills", {"mass_kg": 2000, "iodine_mg_g": 900, "filled_at": iso(filled_at)}, as_="svc"
    )
    assert r.status_code == 201, r.get_json()
    r = api.post(
        f"/api/v1/boxes/{box.code}/fills",
        {
            "mass_kg": 2000,
            "iodine_mg_g": 880,
            "filled_at": iso(replaced_at),
            "removed_waste_kg": removed_kg,
            "confirm_unusual": True,  # some tests remove more than 2000 kg + 35 % (unusual, confirmed)
        },
        as_="svc",
    )
    assert r.status_code == 201, r.get_json()
    batch_code = r.get_json()["ledger_batch_code"]
    assert batch_code and batch_code.startswith("CS")
    return Loop(world, carrier, box, batch_code)


def manifest_body(loop: Loop, quantity: float = 1800.0, **extra) -> dict:
    line = {"waste_code": "900-039-49", "physical_form": "solid", "packaging": "吨袋", "quantity_kg": quantity}
    line.update(extra.pop("line", {}))
    return {"carrier_id": loop.carrier.id, "receiver_id": loop.world.service.id, "lines": [line], **extra}


def new_manifest(api, loop: Loop, quantity: float = 1800.0, submit: bool = False, **extra) -> dict:
    r = api.post("/api/v1/manifests", manifest_body(loop, quantity, submit=submit, **extra), as_="ent")
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def stock_row(enterprise_id: int, code: str = "900-039-49") -> tuple[float, float]:
    db.session.rollback()  # read what is committed
    row = db.session.scalar(
        select(WasteStock).where(WasteStock.enterprise_id == enterprise_id, WasteStock.waste_code == code)
    )
    return (row.on_hand_kg, row.reserved_kg) if row else (0.0, 0.0)


def stock_api(api, as_: str = "ent", code: str = "900-039-49") -> dict:
    r = api.get("/api/v1/stock", as_=as_)
    assert r.status_code == 200, r.get_json()
    return next((i for i in r.get_json()["items"] if i["waste_code"] == code), {})


def manifest_status(number: str) -> str:
    db.session.rollback()
    return db.session.scalar(select(Manifest.status).where(Manifest.number == number))


def ledger_count() -> int:
    db.session.rollback()
    return len(db.session.scalars(select(LedgerRecord.id)).all())


def walk_to(api, number: str, state: str) -> dict:
    """Move a manifest on from where it is (submitted or later) through pickup, receipt and processing."""
    order = ["submitted", "in_transit", "received", "closed"]
    current = api.get(f"/api/v1/manifests/{number}", as_="ent").get_json()
    for step in order[order.index(current["status"]) + 1 : order.index(state) + 1]:
        lines = current["lines"]
        if step == "in_transit":
            r = api.post(
                f"/api/v1/manifests/{number}/pickup", {"vehicle_plate": "浙J12345", "driver_name": "王师傅"}, as_="drv"
            )
        elif step == "received":
            r = api.post(
                f"/api/v1/manifests/{number}/receive",
                {"lines": [{"line_no": x["line_no"], "received_kg": x["quantity_kg"]} for x in lines]},
                as_="svc",
            )
        else:
            r = api.post(
                f"/api/v1/manifests/{number}/process",
                {"lines": [{"line_no": x["line_no"], "method_code": "R7"} for x in lines]},
                as_="svc",
            )
        assert r.status_code == 200, r.get_json()
        current = r.get_json()
    return current


def insert_manifests(consignor, carrier, receiver, count: int, *, status: str = "submitted", start: int = 0, **line):
    """``count`` manifests of one line each, written as rows (no steps): for the registry and the
    lists' pagination, where only what is stored matters. Numbers are unique from ``start``."""
    from decimal import Decimal

    from app.ledger.models import ManifestLine

    created = []
    for i in range(start, start + count):
        when = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=i)
        manifest = Manifest(
            number=f"2026331000{i:04d}"[-14:],
            status=status,
            consignor_id=consignor.id,
            carrier_id=carrier.id,
            receiver_id=receiver.id,
            created_at=when,
            submitted_at=when,
            picked_up_at=when if status != "submitted" else None,
            vehicle_plate="浙J12345",
        )
        manifest.lines = [
            ManifestLine(
                line_no=1,
                waste_code=line.get("waste_code", "900-039-49"),
                waste_name=line.get("waste_name", "废活性炭"),
                category="HW49",
                hazard="T",
                quantity_kg=Decimal(line.get("quantity_kg", "1234.567")),
            )
        ]
        db.session.add(manifest)
        created.append(manifest)
    db.session.commit()
    return created
