"""Stock rows (locked per enterprise and waste code), ledger batches and the stock moves of a manifest."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.services import Principal
from app.boxes.models import Box
from app.common.errors import Conflict
from app.common.timeutil import local_date, utcnow
from app.ledger.locking import acquire_write_lock, insert_ignore
from app.ledger.models import (
    STAGE_PREFIX,
    LedgerRecord,
    Manifest,
    ManifestLine,
    ManifestLineSource,
    Stage,
    WasteStock,
)
from app.ledger.services.rules_access import EPS, ZERO_KG, kg


def lock_stock(session: Session, enterprise_id: int, waste_code: str) -> WasteStock:
    """The (enterprise, waste code) stock row, created if missing, locked until commit."""
    acquire_write_lock(session)
    stmt = (
        select(WasteStock)
        .where(WasteStock.enterprise_id == enterprise_id, WasteStock.waste_code == waste_code)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    stock = session.scalar(stmt)
    if stock is None:
        insert_ignore(
            session,
            WasteStock,
            {
                "enterprise_id": enterprise_id,
                "waste_code": waste_code,
                "on_hand_kg": ZERO_KG,
                "reserved_kg": ZERO_KG,
                "updated_at": utcnow(),
            },
            ["enterprise_id", "waste_code"],
        )
        stock = session.scalars(stmt).one()  # inserted now, or by the concurrent insert that won
    return stock


def _fresh_records(session: Session, ids: Iterable[int]) -> dict[int, LedgerRecord]:
    """Re-read generation batches after their stock row is locked (another request may have moved them)."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    rows = session.scalars(
        select(LedgerRecord).where(LedgerRecord.id.in_(ids)).execution_options(populate_existing=True)
    )
    return {r.id: r for r in rows}


def _new_record(session: Session, stage: Stage, **fields: Any) -> LedgerRecord:
    record = LedgerRecord(batch_code="tmp-" + uuid.uuid4().hex[:30], stage=stage, **fields)
    session.add(record)
    session.flush()
    # Batch code: stage prefix + local date + the record id; unique and sortable (HJ 1259 批次编码).
    record.batch_code = f"{STAGE_PREFIX[stage]}{local_date(record.occurred_at):%Y%m%d}{record.id:08d}"
    return record


def refresh_box_colours(session: Session, record_ids: Iterable[int], now: datetime) -> None:
    """Waste moving changes the colour of the boxes it came from (held on site, not on a manifest)."""
    from app.boxes.services import refresh_colours

    box_ids = set(
        session.scalars(
            select(LedgerRecord.box_id).where(
                LedgerRecord.id.in_(list(set(record_ids))), LedgerRecord.box_id.is_not(None)
            )
        )
    )
    if box_ids:
        refresh_colours(session, list(session.scalars(select(Box).where(Box.id.in_(box_ids)))), now)


# ---------------------------------------------------------------- stock moves


def _lines_by_code(manifest: Manifest) -> dict[str, list[ManifestLine]]:
    grouped: dict[str, list[ManifestLine]] = defaultdict(list)
    for line in manifest.lines:
        grouped[line.waste_code].append(line)
    return grouped


def _reserve(session: Session, manifest: Manifest) -> None:
    """Allocate each line to generation batches and reserve the stock (locks in code order)."""
    grouped = _lines_by_code(manifest)
    stocks = {code: lock_stock(session, manifest.consignor_id, code) for code in sorted(grouped)}
    short: dict[str, list[str]] = {}
    for code, lines in grouped.items():
        need = kg(sum(line.quantity_kg for line in lines))
        if need > stocks[code].available_kg + EPS:
            for line in lines:
                short[f"lines.{line.line_no - 1}.quantity_kg"] = [
                    f"only {float(stocks[code].available_kg):g} kg of {code} available in stock; {float(need):g} kg needed"
                ]
    if short:
        raise Conflict("库存不足，不能提交 (not enough stock for this manifest)", errors=short)
    for code, lines in grouped.items():
        for line in lines:
            if line.requested_batches:
                named = {
                    r.batch_code: r
                    for r in session.scalars(
                        select(LedgerRecord)
                        .where(LedgerRecord.batch_code.in_(line.requested_batches))
                        .execution_options(populate_existing=True)
                    )
                }
                candidates = [named[c] for c in line.requested_batches if c in named]
            else:
                candidates = list(
                    session.scalars(
                        select(LedgerRecord)
                        .where(
                            LedgerRecord.enterprise_id == manifest.consignor_id,
                            LedgerRecord.waste_code == code,
                            LedgerRecord.stage == Stage.GENERATION,
                            LedgerRecord.available_kg > EPS,
                        )
                        .order_by(LedgerRecord.occurred_at, LedgerRecord.id)
                        .execution_options(populate_existing=True)
                    )
                )
            remaining = kg(line.quantity_kg)
            for record in candidates:  # oldest first: waste leaves in the order it arrived
                take = kg(min(record.available_kg or ZERO_KG, remaining))
                if take <= EPS:
                    continue
                assert record.available_kg is not None  # take > 0: a generation record, with its balances
                record.available_kg = kg(record.available_kg - take)
                line.sources.append(ManifestLineSource(record_id=record.id, quantity_kg=take))
                remaining = kg(remaining - take)
                if remaining <= EPS:
                    break
            if remaining > EPS:
                raise Conflict(
                    "所选批次的剩余量不足 (the named batches do not hold this quantity)",
                    errors={
                        f"lines.{line.line_no - 1}.source_batches": [
                            f"{float(remaining):g} kg more than the named batches hold"
                        ]
                    },
                )
        stocks[code].reserved_kg = kg(stocks[code].reserved_kg + sum(kg(line.quantity_kg) for line in lines))
        stocks[code].updated_at = utcnow()
    session.flush()


