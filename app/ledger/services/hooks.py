"""The boxes' fill validator and fill hook: a replacement's waste carbon enters the ledger (registered at import)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.accounts.services import Principal
from app.boxes.models import Box, Fill, FillKind
from app.common.errors import InvalidInput
from app.ledger.services.records import record_generation
from app.ledger.services.rules_access import _unknown_code, catalogue_entry


def validate_replacement(session: Session, box: Box, data: dict[str, Any], principal: Principal) -> None:
    """A replacement writes a generation record: the box's waste code must be in the catalogue."""
    if data.get("removed_waste_kg") and catalogue_entry(box.waste_code) is None:
        raise InvalidInput.field("waste_code", f"the box's waste code {_unknown_code(box.waste_code)}")


def on_fill(session: Session, fill: Fill, principal: Principal) -> None:
    """A replacement's weighed waste carbon enters the ledger (generation + into storage)."""
    if fill.kind != FillKind.REPLACEMENT or not fill.removed_waste_kg:
        return
    box = session.get_one(Box, fill.box_id)
    generation = record_generation(
        session,
        enterprise=box.enterprise,
        waste_code=box.waste_code or "900-039-49",
        quantity_kg=fill.removed_waste_kg,
        occurred_at=fill.filled_at,
        origin="replacement",
        actor=principal,
        box=box,
        fill=fill,
        facility_code=box.facility_code,
        note=f"碳箱 {box.code} 更换活性炭 (replacement in box {box.code})",
        confirmed_unusual=bool(fill.confirmed_unusual),  # the weighed quantity was confirmed with the fill
    )
    fill.ledger_batch_code = generation.batch_code  # shown in the fill's API response
