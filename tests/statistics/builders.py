"""A hand-made data set for the statistics tests (no tests here).

Rows are written directly (not through the ledger's services) so that every timestamp is exactly
where the expected numbers below need it: the ledger and the manifests here are independent
hand-made facts, not one consistent history. The expected figures are computed by hand in the
comments and in the tests of tests/statistics/, never by calling the code under test.

Times are Asia/Shanghai (``sh(...)``). The period of interest is July 2025 (2025-07).

Enterprises: E1 = world.enterprise (天台 park, county 331023), E3 in 331023 outside the park,
E2 = world.other_enterprise (温岭 331081).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from app.accounts.services import Principal
from app.boxes.models import Box, ColourChange, Fill
from app.common.timeutil import SHANGHAI
from app.extensions import db
from app.ledger.models import LedgerRecord, Manifest, ManifestLine
from app.regeneration.models import RegenerationBatch
from app.statistics import services
from tests import factories

_ids = itertools.count(1)


JULY = "2025-07"


def approx(x):
    return pytest.approx(x, abs=1e-6)


def as_(world, key: str) -> Principal:
    return Principal(user=world.users[key])


def park_scope(world):
    return services.resolve_scope(db.session, "park", world.park.id)


def login(app, username: str):
    client = app.test_client()
    r = client.post("/login", data={"username": username, "password": factories.PASSWORD})
    assert r.status_code == 302
    return client


def sh(y, mo, d, h=0, mi=0) -> datetime:
    """A Shanghai wall-clock time as aware UTC."""
    return datetime(y, mo, d, h, mi, tzinfo=SHANGHAI).astimezone(UTC)


def ledger(enterprise, stage: str, code: str, quantity: float, at: datetime) -> LedgerRecord:
    n = next(_ids)
    record = LedgerRecord(
        batch_code=f"T{stage[:2].upper()}{n:08d}",
        stage=stage,
        enterprise_id=enterprise.id,
        waste_code=code,
        waste_name="废活性炭",
        category="HW49",
        catalogue_edition="2021",
        quantity_kg=quantity,
        occurred_at=at,
        origin="manual",
    )
    if stage == "generation":  # a generation batch carries its balances (CHECK constraint)
        record.on_site_kg = record.available_kg = quantity
    db.session.add(record)
    return record


def manifest(
    consignor,
    carrier,
    receiver,
    lines: list[dict],
    *,
    picked=None,
    received=None,
    processed=None,
    rejected=None,
    status="closed",
    overdue=False,
    discrepant=False,
    due=None,
) -> Manifest:
    n = next(_ids)
    m = Manifest(
        number=f"20253310{n:06d}",
        status=status,
        consignor_id=consignor.id,
        carrier_id=carrier.id,
        receiver_id=receiver.id,
        picked_up_at=picked,
        received_at=received,
        processed_at=processed,
        rejected_at=rejected,
        overdue=overdue,
        discrepant=discrepant,
        receipt_due_at=due,
        created_at=picked or sh(2025, 1, 1),
    )
    for i, spec in enumerate(lines, 1):
        m.lines.append(
            ManifestLine(
                line_no=i,
                waste_code=spec.get("code", "900-039-49"),
                waste_name="废活性炭",
                category="HW49",
                hazard="T",
                quantity_kg=spec["qty"],
                received_kg=spec.get("received"),
                accepted_kg=spec.get("accepted", spec.get("received")),
                method_code=spec.get("method"),
                consumed_kg=spec.get("consumed", 0.0),
            )
        )
    db.session.add(m)
    return m


def box(enterprise, created: datetime) -> Box:
    return factories.box(enterprise, now=created)


def fill(
    b: Box,
    at: datetime,
    mass: float,
    kind: str = "replacement",
    removed: float | None = None,
    batch: RegenerationBatch | None = None,
) -> Fill:
    f = Fill(
        box_id=b.id,
        kind=kind,
        filled_at=at,
        mass_kg=mass,
        carbon_type="granular",
        iodine_mg_g=900.0,
        removed_waste_kg=removed,
        regeneration_batch_id=batch.id if batch else None,
    )
    db.session.add(f)
    return f


def colour(b: Box, at: datetime, to: str, *reasons: str) -> ColourChange:
    c = ColourChange(
        box_id=b.id,
        colour=to,
        changed_at=at,
        recorded_at=at,
        reasons=[{"code": r, "level": to, "observed": None, "threshold": None} for r in reasons],
    )
    db.session.add(c)
    return c


@dataclass
class Data:
    world: factories.World
    e3: object
    carrier: object
    boxes: dict


def build(world) -> Data:
    e1, e2 = world.enterprise, world.other_enterprise
    e3 = factories.org("天台县三合化工有限公司", ["generator"], county="331023")
    carrier = factories.org("台州危运物流有限公司", ["carrier"])
    rx = world.service
    db.session.flush()

    # ---- ledger (E1): July 2025 generated 039-49 = 1000 + 500 = 1500; the 041-49 batch is on June 30
    # at 23:59 Shanghai (June). In storage at the end of July: 039-49 = 1500 + 300 (2024) + 100
    # returned − 1200 out = 700; 041-49 = 200.
    for stage in ("generation", "storage"):
        ledger(e1, stage, "900-039-49", 1000.0, sh(2025, 7, 10, 9))
        ledger(e1, stage, "900-039-49", 500.0, sh(2025, 7, 1, 0, 30))  # 2025-06-30 16:30 UTC: still July
        ledger(e1, stage, "900-041-49", 200.0, sh(2025, 6, 30, 23, 59))  # 15:59 UTC: June
        ledger(e1, stage, "900-039-49", 300.0, sh(2024, 7, 5))  # a year earlier (intensity YoY)
    ledger(e1, "out_of_storage", "900-039-49", 1200.0, sh(2025, 7, 20))
    ledger(e1, "returned", "900-039-49", 100.0, sh(2025, 7, 25))
    ledger(e1, "generation", "900-039-49", 888.0, sh(2025, 8, 1, 0, 0))  # August: after the period
    ledger(e3, "generation", "900-039-49", 400.0, sh(2025, 7, 15))
    ledger(e2, "generation", "900-039-49", 9999.0, sh(2025, 7, 15))

    # ---- manifests of E1 picked up in July: M1, M2, M3 (rejected), M4 (in transit, past due)
    manifest(
        e1,
        carrier,
        rx,
        [{"qty": 1000.0, "received": 990.0, "method": "R7", "consumed": 600.0}],
        picked=sh(2025, 7, 20, 10),
        received=sh(2025, 7, 22),
        processed=sh(2025, 7, 28),
        discrepant=True,
    )
    manifest(
        e1,
        carrier,
        rx,
        [
            {"qty": 200.0, "received": 200.0, "method": "D1"},
            {"code": "900-041-49", "qty": 100.0, "received": 100.0, "method": "D10"},
        ],
        picked=sh(2025, 7, 21),
        received=sh(2025, 7, 30),
        processed=sh(2025, 7, 31, 23, 30),
        overdue=True,
    )
    manifest(
        e1,
        carrier,
        rx,
        [{"qty": 100.0, "received": None, "accepted": 0.0}],
        picked=sh(2025, 7, 23),
        rejected=sh(2025, 7, 25),
        status="rejected",
    )
    manifest(e1, carrier, rx, [{"qty": 50.0}], picked=sh(2025, 7, 29), status="in_transit", due=sh(2025, 8, 6))
    # M5: picked up in June, received and processed (cement kiln) in July
    manifest(
        e1,
        carrier,
        rx,
        [{"qty": 300.0, "received": 280.0, "method": "C1"}],
        picked=sh(2025, 6, 28),
        received=sh(2025, 7, 2),
        processed=sh(2025, 7, 3),
        discrepant=True,
    )
    # Processed just after July (00:30 on Aug 1 Shanghai = July 31 16:30 UTC): not July
    manifest(
        e1,
        carrier,
        rx,
        [{"qty": 70.0, "received": 70.0, "method": "D1"}],
        picked=sh(2025, 7, 1, 8),
        received=sh(2025, 7, 2, 8),
        processed=sh(2025, 8, 1, 0, 30),
    )
    # June (previous period): 500 D1 + 500 R7 → share 0.5
    manifest(
        e1,
        carrier,
        rx,
        [{"qty": 500.0, "received": 500.0, "method": "D1"}, {"qty": 500.0, "received": 500.0, "method": "R7"}],
        picked=sh(2025, 6, 10),
        received=sh(2025, 6, 12),
        processed=sh(2025, 6, 15),
    )
    # July 2024 (base year): 100 D1 + 300 R7 → share 0.25
    manifest(
        e1,
        carrier,
        rx,
        [{"qty": 100.0, "received": 100.0, "method": "D1"}, {"qty": 300.0, "received": 300.0, "method": "R7"}],
        picked=sh(2024, 7, 10),
        received=sh(2024, 7, 12),
        processed=sh(2024, 7, 15),
    )
    # E3 (county, outside the park): 400 landfilled in July
    manifest(
        e3,
        carrier,
        rx,
        [{"qty": 400.0, "received": 400.0, "method": "D1"}],
        picked=sh(2025, 7, 5),
        received=sh(2025, 7, 6),
        processed=sh(2025, 7, 7),
    )
    # E2 (another county): 9999 landfilled in July
    manifest(
        e2,
        carrier,
        rx,
        [{"qty": 9999.0, "received": 9999.0, "method": "D1"}],
        picked=sh(2025, 7, 5),
        received=sh(2025, 7, 6),
        processed=sh(2025, 7, 7),
    )

    # ---- boxes and fills
    batch = RegenerationBatch(
        plant_id=rx.id,
        batch_no="RB-1",
        produced_on=date(2025, 7, 5),
        method_code="R7",
        input_kg=3000.0,
        output_kg=2500.0,
        iodine_mg_g=900.0,
        used_kg=2000.0,
    )
    db.session.add(batch)
    b1 = box(e1, sh(2025, 1, 1))
    b2 = box(e1, sh(2025, 1, 1))
    b3 = box(e1, sh(2025, 1, 1))
    b4 = box(e1, sh(2025, 8, 15))  # registered after July: not counted
    b5 = box(e2, sh(2025, 1, 1))
    db.session.flush()
    fill(b1, sh(2025, 6, 1), 2000.0, kind="initial")
    fill(b1, sh(2025, 7, 10), 2000.0, removed=2100.0, batch=batch)  # late: red for saturation before it
    fill(b1, sh(2025, 7, 25), 1000.0, removed=1800.0)  # on time: red only for a sensor reason
    fill(b2, sh(2025, 5, 1), 2000.0, kind="initial")
    fill(b5, sh(2025, 7, 3), 700.0, kind="initial")
    colour(b1, sh(2025, 6, 1), "green")
    colour(b1, sh(2025, 6, 25), "red", "saturation_full")  # clipped to July 1 → July 10: 9 days
    colour(b1, sh(2025, 7, 10), "green")
    colour(b1, sh(2025, 7, 20, 12), "red", "sensor_breakthrough")  # → July 25: 4.5 days
    colour(b1, sh(2025, 7, 25), "green")
    colour(b2, sh(2025, 5, 1), "green")
    colour(b2, sh(2025, 7, 30), "red", "replacement_overdue")  # → end of July: 2 days
    colour(b5, sh(2025, 6, 1), "red", "saturation_full")  # another county: 31 days in July
    db.session.commit()
    return Data(world, e3, carrier, {"b1": b1, "b2": b2, "b3": b3, "b4": b4, "b5": b5})
