"""Re-posting a revised manifest's stock: its moves taken back and made again with the new figures.

Under the stock locks of :mod:`.stock` (the steps' own), in the order of the waste codes. The
manifest's reservation (submitted) or shipment (picked up) and its returns are taken back on the
balances (stock rows, the generation batches' on-site and available kg), then made again from the
lines' corrected quantities: the batches the line came from first, then the oldest. If stock no
longer covers them, 409 and nothing changes (the request rolls back). Then the out-of-storage,
sent-out and returned ledger records are brought to the new figures, one per source batch.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.services import Principal
from app.common.errors import Conflict
from app.ledger.models import (
    PICKED_UP_STATES,
    RECEIVED_STATES,
    LedgerRecord,
    Manifest,
    ManifestLine,
    ManifestLineSource,
    ManifestStatus,
    Stage,
)
from app.ledger.services.rules_access import EPS, ZERO_KG, kg, rules
from app.ledger.services.stock import _new_record, derived_record_fields, lock_stock


def _returned_target(manifest: Manifest, line: ManifestLine) -> Decimal:
    if manifest.status == ManifestStatus.REJECTED:
        return kg(line.quantity_kg)
    if manifest.status in RECEIVED_STATES:
        return kg(kg(line.received_kg) - kg(line.accepted_kg))
    return ZERO_KG


def repost(session: Session, manifest: Manifest) -> list[int]:
    """Take the manifest's stock moves back and make them again with the lines' new figures."""
    shipped = manifest.status in PICKED_UP_STATES
    codes = sorted({line.waste_code for line in manifest.lines})
    stocks = {code: lock_stock(session, manifest.consignor_id, code) for code in codes}
    touched: list[int] = []
    for line in manifest.lines:  # back to before submission, on the balances
        stock = stocks[line.waste_code]
        for s in line.sources:
            record = session.get(LedgerRecord, s.record_id, populate_existing=True)
            assert record is not None and record.available_kg is not None and record.on_site_kg is not None
            left = kg(s.quantity_kg - s.returned_kg)
            record.available_kg = kg(record.available_kg + left)
            if shipped:
                record.on_site_kg = kg(record.on_site_kg + left)
                stock.on_hand_kg = kg(stock.on_hand_kg + left)
            else:
                stock.reserved_kg = kg(stock.reserved_kg - s.quantity_kg)
    need: dict[str, Decimal] = defaultdict(Decimal)
    for line in manifest.lines:
        need[line.waste_code] += line.quantity_kg
    short = {
        f"lines.{i}.quantity_kg": [
            f"only {stocks[line.waste_code].available_kg} kg of {line.waste_code} available; "
            f"{kg(need[line.waste_code])} kg needed"
        ]
        for i, line in enumerate(manifest.lines)
        if need[line.waste_code] > stocks[line.waste_code].available_kg + EPS
    }
    if short:
        raise Conflict("库存不足，不能按此更正 (not enough stock for the corrected quantities)", errors=short)
    for line in manifest.lines:
        stock = stocks[line.waste_code]
        previous = {s.record_id: s for s in line.sources}
        others = session.scalars(
            select(LedgerRecord)
            .where(
                LedgerRecord.enterprise_id == manifest.consignor_id,
                LedgerRecord.waste_code == line.waste_code,
                LedgerRecord.stage == Stage.GENERATION,
                LedgerRecord.available_kg > EPS,
                LedgerRecord.id.not_in(list(previous) or [0]),
            )
            .order_by(LedgerRecord.occurred_at, LedgerRecord.id)
        )
        candidates = [session.get(LedgerRecord, rid) for rid in previous] + list(others)
        remaining = kg(line.quantity_kg)
        kept: list[ManifestLineSource] = []
        for record in candidates:  # the batches it came from first, then the oldest
            assert record is not None and record.available_kg is not None and record.on_site_kg is not None
            take = kg(min(record.available_kg, remaining))
            if take <= EPS:
                continue
            source = previous.get(record.id) or ManifestLineSource(record_id=record.id, record=record)
            source.quantity_kg, source.returned_kg = take, ZERO_KG
            kept.append(source)
            record.available_kg = kg(record.available_kg - take)
            if shipped:
                record.on_site_kg = kg(record.on_site_kg - take)
            touched.append(record.id)
            remaining = kg(remaining - take)
            if remaining <= EPS:
                break
        line.sources[:] = kept
        if shipped:
            stock.on_hand_kg = kg(stock.on_hand_kg - line.quantity_kg)
        else:
            stock.reserved_kg = kg(stock.reserved_kg + line.quantity_kg)
        back = _returned_target(manifest, line)
        for source in reversed(line.sources):  # the last batch loaded is the first given back
            take = kg(min(source.quantity_kg, back))
            if take <= EPS:
                continue
            record = source.record
            assert record.available_kg is not None and record.on_site_kg is not None
            record.on_site_kg = kg(record.on_site_kg + take)
            record.available_kg = kg(record.available_kg + take)
            source.returned_kg = take
            stock.on_hand_kg = kg(stock.on_hand_kg + take)
            back = kg(back - take)
    session.flush()
    return touched


def receipt_flags(session: Session, manifest: Manifest) -> None:
    if manifest.status not in RECEIVED_STATES:
        return
    tolerance = rules(session).quantity_tolerance
    manifest.acceptance = (
        "partial" if any(kg(line.received_kg) - kg(line.accepted_kg) > EPS for line in manifest.lines) else "full"
    )
    manifest.discrepant = any(
        float(abs(kg(line.received_kg) - line.quantity_kg) / line.quantity_kg) > tolerance + 1e-9
        for line in manifest.lines
    )


def sync_derived_records(session: Session, actor: Principal, manifest: Manifest) -> None:
    """Out of storage, sent out and returned records: one per source batch, with its quantity."""
    if manifest.status not in PICKED_UP_STATES:
        return
    existing: dict[tuple, list[LedgerRecord]] = defaultdict(list)
    for record in session.scalars(
        select(LedgerRecord).where(LedgerRecord.manifest_id == manifest.id).order_by(LedgerRecord.id)
    ):
        existing[(record.manifest_line_id, record.stage, record.source_batch_code)].append(record)
    wanted: set[tuple] = set()
    returned_at = manifest.rejected_at or manifest.received_at or manifest.picked_up_at
    for line in manifest.lines:
        for source in line.sources:
            batch = source.record
            for stage, quantity in (
                (Stage.OUT_OF_STORAGE, source.quantity_kg),
                (Stage.SENT_OUT, source.quantity_kg),
                (Stage.RETURNED, source.returned_kg),
            ):
                if quantity <= EPS:
                    continue
                key = (line.id, stage, batch.batch_code)
                wanted.add(key)
                found = existing.get(key)
                fields: dict[str, Any] = {"quantity_kg": kg(quantity), "waste_name": line.waste_name}
                if stage == Stage.SENT_OUT:
                    fields.update(receiver_name=manifest.receiver.name, licence_number=manifest.receiver_licence)
                if stage != Stage.RETURNED:
                    fields["destination"] = manifest.receiver.name
                elif not found:
                    fields["note"] = "更正后退回 (returned as corrected by a revision)"
                if found:
                    for name, value in fields.items():
                        if getattr(found[0], name) != value:
                            setattr(found[0], name, value)
                    for extra in found[1:]:
                        session.delete(extra)
                    continue
                _new_record(
                    session,
                    stage,
                    **derived_record_fields(manifest, line, batch, actor)
                    | {"occurred_at": returned_at if stage == Stage.RETURNED else manifest.picked_up_at}
                    | fields,
                )
    for key, records in existing.items():
        if key not in wanted and key[1] in (Stage.OUT_OF_STORAGE, Stage.SENT_OUT, Stage.RETURNED):
            for record in records:
                session.delete(record)  # its last image stays in the audit trail and the revision's before
