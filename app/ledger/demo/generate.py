"""The benchmark data set's waste ledger and manifests (``flask demo generate``, :mod:`app.demo.generate`).

A documented bulk path, for benchmarks only: 10⁶ manifests through the step services (create,
submit, pickup, receive, process: tens of statements each, with row locks and stock) would take
days on two cores. Instead each manifest is written as the services leave a closed one (read
from a manifest the demo's closed loop produced): the generation record it ships (入库 at the
consignor), the manifest with one line and its source, the six events (create … close), and the
consignor's two ledger records of the pickup (出库, 委外利用/处置). Rows go in with explicit ids,
as tuples (:func:`app.demo.generate.bulk_rows`), by COPY on PostgreSQL (one executemany on
SQLite) of ``CHUNK`` manifests a commit; the number counters and the PostgreSQL id
sequences are set after, so the services carry on from there. What this path does NOT write:
audit entries (the trail starts with what services write afterwards), signatures and stock
(a closed manifest leaves its consignor's stock where it was). Manifests are spread over the
last two calendar years (a year has at most 999,999 serials a prefecture).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import Organization
from app.boxes.models import Box
from app.demo.generate import GenerateContext, bulk_rows, set_sequences
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


MANIFEST_COLUMNS = (
    "id", "number", "origin", "status", "consignor_id", "carrier_id", "receiver_id", "receiver_licence", "route",
    "note", "vehicle_plate", "driver_name", "driver_phone", "created_at", "submitted_at", "picked_up_at",
    "receipt_due_at", "received_at", "processed_at", "closed_at", "reject_reason", "acceptance", "discrepant",
    "overdue", "late_entry", "version",
)  # fmt: skip
LINE_COLUMNS = (
    "id", "manifest_id", "line_no", "waste_code", "waste_name", "category", "physical_form", "hazard", "packaging",
    "quantity_kg", "requested_batches", "received_kg", "accepted_kg", "refusal_reason", "method_code",
    "consumed_kg", "confirmed_unusual",
)  # fmt: skip
# (The record columns left out are NULL: fill, container count, who recorded it.)
RECORD_COLUMNS = (
    "id", "batch_code", "stage", "occurred_at", "origin", "on_site_kg", "available_kg", "created_at",
    "source_batch_code", "manifest_id", "manifest_line_id", "manifest_number", "receiver_name", "method_code",
    "waste_code", "waste_name", "category", "catalogue_edition", "quantity_kg", "box_id", "enterprise_id",
    "facility_code", "container_type", "handler", "destination", "licence_number", "note", "confirmed_unusual",
    "version",
)  # fmt: skip
SOURCE_COLUMNS = ("id", "line_id", "record_id", "quantity_kg", "returned_kg")
EVENT_COLUMNS = (
    "id", "manifest_id", "action", "from_status", "to_status", "at", "recorded_at", "actor", "organization_id",
    "organization_name", "party", "detail",
)  # fmt: skip
COLUMNS = {
    Manifest: MANIFEST_COLUMNS,
    ManifestLine: LINE_COLUMNS,
    LedgerRecord: RECORD_COLUMNS,
    ManifestLineSource: SOURCE_COLUMNS,
    ManifestEvent: EVENT_COLUMNS,
}
ZERO = Decimal(0)
# A generation record's source batch, manifest, line, number, receiver name and method: none yet.
_NOT_SHIPPED = (None, None, None, None, "", None)
_EMPTY_TEXTS = ("",) * 6  # facility, container type, handler, destination, licence number, note


def generate_manifests(session: Session, ctx: GenerateContext) -> None:
    entry = load_catalogue().get(WASTE_CODE)
    assert entry is not None  # the shipped catalogue has the waste carbon's code
    orgs = {o.id: o for o in session.scalars(select(Organization))}
    receivers = [_Party.of(orgs[v]) for k, v in ctx.organisations.items() if k.startswith("receiver:")]
    carriers = [_Party.of(orgs[v]) for k, v in ctx.organisations.items() if k.startswith("carrier:")]
    box_enterprise = {
        box_id: enterprise_id for box_id, enterprise_id in session.execute(select(Box.id, Box.enterprise_id))
    }
    consignors = {org_id: _Party.of(orgs[org_id]) for org_id in set(box_enterprise.values())}
    waste = _Waste(entry.description, entry.category, entry.hazard)
    box_ids = ctx.box_ids
    ids = _next_ids(session)
    serials: Counter[int] = Counter(
        {row.year: row.last_serial for row in session.scalars(select(ManifestCounter)) if row.prefecture == PREFECTURE}
    )
    rng, total = ctx.rng, ctx.plan.manifests
    for begin in range(0, total, CHUNK):
        rows: dict[Any, list[tuple]] = {m: [] for m in TABLES}
        for _ in range(begin, min(begin + CHUNK, total)):
            box_id = box_ids[rng.randrange(len(box_ids))]
            consignor = consignors[box_enterprise[box_id]]
            receiver, carrier = rng.choice(receivers), rng.choice(carriers)
            generated = ctx.now - timedelta(days=7 + rng.random() * SPAN_DAYS)
            created = generated + timedelta(days=1 + rng.random() * 4)
            serials[created.year] += 1
            number = f"{created.year}{PREFECTURE}{serials[created.year]:06d}"
            quantity = Decimal(rng.randrange(500_000, 3_000_000)) / 1000
            _one_manifest(rows, ids, waste, number, consignor, carrier, receiver, box_id, generated, created, quantity)
        for model in TABLES:
            bulk_rows(session, model, COLUMNS[model], rows[model])
        ctx.commit()
        ctx.progress(f"{min(begin + CHUNK, total)} manifests")
    _store_counters(session, serials)
    set_sequences(session, TABLES)
    ctx.counts["manifests"] = total
    ctx.counts["ledger_records"] = 3 * total


@dataclass(frozen=True)
class _Party:
    """What a manifest's rows copy of an organisation."""

    id: int
    name: str
    licence: str

    @classmethod
    def of(cls, org: Organization) -> _Party:
        return cls(org.id, org.name, f"浙危废经第{org.county_code}{org.id:04d}号")


