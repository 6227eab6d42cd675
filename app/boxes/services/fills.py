"""Fills and replacements of a box's carbon, and the latest fill at a moment."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.accounts.models import Organization
from app.accounts.services import Principal
from app.boxes.colour import SPENT_CARBON_RULES
from app.boxes.models import CARBON_TYPES, Box, Fill, FillKind
from app.boxes.services.access import can_service
from app.boxes.services.colours import evaluate_boxes, rebuild_history
from app.boxes.services.latest import latest_fill
from app.boxes.services.registry import _positive
from app.common import limits as plausible_limits
from app.common.columns import is_number, kg, kg_or_none
from app.common.confirmations import Warnings
from app.common.errors import Conflict, Forbidden, InvalidInput
from app.common.timeutil import local_date, to_local_str, utcnow
from app.common.wiring import wiring_of

# ---------------------------------------------------------------- fills


def _within_history(
    session: Session, errors: dict[str, list[str]], box: Box, previous: Fill | None, filled_at: datetime
) -> None:
    """A fill lies inside the box's history: after its previous fill, whatever kind either is; a
    first fill not before the box's registration day, less the back-fill window of
    ``plausibility.yaml`` (``dates.backfill_days``: a box already in service when registered
    may enter its current carbon). The message names the bound."""
    if previous is not None:
        if filled_at <= previous.filled_at:
            errors.setdefault("filled_at", []).append(
                f"must be after the previous fill ({to_local_str(previous.filled_at)})"
            )
        return
    registered_on = local_date(box.created_at)
    earliest = registered_on - timedelta(days=plausible_limits.load(wiring_of(session).rules_dir).backfill_days)
    if local_date(filled_at) < earliest:
        errors.setdefault("filled_at", []).append(
            f"cannot be before {earliest} (the box was registered on {registered_on})"
        )


def record_fill(
    session: Session, actor: Principal, box: Box, data: dict[str, Any], now: datetime | None = None
) -> Fill:
    """A fill or a replacement. A replacement must give the weighed waste carbon removed; its
    generation record in the ledger is written by the ledger's fill hook."""
    now = now or utcnow()
    if not can_service(actor, box):
        raise Forbidden("只有本企业或其换炭服务单位可以登记换炭 (only the enterprise or its carbon service)")
    if box.status == "decommissioned":
        raise Conflict("已报废的碳箱不能装填 (the box is decommissioned)")
    errors: dict[str, list[str]] = {}
    filled_at: datetime = data.get("filled_at") or now
    if filled_at > now + timedelta(minutes=5):
        errors["filled_at"] = ["cannot be in the future"]
    _positive(errors, data, "mass_kg")
    _positive(errors, data, "iodine_mg_g")
    carbon_type = data.get("carbon_type") or box.carbon_type
    if carbon_type not in CARBON_TYPES:
        errors["carbon_type"] = [f"one of {', '.join(CARBON_TYPES)}"]
    previous = latest_fill(session, box.id)
    if filled_at <= now + timedelta(minutes=5):
        _within_history(session, errors, box, previous, filled_at)
    kind = FillKind.REPLACEMENT if previous is not None else FillKind.INITIAL
    if data.get("kind") and data["kind"] != kind:
        if data["kind"] == "replacement":
            errors["kind"] = ["the box has no carbon yet: the first fill is an initial fill"]
        else:
            kind = FillKind(data["kind"]) if data["kind"] in tuple(FillKind) else kind
    removed = data.get("removed_waste_kg")
    if kind == "replacement":
        if removed is None:
            errors["removed_waste_kg"] = ["required for a replacement: weigh the waste carbon removed"]
        elif not is_number(removed) or kg(removed) <= 0:
            errors["removed_waste_kg"] = ["must be greater than 0 (at least 1 g)"]
    elif removed is not None:
        errors["removed_waste_kg"] = ["only a replacement removes waste carbon"]
    supplier_id = data.get("supplier_org_id")
    if supplier_id is not None and session.get(Organization, supplier_id) is None:
        errors["supplier_org_id"] = [f"unknown organisation {supplier_id}"]
    if errors:
        raise InvalidInput("The fill has invalid fields.", errors=errors)
    # Possible but unusual values need the request's confirmation (app/common/confirmations.py).
    unusual = Warnings(session)
    unusual.iodine("iodine_mg_g", data.get("iodine_mg_g"))
    unusual.fill_vs_design("mass_kg", data.get("mass_kg"), box.design_fill_kg)
    if kind == "replacement" and previous is not None:
        unusual.removed_vs_held("removed_waste_kg", removed, previous.mass_kg)
    confirmed = unusual.settle(data)
    for validate in wiring_of(session).fill_validators:
        validate(session, box, data, actor)
    replaced_overdue = None
    if kind == "replacement":
        # The box as it stood at the replacement, with the carbon being replaced still in it.
        before = evaluate_boxes(session, [box], filled_at)[box.id]
        replaced_overdue = any(r["code"] in SPENT_CARBON_RULES for r in before.reasons)
    fill = Fill(
        box_id=box.id,
        kind=kind,
        filled_at=filled_at,
        mass_kg=kg(data["mass_kg"]),
        carbon_type=carbon_type,
        supplier_org_id=supplier_id,
        supplier_name=data.get("supplier_name") or "",
        batch_no=data.get("batch_no") or "",
        iodine_mg_g=data["iodine_mg_g"],
        regeneration_batch_id=data.get("regeneration_batch_id"),
        removed_waste_kg=kg_or_none(removed),
        replaced_overdue=replaced_overdue,
        performed_by_org_id=actor.organization.id if actor.organization else None,
        recorded_by_user_id=actor.user.id if actor.user else None,
        note=data.get("note") or "",
        confirmed_unusual=confirmed,
        created_at=now,
    )
    session.add(fill)
    session.flush()
    for hook in wiring_of(session).fill_hooks:
        hook(session, fill, actor)
    box.revision += 1
    # The fill may be back-dated: the history from its time on is evaluated again.
    rebuild_history(session, box, filled_at, now)
    return fill
