"""Ledger records: generation (from a replacement or by hand), ledger queries, stock summary, management class."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import Organization
from app.accounts.services import Principal, enterprise_scope
from app.boxes.models import Box, Fill
from app.common import limits as plausible_limits
from app.common.confirmations import Warnings
from app.common.errors import Forbidden, InvalidInput, NotFound
from app.common.timeutil import local_date, utcnow
from app.common.wiring import wiring_of
from app.ledger.catalogue import CURRENT_EDITION, category_of
from app.ledger.models import LedgerRecord, Stage, WasteStock
from app.ledger.services.rules_access import EPS, ZERO_KG, _day_start, _unknown_code, catalogue_entry, is_number, kg
from app.ledger.services.stock import _new_record, lock_stock


def record_generation(
    session: Session,
    *,
    enterprise: Organization,
    waste_code: str,
    quantity_kg: Any,
    occurred_at: datetime,
    origin: str,
    actor: Principal | None = None,
    box: Box | None = None,
    fill: Fill | None = None,
    waste_name: str | None = None,
    facility_code: str = "",
    storage_facility_code: str = "",
    container_type: str = "",
    container_count: int | None = None,
    handler: str = "",
    note: str = "",
    confirmed_unusual: bool = False,
) -> LedgerRecord:
    """A generation (产生) record and its into-storage (入库) record; the stock grows."""
    entry = catalogue_entry(waste_code)
    if entry is None:
        raise InvalidInput.field("waste_code", _unknown_code(waste_code))
    quantity = kg(quantity_kg)
    stock = lock_stock(session, enterprise.id, waste_code)
    common = dict(
        enterprise_id=enterprise.id,
        waste_code=waste_code,
        waste_name=waste_name or entry.description,
        category=entry.category,
        catalogue_edition=CURRENT_EDITION,
        quantity_kg=quantity,
        occurred_at=occurred_at,
        origin=origin,
        box_id=box.id if box else None,
        container_type=container_type,
        container_count=container_count,
        handler=handler or (actor.label if actor else ""),
        recorded_by_user_id=actor.user.id if actor and actor.user else None,
        note=note,
        confirmed_unusual=confirmed_unusual,
    )
    generation = _new_record(
        session,
        Stage.GENERATION,
        fill_id=fill.id if fill else None,
        facility_code=facility_code,
        on_site_kg=quantity,
        available_kg=quantity,
        **common,
    )
    _new_record(
        session, Stage.STORAGE, source_batch_code=generation.batch_code, facility_code=storage_facility_code, **common
    )
    stock.on_hand_kg = kg(stock.on_hand_kg + quantity)
    stock.updated_at = utcnow()
    return generation


def _can_act_for(actor: Principal, org: Organization) -> bool:
    return bool(actor.is_operator or (actor.organization and actor.organization.id == org.id))


def visible_enterprise(session: Session, actor: Principal, enterprise_id: int | None) -> Organization:
    if enterprise_id is None:
        if actor.organization is None:
            raise InvalidInput.field("enterprise", "required for platform operators")
        enterprise_id = actor.organization.id
    org = session.scalar(select(Organization).where(Organization.id == enterprise_id, enterprise_scope(actor)))
    if org is None:
        raise NotFound(f"单位 {enterprise_id} 不存在或无权查看 (enterprise {enterprise_id} not found)")
    return org


def ledger_query(
    session: Session,
    actor: Principal,
    enterprise_id: int | None,
    *,
    start: date | None = None,
    end: date | None = None,
    stage: str | None = None,
    waste_code: str | None = None,
):
    enterprise = visible_enterprise(session, actor, enterprise_id)
    query = select(LedgerRecord).where(LedgerRecord.enterprise_id == enterprise.id)
    if start:
        query = query.where(LedgerRecord.occurred_at >= _day_start(start))
    if end:
        query = query.where(LedgerRecord.occurred_at < _day_start(end + timedelta(days=1)))
    if stage:
        query = query.where(LedgerRecord.stage == stage)
    if waste_code:
        query = query.where(LedgerRecord.waste_code == waste_code)
    return query.order_by(LedgerRecord.occurred_at, LedgerRecord.id)


def management_class(annual_t: Any) -> str:
    """HJ 1259-2022 management class by annual quantity: 重点监管 ≥ 100 t, 简化 ≥ 10 t, else 登记."""
    if annual_t >= 100:
        return "key"
    if annual_t >= 10:
        return "simplified"
    return "registration"


def stock_summary(session: Session, actor: Principal, enterprise_id: int | None, now: datetime) -> dict[str, Any]:
    enterprise = visible_enterprise(session, actor, enterprise_id)
    stocks = list(
        session.scalars(
            select(WasteStock).where(WasteStock.enterprise_id == enterprise.id).order_by(WasteStock.waste_code)
        )
    )
    oldest = dict(
        session.execute(
            select(LedgerRecord.waste_code, func.min(LedgerRecord.occurred_at))
            .where(
                LedgerRecord.enterprise_id == enterprise.id,
                LedgerRecord.stage == Stage.GENERATION,
                LedgerRecord.on_site_kg > EPS,
            )
            .group_by(LedgerRecord.waste_code)
        ).all()
    )
    annual = kg(
        session.scalar(
            select(func.sum(LedgerRecord.quantity_kg)).where(
                LedgerRecord.enterprise_id == enterprise.id,
                LedgerRecord.stage == Stage.GENERATION,
                LedgerRecord.occurred_at >= now - timedelta(days=365),
            )
        )
    )
    items = []
    for s in stocks:
        entry = catalogue_entry(s.waste_code)
        since = oldest.get(s.waste_code)
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        items.append(
            {
                "waste_code": s.waste_code,
                "category": category_of(s.waste_code),
                "waste_name": entry.description if entry else "",
                "on_hand_kg": kg(s.on_hand_kg),
                "on_hand_t": s.on_hand_kg / 1000,
                "reserved_kg": kg(s.reserved_kg),
                "available_kg": s.available_kg,
                "oldest_on_site_at": since,
                "days_on_site": round((now - since).total_seconds() / 86400, 1) if since else None,
            }
        )
    return {
        "enterprise_id": enterprise.id,
        "enterprise_name": enterprise.name,
        "items": items,
        "total_on_hand_kg": kg(sum((s.on_hand_kg for s in stocks), ZERO_KG)),
        "generated_last_365d_t": annual / 1000,
        "management_class": management_class(annual / 1000),
    }


def record_by_hand(
    session: Session, actor: Principal, data: dict[str, Any], now: datetime | None = None
) -> LedgerRecord:
    """A waste other than a replacement's carbon, recorded by hand (generation + into storage)."""
    now = now or utcnow()
    errors: dict[str, list[str]] = {}
    enterprise_id = data.get("enterprise_id") or (actor.organization.id if actor.organization else None)
    enterprise = session.get(Organization, enterprise_id) if enterprise_id else None
    if enterprise is None or not enterprise.has_role("generator"):
        errors["enterprise_id"] = ["an organisation with the generator role is required"]
    elif not _can_act_for(actor, enterprise):
        raise Forbidden("只能为本单位登记台账 (only the enterprise's own staff record its ledger)")
    if catalogue_entry(data.get("waste_code")) is None:
        errors["waste_code"] = [_unknown_code(data.get("waste_code"))]
    quantity = data.get("quantity_kg")
    if not is_number(quantity) or kg(quantity) <= 0:
        errors["quantity_kg"] = ["must be greater than 0"]
    generated_at = data.get("generated_at") or now
    if generated_at > now + timedelta(minutes=5):
        errors["generated_at"] = ["cannot be in the future"]
    elif enterprise is not None:
        # Not before the enterprise existed in the service, less the back-fill window of
        # plausibility.yaml (an enterprise registered today enters this year's ledger).
        registered_on = local_date(enterprise.created_at)
        backfill = plausible_limits.load(wiring_of(session).rules_dir).backfill_days
        earliest = registered_on - timedelta(days=backfill)
        if local_date(generated_at) < earliest:
            errors["generated_at"] = [f"cannot be before {earliest} (the enterprise was registered on {registered_on})"]
    if errors:
        raise InvalidInput("The ledger record has invalid fields.", errors=errors)
    assert enterprise is not None  # else an error above
    unusual = Warnings(session)  # possible but unusual: the request must confirm it
    unusual.waste_quantity("quantity_kg", quantity)
    confirmed = unusual.settle(data)
    return record_generation(
        session,
        enterprise=enterprise,
        waste_code=data["waste_code"],
        quantity_kg=quantity,
        occurred_at=generated_at,
        origin="manual",
        actor=actor,
        waste_name=data.get("waste_name") or None,
        facility_code=data.get("facility_code") or "",
        storage_facility_code=data.get("storage_facility_code") or "",
        container_type=data.get("container_type") or "",
        container_count=data.get("container_count"),
        handler=data.get("handler") or "",
        note=data.get("note") or "",
        confirmed_unusual=confirmed,
    )
