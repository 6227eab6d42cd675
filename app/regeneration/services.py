"""Regeneration batches: a plant consumes waste carbon it received on manifests and produces
regenerated carbon with an iodine value; fills can name the batch their carbon came from.

Both balances are guarded by row locks: a manifest line's accepted quantity (never consumed
twice) and a batch's output (never filled twice). No Flask here.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import false, or_, select, true
from sqlalchemy.orm import Session

from app.accounts.models import Organization
from app.accounts.services import Principal, enterprise_scope
from app.boxes.models import Box, Fill
from app.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.common.timeutil import local_date, utcnow
from app.ledger.locking import acquire_write_lock
from app.ledger.models import RECEIVED_STATES, Manifest, ManifestLine
from app.ledger.services import EPS, kg, methods, rules
from app.ledger.services.rules_access import ZERO_KG, is_number
from app.regeneration.models import RegenerationBatch, RegenerationInput

CONSUMABLE_STATES = RECEIVED_STATES


def batch_scope(actor: Principal):
    """The plant sees its batches; regulators and parks those of plants in their jurisdiction."""
    if actor.is_operator:
        return true()
    if actor.organization is None or actor.is_device:
        return false()
    plants = select(Organization.id).where(enterprise_scope(actor))
    return or_(RegenerationBatch.plant_id == actor.organization.id, RegenerationBatch.plant_id.in_(plants))


def list_batches(session: Session, actor: Principal, plant: int | None = None, available_only: bool = False):
    query = select(RegenerationBatch).where(batch_scope(actor))
    if plant:
        query = query.where(RegenerationBatch.plant_id == plant)
    if available_only:
        query = query.where(RegenerationBatch.output_kg - RegenerationBatch.used_kg > EPS)
    return query.order_by(RegenerationBatch.produced_on.desc(), RegenerationBatch.id.desc())


def get_batch(session: Session, actor: Principal, batch_id: int) -> RegenerationBatch:
    batch = session.scalar(select(RegenerationBatch).where(RegenerationBatch.id == batch_id, batch_scope(actor)))
    if batch is None:
        raise NotFound(f"再生批次 {batch_id} 不存在或无权查看 (regeneration batch {batch_id} not found)")
    return batch


def record_batch(
    session: Session, actor: Principal, data: dict[str, Any], now: datetime | None = None
) -> RegenerationBatch:
    now = now or utcnow()
    plant = actor.organization
    if plant is None or actor.is_device or not plant.has_role("regenerator"):
        raise Forbidden("只有再生单位可以登记再生批次 (only a regeneration plant records regeneration batches)")
    errors: dict[str, list[str]] = {}
    method = (data.get("method_code") or "").upper()
    known = methods(session)
    if method not in known:
        errors["method_code"] = [f"one of {', '.join(known)}"]
    elif known[method].kind != "utilisation":
        errors["method_code"] = [f"{method} is a disposal method; regeneration is utilisation (usually R7 or R15)"]
    produced_on = data.get("produced_on") or local_date(now)
    if produced_on > local_date(now + timedelta(minutes=5)):
        errors["produced_on"] = ["cannot be in the future"]
    for name in ("output_kg", "iodine_mg_g"):
        value = data.get(name)
        if not is_number(value) or value <= 0 or (name == "output_kg" and kg(value) <= 0):
            errors[name] = ["must be greater than 0"]
    carbon_codes = rules(session).waste_carbon_codes
    wanted: dict[int, Decimal] = defaultdict(Decimal)
    places: dict[int, list[int]] = defaultdict(list)
    raw_inputs = data.get("inputs") or []
    last_received: date | None = None
    if not raw_inputs:
        errors["inputs"] = ["at least one received manifest line is required"]
    for i, item in enumerate(raw_inputs):
        place = f"inputs.{i}"
        quantity = item.get("quantity_kg")
        if not is_number(quantity) or kg(quantity) <= 0:
            errors.setdefault(f"{place}.quantity_kg", []).append("must be greater than 0 (at least 1 g)")
            continue
        quantity = kg(quantity)
        manifest = session.scalar(
            select(Manifest).where(Manifest.number == item.get("manifest_number"), Manifest.receiver_id == plant.id)
        )
        if manifest is None:
            errors.setdefault(f"{place}.manifest_number", []).append("no manifest with this number was sent to you")
            continue
        if manifest.status not in CONSUMABLE_STATES:
            errors.setdefault(f"{place}.manifest_number", []).append(
                f"manifest {manifest.number} is {manifest.status}: only received waste can be regenerated"
            )
            continue
        line = next((x for x in manifest.lines if x.line_no == item.get("line_no")), None)
        if line is None:
            errors.setdefault(f"{place}.line_no", []).append(
                f"manifest {manifest.number} has no line {item.get('line_no')}"
            )
            continue
        if line.waste_code not in carbon_codes:
            errors.setdefault(f"{place}.line_no", []).append(
                f"{line.waste_code} is not waste activated carbon ({', '.join(carbon_codes)})"
            )
            continue
        wanted[line.id] += quantity
        places[line.id].append(i)
        if manifest.received_at is not None:
            received = local_date(manifest.received_at)
            last_received = received if last_received is None else max(last_received, received)
    # Carbon cannot be regenerated before it arrived: the batch is not dated before the day its
    # last input was received.
    if last_received is not None and "produced_on" not in errors and produced_on < last_received:
        errors["produced_on"] = [f"cannot be before its inputs were received ({last_received})"]
    batch_no = (data.get("batch_no") or "").strip()
    if errors:
        raise InvalidInput("The regeneration batch has invalid fields.", errors=errors)
    if session.scalar(
        select(RegenerationBatch.id).where(
            RegenerationBatch.plant_id == plant.id, RegenerationBatch.batch_no == batch_no
        )
    ):
        raise Conflict(f"再生批次号 {batch_no} 已存在 (batch number exists)", errors={"batch_no": ["already recorded"]})
    # Lock the lines (in id order, so two batches never deadlock) and re-read what is left.
    acquire_write_lock(session)
    lines = {
        line.id: line
        for line in session.scalars(
            select(ManifestLine)
            .where(ManifestLine.id.in_(sorted(wanted)))
            .order_by(ManifestLine.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    for line_id, quantity in wanted.items():
        line = lines[line_id]
        left = kg((line.accepted_kg or ZERO_KG) - line.consumed_kg)
        if quantity > left + EPS:
            for i in places[line_id]:
                errors.setdefault(f"inputs.{i}.quantity_kg", []).append(
                    f"line {line.line_no} of manifest {line.manifest.number} has {float(left):g} kg received and not "
                    f"yet consumed; {float(quantity):g} kg requested"
                )
    input_kg = kg(sum(wanted.values()))
    if not errors and kg(data["output_kg"]) > input_kg:
        errors["output_kg"] = [f"cannot exceed the {float(input_kg):g} kg of waste carbon consumed"]
    if errors:
        raise InvalidInput("The regeneration batch has invalid fields.", errors=errors)
    batch = RegenerationBatch(
        plant_id=plant.id,
        batch_no=batch_no,
        produced_on=produced_on,
        method_code=method,
        input_kg=input_kg,
        output_kg=kg(data["output_kg"]),
        iodine_mg_g=data["iodine_mg_g"],
        used_kg=ZERO_KG,
        note=data.get("note") or "",
        recorded_by_user_id=actor.user.id if actor.user else None,
        created_at=now,
    )
    for line_id, quantity in wanted.items():
        lines[line_id].consumed_kg = kg(lines[line_id].consumed_kg + quantity)
        batch.inputs.append(RegenerationInput(manifest_line_id=line_id, quantity_kg=kg(quantity)))
    session.add(batch)
    session.flush()
    return batch


# ---------------------------------------------------------------- fills of regenerated carbon


def validate_fill(session: Session, box: Box, data: dict[str, Any], principal: Principal) -> None:
    """A fill naming a regeneration batch: the batch exists and still has the carbon, the carbon
    comes from the batch's plant (a different supplier is refused), and the fill does not claim a
    better iodine value than the batch was measured at (a fill's iodine value decides whether the
    box turns red, so it may not be talked up)."""
    batch_id = data.get("regeneration_batch_id")
    if batch_id is None:
        return
    acquire_write_lock(session)
    batch = session.scalar(
        select(RegenerationBatch)
        .where(RegenerationBatch.id == batch_id)
        .with_for_update(of=RegenerationBatch)
        .execution_options(populate_existing=True)
    )
    if batch is None:
        raise InvalidInput.field("regeneration_batch_id", f"unknown regeneration batch {batch_id}")
    errors: dict[str, list[str]] = {}
    mass = kg(data.get("mass_kg") or 0)
    if mass > batch.remaining_kg:
        errors["regeneration_batch_id"] = [
            f"batch {batch.batch_no} has {float(batch.remaining_kg):g} kg of regenerated carbon left; "
            f"{float(mass):g} kg filled"
        ]
    supplier = data.get("supplier_org_id")
    if supplier is not None and supplier != batch.plant_id:
        errors["supplier_org_id"] = [
            f"the carbon of batch {batch.batch_no} comes from {batch.plant.name} (organisation {batch.plant_id})"
        ]
    iodine = data.get("iodine_mg_g")
    if iodine is not None and iodine > batch.iodine_mg_g + float(EPS):  # mg/g: floats
        errors["iodine_mg_g"] = [
            f"batch {batch.batch_no} was measured at {batch.iodine_mg_g:g} mg/g; a fill of it cannot have more"
        ]
    if errors:
        raise InvalidInput("The fill does not match its regeneration batch.", errors=errors)


def on_fill(session: Session, fill: Fill, principal: Principal) -> None:
    if fill.regeneration_batch_id is None:
        return
    batch = session.get_one(RegenerationBatch, fill.regeneration_batch_id)
    batch.used_kg = kg(batch.used_kg + fill.mass_kg)
    # The carbon's origin, recorded with the fill when the caller named only the batch.
    if fill.supplier_org_id is None:
        fill.supplier_org_id = batch.plant_id
    if not fill.supplier_name:
        fill.supplier_name = batch.plant.name
    if not fill.batch_no:
        fill.batch_no = batch.batch_no


# ---------------------------------------------------------------- what a plant may still regenerate


def available_inputs(session: Session, actor: Principal) -> list[ManifestLine]:
    """The plant's received lines of waste activated carbon with accepted kg not yet consumed by
    a batch (the choices of a new batch), oldest receipt first."""
    plant = actor.organization
    if plant is None or actor.is_device or not plant.has_role("regenerator"):
        return []
    query = (
        select(ManifestLine)
        .join(Manifest, Manifest.id == ManifestLine.manifest_id)
        .where(
            Manifest.receiver_id == plant.id,
            Manifest.status.in_(CONSUMABLE_STATES),
            ManifestLine.waste_code.in_(rules(session).waste_carbon_codes),
            ManifestLine.accepted_kg - ManifestLine.consumed_kg > EPS,
        )
        .order_by(Manifest.received_at, Manifest.id, ManifestLine.line_no)
    )
    return list(session.scalars(query))


def fills_of_batch(session: Session, batch: RegenerationBatch) -> list[Fill]:
    """The fills that used the batch's carbon, newest first."""
    query = select(Fill).where(Fill.regeneration_batch_id == batch.id).order_by(Fill.filled_at.desc(), Fill.id.desc())
    return list(session.scalars(query))
