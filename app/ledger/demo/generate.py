"""The benchmark data set's waste ledger and manifests (``flask demo generate``, :mod:`app.demo.generate`).

A documented bulk path, for benchmarks only: 10⁶ manifests through the step services (create,
submit, pickup, receive, process: tens of statements each, with row locks and stock) would take
days on two cores. Instead each manifest is written as the services leave a closed one (read
from a manifest the demo's closed loop produced): the generation record it ships (入库 at the
consignor), the manifest with one line and its source, the six events (create … close), and the
consignor's two ledger records of the pickup (出库, 委外利用/处置). Rows go in with explicit ids,
by COPY on PostgreSQL (one executemany on SQLite) of ``CHUNK`` manifests a commit; the number counters and the PostgreSQL id
sequences are set after, so the services carry on from there. What this path does NOT write:
audit entries (the trail starts with what services write afterwards), signatures and stock
(a closed manifest leaves its consignor's stock where it was). Manifests are spread over the
last two calendar years (a year has at most 999,999 serials a prefecture).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import Organization
from app.boxes.models import Box
from app.demo.generate import GenerateContext, bulk_insert, set_sequences
from app.ledger.catalogue import load_catalogue
from app.ledger.models import (
    LedgerRecord,
    Manifest,
    ManifestCounter,
    ManifestEvent,
    ManifestLine,
    ManifestLineSource,
)

CHUNK = 5_000  # manifests per commit
PREFECTURE = "3310"  # 浙江 台州
WASTE_CODE = "900-039-49"
SPAN_DAYS = 690  # generation dates: the last 690 days up to a week ago
TABLES = (Manifest, ManifestLine, LedgerRecord, ManifestLineSource, ManifestEvent)  # in foreign-key order


def _next_ids(session: Session) -> dict[str, int]:
    return {m.__tablename__: (session.scalar(select(func.max(m.id))) or 0) + 1 for m in TABLES}


def generate_manifests(session: Session, ctx: GenerateContext) -> None:
    entry = load_catalogue().get(WASTE_CODE)
    assert entry is not None  # the shipped catalogue has the waste carbon's code
    orgs = {o.id: o for o in session.scalars(select(Organization))}
    receivers = [orgs[v] for k, v in ctx.organisations.items() if k.startswith("receiver:")]
    carriers = [orgs[v] for k, v in ctx.organisations.items() if k.startswith("carrier:")]
    box_enterprise = {
        box_id: enterprise_id for box_id, enterprise_id in session.execute(select(Box.id, Box.enterprise_id))
    }
    box_ids = ctx.box_ids
    ids = _next_ids(session)
    serials: Counter[int] = Counter(
        {row.year: row.last_serial for row in session.scalars(select(ManifestCounter)) if row.prefecture == PREFECTURE}
    )
    rng, total = ctx.rng, ctx.plan.manifests
    for begin in range(0, total, CHUNK):
        rows: dict[str, list[dict[str, Any]]] = {m.__tablename__: [] for m in TABLES}
        for _ in range(begin, min(begin + CHUNK, total)):
            box_id = box_ids[rng.randrange(len(box_ids))]
            consignor = orgs[box_enterprise[box_id]]
            receiver, carrier = rng.choice(receivers), rng.choice(carriers)
            generated = ctx.now - timedelta(days=7 + rng.random() * SPAN_DAYS)
            created = generated + timedelta(days=1 + rng.random() * 4)
            serials[created.year] += 1
            number = f"{created.year}{PREFECTURE}{serials[created.year]:06d}"
            quantity = Decimal(rng.randrange(500_000, 3_000_000)) / 1000
            _one_manifest(rows, ids, entry, number, consignor, carrier, receiver, box_id, generated, created, quantity)
        for model in TABLES:
            bulk_insert(session, model, rows[model.__tablename__])
        ctx.commit()
        ctx.progress(f"{min(begin + CHUNK, total)} manifests")
    _store_counters(session, serials)
    set_sequences(session, TABLES)
    ctx.counts["manifests"] = total
    ctx.counts["ledger_records"] = 3 * total


def _store_counters(session: Session, serials: Counter[int]) -> None:
    for year, serial in serials.items():
        counter = session.get(ManifestCounter, (year, PREFECTURE))
        if counter is None:
            session.add(ManifestCounter(year=year, prefecture=PREFECTURE, last_serial=serial))
        else:
            counter.last_serial = serial
    session.flush()


def _take(ids: dict[str, int], table: str) -> int:
    value = ids[table]
    ids[table] = value + 1
    return value


def _one_manifest(
    rows: dict[str, list[dict[str, Any]]],
    ids: dict[str, int],
    entry: Any,
    number: str,
    consignor: Organization,
    carrier: Organization,
    receiver: Organization,
    box_id: int,
    generated: datetime,
    created: datetime,
    quantity: Decimal,
) -> None:
    """The rows of one closed manifest, as the services leave them (see the module's docstring)."""
    submitted = created + timedelta(hours=1)
    picked_up = submitted + timedelta(days=1)
    received = picked_up + timedelta(hours=4)
    processed = received + timedelta(days=2)
    record = {
        "waste_code": WASTE_CODE,
        "waste_name": entry.description,
        "category": entry.category,
        "catalogue_edition": "2021",
        "quantity_kg": quantity,
        "box_id": box_id,
        "enterprise_id": consignor.id,
        "facility_code": "",
        "container_type": "",
        "handler": "",
        "destination": "",
        "receiver_name": "",
        "licence_number": "",
        "note": "",
        "confirmed_unusual": False,
        "version": 1,
        # (one executemany needs the same columns in every row)
        "source_batch_code": None,
        "fill_id": None,
        "manifest_id": None,
        "manifest_line_id": None,
        "manifest_number": None,
        "method_code": None,
        "on_site_kg": None,
        "available_kg": None,
        "container_count": None,
        "recorded_by_user_id": None,
    }
    gen_id = _take(ids, "ledger_records")
    gen_code = f"CS{generated:%Y%m%d}{gen_id:08d}"
    manifest_id, line_id = _take(ids, "manifests"), _take(ids, "manifest_lines")
    records = rows["ledger_records"]
    records.append(
        record
        | {
            "id": gen_id,
            "batch_code": gen_code,
            "stage": "generation",
            "occurred_at": generated,
            "origin": "manual",
            "on_site_kg": Decimal(0),  # all of it shipped by the manifest
            "available_kg": Decimal(0),
            "created_at": generated,
        }
    )
    for stage, prefix in (("out_of_storage", "CK"), ("sent_out", "WW")):
        rid = _take(ids, "ledger_records")
        records.append(
            record
            | {
                "id": rid,
                "batch_code": f"{prefix}{picked_up:%Y%m%d}{rid:08d}",
                "stage": stage,
                "occurred_at": picked_up,
                "source_batch_code": gen_code,
                "origin": "manifest",
                "manifest_id": manifest_id,
                "manifest_line_id": line_id,
                "manifest_number": number,
                "receiver_name": receiver.name if stage == "sent_out" else "",
                "method_code": "R7" if stage == "sent_out" else None,
                "created_at": picked_up,
            }
        )
    licence = f"浙危废经第{receiver.county_code}{receiver.id:04d}号"
    rows["manifests"].append(
        {
            "id": manifest_id,
            "number": number,
            "origin": "electronic",
            "status": "closed",
            "consignor_id": consignor.id,
            "carrier_id": carrier.id,
            "receiver_id": receiver.id,
            "receiver_licence": licence,
            "route": f"{consignor.name} → {receiver.name}",
            "note": "",
            "vehicle_plate": "浙J·B0001",
            "driver_name": "基准司机",
            "driver_phone": "13700000000",
            "created_at": created,
            "submitted_at": submitted,
            "picked_up_at": picked_up,
            "receipt_due_at": picked_up + timedelta(days=7),
            "received_at": received,
            "processed_at": processed,
            "closed_at": processed,
            "reject_reason": "",
            "acceptance": "full",
            "discrepant": False,
            "overdue": False,
            "late_entry": False,
            "version": 1,
        }
    )
    rows["manifest_lines"].append(
        {
            "id": line_id,
            "manifest_id": manifest_id,
            "line_no": 1,
            "waste_code": WASTE_CODE,
            "waste_name": entry.description,
            "category": entry.category,
            "physical_form": "solid",
            "hazard": entry.hazard,
            "packaging": "吨袋 (ton bags)",
            "quantity_kg": quantity,
            "requested_batches": [gen_code],
            "received_kg": quantity,
            "accepted_kg": quantity,
            "refusal_reason": "",
            "method_code": "R7",
            "consumed_kg": Decimal(0),
            "confirmed_unusual": False,
        }
    )
    rows["manifest_line_sources"].append(
        {
            "id": _take(ids, "manifest_line_sources"),
            "line_id": line_id,
            "record_id": gen_id,
            "quantity_kg": quantity,
            "returned_kg": Decimal(0),
        }
    )
    steps = (
        ("create", None, "draft", created, consignor, "consignor"),
        ("submit", "draft", "submitted", submitted, consignor, "consignor"),
        ("pickup", "submitted", "in_transit", picked_up, carrier, "carrier"),
        ("receive", "in_transit", "received", received, receiver, "receiver"),
        ("process", "received", "processed", processed, receiver, "receiver"),
        ("close", "processed", "closed", processed, None, None),
    )
    for action, before, after, at, org, party in steps:
        rows["manifest_events"].append(
            {
                "id": _take(ids, "manifest_events"),
                "manifest_id": manifest_id,
                "action": action,
                "from_status": before,
                "to_status": after,
                "at": at,
                "recorded_at": at,
                "actor": "bench" if org is not None else "system",
                "organization_id": org.id if org is not None else None,
                "organization_name": org.name if org is not None else "",
                "party": party or "",
                "detail": {},
            }
        )
