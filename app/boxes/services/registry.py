"""Registering boxes, their status and labels, and the scan problems seen on them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.accounts.models import Organization
from app.accounts.services import Principal
from app.boxes import codes
from app.boxes.models import BOX_STATUSES, CARBON_TYPES, Box, BoxEvent, BoxStatus, Colour, ColourChange
from app.boxes.services.access import can_service
from app.boxes.services.colours import refresh_colours
from app.common.columns import is_number, kg
from app.common.errors import Conflict, Forbidden, InvalidInput
from app.common.timeutil import utcnow
from app.common.wiring import wiring_of

# ---------------------------------------------------------------- registration


def _positive(errors: dict, data: dict, name: str, required: bool = True) -> None:
    value = data.get(name)
    if value is None:
        if required:
            errors.setdefault(name, []).append("required")
        return
    if not is_number(value) or value <= 0 or (name.endswith("_kg") and kg(value) <= 0):
        errors.setdefault(name, []).append(
            "must be greater than 0" + (" (at least 1 g)" if name.endswith("_kg") else "")
        )


def register_box(session: Session, actor: Principal, data: dict[str, Any], now: datetime | None = None) -> Box:
    now = now or utcnow()
    errors: dict[str, list[str]] = {}
    enterprise_id = data.get("enterprise_id") or (actor.organization.id if actor.organization else None)
    enterprise = session.get(Organization, enterprise_id) if enterprise_id else None
    if enterprise is None or not enterprise.has_role("generator"):
        errors["enterprise_id"] = ["an organisation with the generator role is required"]
    elif not (actor.is_operator or (actor.organization and actor.organization.id == enterprise.id)):
        raise Forbidden("只能为本单位登记碳箱 (boxes are registered by their enterprise or an operator)")
    service_id = data.get("service_org_id")
    if service_id is not None:
        service = session.get(Organization, service_id)
        if service is None:
            errors["service_org_id"] = [f"unknown organisation {service_id}"]
    if data.get("carbon_type") not in CARBON_TYPES:
        errors["carbon_type"] = [f"one of {', '.join(CARBON_TYPES)}"]
    for name in (
        "design_fill_kg",
        "design_airflow_m3_h",
        "design_removed_mg_m3",
        "hours_per_day",
        "emission_limit_mg_m3",
    ):
        _positive(errors, data, name)
    if data.get("hours_per_day") is not None and data["hours_per_day"] > 24:
        errors.setdefault("hours_per_day", []).append("at most 24")
    capacity = data.get("adsorption_capacity", 0.10)
    if capacity is None or not 0 < capacity <= 0.5:
        errors["adsorption_capacity"] = ["a mass fraction in (0, 0.5], e.g. 0.10"]
    lo, hi = data.get("pressure_drop_min_pa"), data.get("pressure_drop_max_pa")
    if lo is not None and hi is not None and lo >= hi:
        errors["pressure_drop_max_pa"] = ["must be above pressure_drop_min_pa"]
    waste_code = data.get("waste_code") or "900-039-49"
    if errors:
        raise InvalidInput("The box has invalid fields.", errors=errors)
    assert enterprise is not None  # else errors["enterprise_id"] above
    code = data.get("code")
    if code:
        code = codes.normalise(code)
        if code is None:
            raise InvalidInput.field("code", "not a valid box code (check character mismatch)")
        if session.scalar(select(Box.id).where(Box.code == code)):
            raise Conflict(f"碳箱码 {code} 已存在 (box code exists)", errors={"code": ["already exists"]})
    else:
        for _ in range(20):
            code = codes.make_code(enterprise.county_code)
            if not session.scalar(select(Box.id).where(Box.code == code)):
                break
    box = Box(
        code=code,
        enterprise_id=enterprise.id,
        service_org_id=service_id,
        name=data.get("name") or "",
        facility_code=data.get("facility_code") or "TA001",
        outlet_code=data.get("outlet_code") or "DA001",
        carbon_type=data["carbon_type"],
        design_fill_kg=kg(data["design_fill_kg"]),
        design_airflow_m3_h=data["design_airflow_m3_h"],
        design_removed_mg_m3=data["design_removed_mg_m3"],
        hours_per_day=data["hours_per_day"],
        adsorption_capacity=capacity,
        emission_limit_mg_m3=data["emission_limit_mg_m3"],
        pressure_drop_min_pa=lo,
        pressure_drop_max_pa=hi,
        has_sensors=bool(data.get("has_sensors")),
        waste_code=waste_code,
        status=BoxStatus.ACTIVE,
        colour=Colour.GREY,
        colour_since=now,
        colour_evaluated_at=now,
        created_at=now,
        colour_reasons=[],
    )
    session.add(box)
    session.flush()
    session.add(BoxEvent(box_id=box.id, kind="registered", at=now, actor=actor.label, detail={"code": code}))
    session.add(
        ColourChange(
            box_id=box.id,
            colour="grey",
            previous_colour=None,
            changed_at=now,
            recorded_at=now,
            reasons=[{"code": "no_active_fill", "level": "grey"}],
        )
    )
    for hook in wiring_of(session).box_registered:
        hook(session, box)  # telemetry: the box's sensor state, from the start
    refresh_colours(session, [box], now)  # stored from the start: reads evaluate nothing
    return box


def touch(session: Session, box_ids) -> None:
    """Tell read caches that these boxes changed (other domains call this after writes that
    change what a box shows, e.g. telemetry after an ingest batch)."""
    ids = list(box_ids)
    if ids:
        session.execute(
            update(Box)
            .where(Box.id.in_(ids))
            .values(revision=Box.revision + 1)
            .execution_options(synchronize_session=False)
        )
        for box in session.identity_map.values():
            if isinstance(box, Box) and box.id in ids:
                session.expire(box, ["revision"])


def set_status(session: Session, actor: Principal, box: Box, status: str, now: datetime | None = None) -> Box:
    now = now or utcnow()
    if status not in BOX_STATUSES:
        raise InvalidInput.field("status", f"one of {', '.join(BOX_STATUSES)}")
    if not can_service(actor, box):
        raise Forbidden("无权修改该碳箱 (not allowed to change this box)")
    if box.status == "decommissioned" and status != "decommissioned":
        raise Conflict("已报废的碳箱不能重新启用 (a decommissioned box cannot be reactivated)")
    if status != box.status:
        session.add(
            BoxEvent(box_id=box.id, kind="status", at=now, actor=actor.label, detail={"from": box.status, "to": status})
        )
        box.status = BoxStatus(status)
        box.revision += 1
        refresh_colours(session, [box], now)
    return box


def reprint_label(session: Session, actor: Principal, box: Box, now: datetime | None = None) -> Box:
    """A new label version: the previous label's QR code is superseded and shown as such."""
    if not can_service(actor, box):
        raise Forbidden("无权重印该标签 (not allowed to reprint this label)")
    box.label_version += 1
    box.revision += 1
    session.add(
        BoxEvent(
            box_id=box.id,
            kind="label_reprinted",
            at=now or utcnow(),
            actor=actor.label,
            detail={"version": box.label_version},
        )
    )
    return box


def record_scan_problem(
    session: Session, box_id: int | None, kind: str, detail: dict[str, Any], now: datetime | None = None
) -> None:
    """A forged or superseded label was scanned: kept for the enterprise and the regulator.

    Counted, not written one by one (anyone can repeat a scan 10,000 times): one event per box,
    kind and clock hour (UTC), holding the first scan's detail, ``count`` and ``last_at``."""
    now = now or utcnow()
    hour = now.replace(minute=0, second=0, microsecond=0)
    event = session.scalar(
        select(BoxEvent)
        .where(
            BoxEvent.box_id == box_id,
            BoxEvent.kind == kind,
            BoxEvent.actor == "scan",
            BoxEvent.at >= hour,
        )
        .order_by(BoxEvent.at.desc())
        .limit(1)
    )
    if event is not None:
        event.detail = {
            **(event.detail or {}),
            "count": int((event.detail or {}).get("count", 1)) + 1,
            "last_at": now.isoformat(),
        }
        return
    session.add(BoxEvent(box_id=box_id, kind=kind, at=now, actor="scan", detail={**detail, "count": 1}))