def _release(session: Session, manifest: Manifest) -> list[int]:
    """Undo a reservation (cancel after submit)."""
    grouped = _lines_by_code(manifest)
    stocks = {code: lock_stock(session, manifest.consignor_id, code) for code in sorted(grouped)}
    touched = []
    for code, lines in grouped.items():
        records = _fresh_records(session, [s.record_id for line in lines for s in line.sources])
        for line in lines:
            for source in line.sources:
                record = records[source.record_id]
                assert record.available_kg is not None  # sources are generation records (balances CHECK)
                record.available_kg = kg(record.available_kg + source.quantity_kg)
                touched.append(record.id)
            line.sources.clear()
        stocks[code].reserved_kg = kg(
            max(stocks[code].reserved_kg - sum(kg(line.quantity_kg) for line in lines), ZERO_KG)
        )
    return touched


def derived_record_fields(
    manifest: Manifest, line: ManifestLine, batch: LedgerRecord, actor: Principal
) -> dict[str, Any]:
    """The columns every record derived from a manifest line's source batch carries (out of
    storage, sent out, returned), whether a step writes it or a revision re-posts it."""
    return {
        "enterprise_id": manifest.consignor_id,
        "waste_code": line.waste_code,
        "waste_name": line.waste_name,
        "category": line.category,
        "catalogue_edition": batch.catalogue_edition,
        "source_batch_code": batch.batch_code,
        "origin": "manifest",
        "box_id": batch.box_id,
        "manifest_id": manifest.id,
        "manifest_line_id": line.id,
        "manifest_number": manifest.number,
        "handler": actor.label,
    }


def _ship(session: Session, manifest: Manifest, at: datetime, actor: Principal) -> list[int]:
    """Out of storage (出库) and sent out (委外利用/处置) records per source batch; stock leaves."""
    grouped = _lines_by_code(manifest)
    stocks = {code: lock_stock(session, manifest.consignor_id, code) for code in sorted(grouped)}
    touched = []
    for code, lines in grouped.items():
        records = _fresh_records(session, [s.record_id for line in lines for s in line.sources])
        total = kg(sum(kg(line.quantity_kg) for line in lines))
        stock = stocks[code]
        if total > stock.on_hand_kg + EPS:  # an invariant: reservations never exceed what is on hand
            raise Conflict(f"库存不足 (stock of {code} is {float(stock.on_hand_kg):g} kg, {float(total):g} kg to ship)")
        for line in lines:
            for source in line.sources:
                record = records[source.record_id]
                assert record.on_site_kg is not None  # sources are generation records (balances CHECK)
                record.on_site_kg = kg(record.on_site_kg - source.quantity_kg)
                touched.append(record.id)
                common = derived_record_fields(manifest, line, record, actor) | dict(
                    quantity_kg=source.quantity_kg, occurred_at=at, destination=manifest.receiver.name
                )
                _new_record(session, Stage.OUT_OF_STORAGE, **common)
                _new_record(
                    session,
                    Stage.SENT_OUT,
                    receiver_name=manifest.receiver.name,
                    licence_number=manifest.receiver_licence,
                    **common,
                )
        stock.on_hand_kg = kg(stock.on_hand_kg - total)
        stock.reserved_kg = kg(max(stock.reserved_kg - total, ZERO_KG))
        stock.updated_at = utcnow()
    return touched


def _return(
    session: Session, manifest: Manifest, returns: dict[int, Any], at: datetime, actor: Principal, reason: str
) -> list[int]:
    """Refused waste goes back into the consignor's storage (退回入库), into the batches it came from."""
    lines = {line.id: line for line in manifest.lines}
    returns = {line_id: kg(q) for line_id, q in returns.items()}
    codes = sorted({lines[line_id].waste_code for line_id, q in returns.items() if q > EPS})
    stocks = {code: lock_stock(session, manifest.consignor_id, code) for code in codes}
    records = _fresh_records(session, [s.record_id for line in manifest.lines for s in line.sources])
    touched = []
    for line_id, quantity in returns.items():
        line = lines[line_id]
        remaining = kg(quantity)
        for source in reversed(line.sources):  # the last batch loaded is the first given back
            take = kg(min(source.quantity_kg - source.returned_kg, remaining))
            if take <= EPS:
                continue
            record = records[source.record_id]
            # sources are generation records (balances CHECK)
            assert record.on_site_kg is not None and record.available_kg is not None
            record.on_site_kg = kg(record.on_site_kg + take)
            record.available_kg = kg(record.available_kg + take)
            source.returned_kg = kg(source.returned_kg + take)
            touched.append(record.id)
            _new_record(
                session,
                Stage.RETURNED,
                quantity_kg=take,
                occurred_at=at,
                note=f"接受人拒收退回 (refused by the receiver): {reason}"[:2000],
                **derived_record_fields(manifest, line, record, actor),
            )
            remaining = kg(remaining - take)
            if remaining <= EPS:
                break
        stock = stocks[line.waste_code]
        stock.on_hand_kg = kg(stock.on_hand_kg + quantity - remaining)
        stock.updated_at = utcnow()
    return touched