@dataclass(frozen=True)
class _Waste:
    name: str
    category: str
    hazard: str


def _store_counters(session: Session, serials: Counter[int]) -> None:
    for year, serial in serials.items():
        counter = session.get(ManifestCounter, (year, PREFECTURE))
        if counter is None:
            session.add(ManifestCounter(year=year, prefecture=PREFECTURE, last_serial=serial))
        else:
            counter.last_serial = serial
    session.flush()


def _one_manifest(
    rows: dict[Any, list[tuple]],
    ids: dict[str, int],
    waste: _Waste,
    number: str,
    consignor: _Party,
    carrier: _Party,
    receiver: _Party,
    box_id: int,
    generated: datetime,
    created: datetime,
    quantity: Decimal,
) -> None:
    """The rows of one closed manifest, as the services leave them (see the module's docstring),
    as tuples of the ``*_COLUMNS`` above."""
    submitted = created + timedelta(hours=1)
    picked_up = submitted + timedelta(days=1)
    received = picked_up + timedelta(hours=4)
    processed = received + timedelta(days=2)
    manifest_id, line_id = ids["manifests"], ids["manifest_lines"]
    gen_id = ids["ledger_records"]
    ids["manifests"], ids["manifest_lines"], ids["ledger_records"] = manifest_id + 1, line_id + 1, gen_id + 3
    gen_code = f"CS{generated:%Y%m%d}{gen_id:08d}"
    # (waste, quantity, box, enterprise, then the empty texts, not unusual, version 1)
    common = (WASTE_CODE, waste.name, waste.category, "2021", quantity, box_id, consignor.id, *_EMPTY_TEXTS, False, 1)
    records = rows[LedgerRecord]
    # 入库 at the consignor: all of it shipped by the manifest
    records.append((gen_id, gen_code, "generation", generated, "manual", ZERO, ZERO, generated, *_NOT_SHIPPED, *common))
    day = f"{picked_up:%Y%m%d}"
    for offset, stage, prefix, receiver_name, method in (
        (1, "out_of_storage", "CK", "", None),
        (2, "sent_out", "WW", receiver.name, "R7"),
    ):
        rid = gen_id + offset
        records.append(
            (rid, f"{prefix}{day}{rid:08d}", stage, picked_up, "manifest", None, None, picked_up, gen_code,
             manifest_id, line_id, number, receiver_name, method, *common)
        )  # fmt: skip
    rows[Manifest].append(
        (manifest_id, number, "electronic", "closed", consignor.id, carrier.id, receiver.id, receiver.licence,
         f"{consignor.name} → {receiver.name}", "", "浙J·B0001", "基准司机", "13700000000", created, submitted,
         picked_up, picked_up + timedelta(days=7), received, processed, processed, "", "full", False, False, False, 1)
    )  # fmt: skip
    rows[ManifestLine].append(
        (line_id, manifest_id, 1, WASTE_CODE, waste.name, waste.category, "solid", waste.hazard, "吨袋 (ton bags)",
         quantity, f'["{gen_code}"]', quantity, quantity, "", "R7", ZERO, False)
    )  # fmt: skip
    source_id = ids["manifest_line_sources"]
    ids["manifest_line_sources"] = source_id + 1
    rows[ManifestLineSource].append((source_id, line_id, gen_id, quantity, ZERO))
    event_id = ids["manifest_events"]
    ids["manifest_events"] = event_id + 6
    events = rows[ManifestEvent]
    for n, (action, before, after, at, org, party) in enumerate(
        (
            ("create", None, "draft", created, consignor, "consignor"),
            ("submit", "draft", "submitted", submitted, consignor, "consignor"),
            ("pickup", "submitted", "in_transit", picked_up, carrier, "carrier"),
            ("receive", "in_transit", "received", received, receiver, "receiver"),
            ("process", "received", "processed", processed, receiver, "receiver"),
        )
    ):
        events.append(
            (event_id + n, manifest_id, action, before, after, at, at, "bench", org.id, org.name, party, "{}")
        )
    events.append((event_id + 5, manifest_id, "close", "processed", "closed", processed, processed, "system", None, "",
                   "", "{}"))  # fmt: skip
