"""What a ledger record's revision may change, and applying it: a generation batch's quantity and
its descriptive fields. Its into-storage record mirrors it; the stock follows the quantity. The
later stages come from manifests: they are corrected by revising the manifest."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.common.errors import Conflict, InvalidInput
from app.ledger.models import LedgerRecord, Stage
from app.ledger.services.revision_apply import RECORD_TEXTS, _mass, _text
from app.ledger.services.rules_access import ZERO_KG, kg
from app.ledger.services.stock import lock_stock, refresh_box_colours


def check_record_changes(record: LedgerRecord, raw: dict[str, Any]) -> dict[str, Any]:
    if record.stage != Stage.GENERATION:
        raise Conflict(
            f"台账记录 {record.batch_code} 由联单产生：请更正联单 (a {record.stage} record follows its manifest: "
            "revise the manifest)",
            stage=str(record.stage),
        )
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    if raw.get("quantity_kg") is not None:
        mass = _mass(errors, "quantity_kg", raw["quantity_kg"], "waste_kg")
        committed = kg(record.quantity_kg - (record.available_kg or ZERO_KG))  # on submitted manifests or gone
        if mass is not None and mass < committed:
            errors["quantity_kg"] = [f"cannot be below the {committed} kg already on manifests"]
        elif mass is not None and mass != record.quantity_kg:
            out["quantity_kg"] = str(mass)
    for name, longest in RECORD_TEXTS.items():
        if name in raw:
            value = _text(errors, name, raw[name], longest)
            if name == "waste_name" and value == "":
                errors[name] = ["required"]
            elif value is not None and value != getattr(record, name):
                out[name] = value
    if "container_count" in raw and raw["container_count"] != record.container_count:
        count = raw["container_count"]
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
            errors["container_count"] = ["a whole number ≥ 1"]
        else:
            out["container_count"] = count
    if errors:
        raise InvalidInput("The revision has invalid fields.", errors=errors)
    if not out:
        raise InvalidInput.field("changes", "nothing would change: give the corrected values")
    return out


def apply_record_changes(session: Session, record: LedgerRecord, changes: dict[str, Any], now: datetime) -> list:
    """The batch and its into-storage record take the corrected figures; the stock follows."""
    stock = lock_stock(session, record.enterprise_id, record.waste_code)
    session.refresh(record)
    changes = check_record_changes(record, changes)
    storage = list(
        session.scalars(
            select(LedgerRecord).where(
                LedgerRecord.source_batch_code == record.batch_code, LedgerRecord.stage == Stage.STORAGE
            )
        )
    )
    if "quantity_kg" in changes:
        new = kg(changes["quantity_kg"])
        delta = kg(new - record.quantity_kg)
        assert record.on_site_kg is not None and record.available_kg is not None  # a generation batch
        record.quantity_kg = new
        record.on_site_kg = kg(record.on_site_kg + delta)
        record.available_kg = kg(record.available_kg + delta)
        stock.on_hand_kg = kg(stock.on_hand_kg + delta)
        stock.updated_at = now
    for target in [record, *storage]:  # the into-storage record mirrors its batch (its own facility, note)
        for name, value in changes.items():
            if target is record or name not in ("facility_code", "note"):
                setattr(target, name, kg(value) if name == "quantity_kg" else value)
    record.version = (record.version or 1) + 1
    refresh_box_colours(session, [record.id], now)
    return storage
