"""Ledger (台账), stock, transfer manifests (联单) and mass-balance anomalies.

No Flask here: callers pass the session, the acting :class:`Principal` and ``now``.

Stock moves with the manifest (product.md): submit reserves, pickup ships (out of storage and
sent out), a refusal returns the refused quantity into storage, cancel releases the reservation.
Every move happens under the lock of the (enterprise, waste code) stock row, so stock never goes
negative and two manifests cannot both ship the same waste.
"""
from __future__ import annotations

import re
import uuid
from collections import defaultdict
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable

from sqlalchemy import and_, case, false, func, or_, select, true, update
from sqlalchemy.orm import Session

from app.accounts.models import Organization
from app.accounts.services import Principal, enterprise_scope
from app.boxes.models import Box, Fill
from app.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.common.timeutil import SHANGHAI, local_date, utcnow
from app.common.wiring import wiring_of
from app.ledger.calendar import WorkCalendar
from app.ledger.catalogue import (
    CURRENT_EDITION, LedgerRules, Method, WasteEntry, category_of, load_catalogue,
    parse_hazards,
)
from app.ledger.locking import acquire_write_lock, insert_ignore
from app.ledger.models import (
    PHYSICAL_FORMS, STAGE_PREFIX, LedgerRecord, Manifest, ManifestCounter, ManifestEvent, ManifestLine,
    ManifestLineSource, WasteStock,
)

EPS = 0.0005  # half a gram: quantities are rounded to grams
NUMBER_RE = re.compile(r"^\d{14}$")
# GB/T 2260 province-level codes (the two digits after the year in a manifest number).
PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42", "43",
    "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
})


def kg(value: float) -> float:
    return round(float(value) + 0.0, 3)


# The rule files of the app that made ``session`` (its RULES_DIR): app.common.wiring.
def rules(session: Session) -> LedgerRules:
    return wiring_of(session).ledger_rules()


def methods(session: Session) -> dict[str, Method]:
    return wiring_of(session).methods()


def calendar(session: Session) -> WorkCalendar:
    return wiring_of(session).calendar()


def catalogue_entry(code: str | None) -> WasteEntry | None:
    return load_catalogue().get(code or "")


def _unknown_code(code: Any) -> str:
    return f"{code!r} is not in the national catalogue of hazardous wastes ({load_catalogue().title})"


# ---------------------------------------------------------------- stock rows and batches

def lock_stock(session: Session, enterprise_id: int, waste_code: str) -> WasteStock:
    """The (enterprise, waste code) stock row, created if missing, locked until commit."""
    acquire_write_lock(session)
    stmt = (select(WasteStock).where(WasteStock.enterprise_id == enterprise_id, WasteStock.waste_code == waste_code)
            .with_for_update().execution_options(populate_existing=True))
    stock = session.scalar(stmt)
    if stock is None:
        insert_ignore(session, WasteStock, {"enterprise_id": enterprise_id, "waste_code": waste_code,
                                            "on_hand_kg": 0.0, "reserved_kg": 0.0, "updated_at": utcnow()},
                      ["enterprise_id", "waste_code"])
        stock = session.scalar(stmt)
    return stock


def _fresh_records(session: Session, ids: Iterable[int]) -> dict[int, LedgerRecord]:
    """Re-read generation batches after their stock row is locked (another request may have moved them)."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    rows = session.scalars(select(LedgerRecord).where(LedgerRecord.id.in_(ids))
                           .execution_options(populate_existing=True))
    return {r.id: r for r in rows}


def _new_record(session: Session, stage: str, **fields: Any) -> LedgerRecord:
    record = LedgerRecord(batch_code="tmp-" + uuid.uuid4().hex[:30], stage=stage, **fields)
    session.add(record)
    session.flush()
    # Batch code: stage prefix + local date + the record id; unique and sortable (HJ 1259 批次编码).
    record.batch_code = f"{STAGE_PREFIX[stage]}{local_date(record.occurred_at):%Y%m%d}{record.id:08d}"
    return record


def record_generation(session: Session, *, enterprise: Organization, waste_code: str, quantity_kg: float,
                      occurred_at: datetime, origin: str, actor: Principal | None = None, box: Box | None = None,
                      fill: Fill | None = None, waste_name: str | None = None, facility_code: str = "",
                      storage_facility_code: str = "", container_type: str = "", container_count: int | None = None,
                      handler: str = "", note: str = "") -> LedgerRecord:
    """A generation (产生) record and its into-storage (入库) record; the stock grows."""
    entry = catalogue_entry(waste_code)
    if entry is None:
        raise InvalidInput.field("waste_code", _unknown_code(waste_code))
    quantity = kg(quantity_kg)
    stock = lock_stock(session, enterprise.id, waste_code)
    common = dict(
        enterprise_id=enterprise.id, waste_code=waste_code, waste_name=waste_name or entry.description,
        category=entry.category, catalogue_edition=CURRENT_EDITION, quantity_kg=quantity, occurred_at=occurred_at,
        origin=origin, box_id=box.id if box else None, container_type=container_type,
        container_count=container_count, handler=handler or (actor.label if actor else ""),
        recorded_by_user_id=actor.user.id if actor and actor.user else None, note=note,
    )
    generation = _new_record(session, "generation", fill_id=fill.id if fill else None, facility_code=facility_code,
                             on_site_kg=quantity, available_kg=quantity, **common)
    _new_record(session, "storage", source_batch_code=generation.batch_code,
                facility_code=storage_facility_code, **common)
    stock.on_hand_kg = kg(stock.on_hand_kg + quantity)
    stock.updated_at = utcnow()
    return generation


# ---------------------------------------------------------------- fill hook and validator

def validate_replacement(session: Session, box: Box, data: dict[str, Any], principal: Principal) -> None:
    """A replacement writes a generation record: the box's waste code must be in the catalogue."""
    if data.get("removed_waste_kg") and catalogue_entry(box.waste_code) is None:
        raise InvalidInput.field("waste_code", f"the box's waste code {_unknown_code(box.waste_code)}")


def on_fill(session: Session, fill: Fill, principal: Principal) -> None:
    """A replacement's weighed waste carbon enters the ledger (generation + into storage)."""
    if fill.kind != "replacement" or not fill.removed_waste_kg:
        return
    box = session.get(Box, fill.box_id)
    generation = record_generation(
        session, enterprise=box.enterprise, waste_code=box.waste_code or "900-039-49",
        quantity_kg=fill.removed_waste_kg, occurred_at=fill.filled_at, origin="replacement", actor=principal,
        box=box, fill=fill, facility_code=box.facility_code,
        note=f"碳箱 {box.code} 更换活性炭 (replacement in box {box.code})",
    )
    fill.ledger_batch_code = generation.batch_code  # shown in the fill's API response



def refresh_box_colours(session: Session, record_ids: Iterable[int], now: datetime) -> None:
    """Waste moving changes the colour of the boxes it came from (held on site, not on a manifest)."""
    from app.boxes.services import refresh_colours

    box_ids = set(session.scalars(select(LedgerRecord.box_id).where(
        LedgerRecord.id.in_(list(set(record_ids))), LedgerRecord.box_id.is_not(None))))
    if box_ids:
        refresh_colours(session, list(session.scalars(select(Box).where(Box.id.in_(box_ids)))), now)


# ---------------------------------------------------------------- ledger reads and hand records

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


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=SHANGHAI).astimezone(timezone.utc)


def ledger_query(session: Session, actor: Principal, enterprise_id: int | None, *, start: date | None = None,
                 end: date | None = None, stage: str | None = None, waste_code: str | None = None):
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


def management_class(annual_t: float) -> str:
    """HJ 1259-2022 management class by annual quantity: 重点监管 ≥ 100 t, 简化 ≥ 10 t, else 登记."""
    if annual_t >= 100:
        return "key"
    if annual_t >= 10:
        return "simplified"
    return "registration"


def stock_summary(session: Session, actor: Principal, enterprise_id: int | None, now: datetime) -> dict[str, Any]:
    enterprise = visible_enterprise(session, actor, enterprise_id)
    stocks = list(session.scalars(select(WasteStock).where(WasteStock.enterprise_id == enterprise.id)
                                  .order_by(WasteStock.waste_code)))
    oldest = dict(session.execute(
        select(LedgerRecord.waste_code, func.min(LedgerRecord.occurred_at))
        .where(LedgerRecord.enterprise_id == enterprise.id, LedgerRecord.stage == "generation",
               LedgerRecord.on_site_kg > EPS)
        .group_by(LedgerRecord.waste_code)
    ).all())
    annual = session.scalar(select(func.coalesce(func.sum(LedgerRecord.quantity_kg), 0.0)).where(
        LedgerRecord.enterprise_id == enterprise.id, LedgerRecord.stage == "generation",
        LedgerRecord.occurred_at >= now - timedelta(days=365))) or 0.0
    items = []
    for s in stocks:
        entry = catalogue_entry(s.waste_code)
        since = oldest.get(s.waste_code)
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
        items.append({
            "waste_code": s.waste_code, "category": category_of(s.waste_code),
            "waste_name": entry.description if entry else "", "on_hand_kg": kg(s.on_hand_kg),
            "on_hand_t": round(s.on_hand_kg / 1000, 6), "reserved_kg": kg(s.reserved_kg),
            "available_kg": s.available_kg, "oldest_on_site_at": since,
            "days_on_site": round((now - since).total_seconds() / 86400, 1) if since else None,
        })
    return {
        "enterprise_id": enterprise.id, "enterprise_name": enterprise.name, "items": items,
        "total_on_hand_kg": kg(sum(s.on_hand_kg for s in stocks)),
        "generated_last_365d_t": round(annual / 1000, 6), "management_class": management_class(annual / 1000),
    }


def record_by_hand(session: Session, actor: Principal, data: dict[str, Any],
                   now: datetime | None = None) -> LedgerRecord:
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
    if not isinstance(quantity, (int, float)) or quantity <= 0:
        errors["quantity_kg"] = ["must be greater than 0"]
    generated_at = data.get("generated_at") or now
    if generated_at > now + timedelta(minutes=5):
        errors["generated_at"] = ["cannot be in the future"]
    if errors:
        raise InvalidInput("The ledger record has invalid fields.", errors=errors)
    return record_generation(
        session, enterprise=enterprise, waste_code=data["waste_code"], quantity_kg=quantity, occurred_at=generated_at,
        origin="manual", actor=actor, waste_name=data.get("waste_name") or None,
        facility_code=data.get("facility_code") or "", storage_facility_code=data.get("storage_facility_code") or "",
        container_type=data.get("container_type") or "", container_count=data.get("container_count"),
        handler=data.get("handler") or "", note=data.get("note") or "",
    )


# ---------------------------------------------------------------- manifest numbers

def number_problem(number: str, now: datetime) -> str | None:
    """Why ``number`` is not a national manifest number (year 4 + province 2 + prefecture 2 + serial 6)."""
    if not NUMBER_RE.match(number or ""):
        return "a manifest number has 14 digits: year, province, prefecture, 6-digit serial"
    year = int(number[:4])
    if not 2000 <= year <= local_date(now).year + 1:
        return f"year {year} is not plausible"
    if number[4:6] not in PROVINCES:
        return f"{number[4:6]} is not a province code (GB/T 2260)"
    if number[6:8] == "00":
        return "the prefecture code cannot be 00"
    if number[8:] == "000000":
        return "the serial cannot be 000000"
    return None


def _counter_row(session: Session, year: int, prefecture: str) -> None:
    insert_ignore(session, ManifestCounter, {"year": year, "prefecture": prefecture, "last_serial": 0},
                  ["year", "prefecture"])


def issue_number(session: Session, prefecture: str, year: int) -> str:
    """The next serial of (year, prefecture), atomically: UPDATE … RETURNING holds the counter row's
    lock until commit, so concurrent creations get consecutive, distinct serials."""
    _counter_row(session, year, prefecture)
    table = ManifestCounter.__table__
    serial = session.execute(
        update(table).where(table.c.year == year, table.c.prefecture == prefecture)
        .values(last_serial=table.c.last_serial + 1).returning(table.c.last_serial)
    ).scalar_one()
    if serial > 999_999:
        raise Conflict(f"{year} 年 {prefecture} 的联单编号已用尽 (serials exhausted)")
    return f"{year}{prefecture}{serial:06d}"


def note_external_number(session: Session, number: str) -> None:
    """A number issued elsewhere (national system, paper) moves our counter past it, so that the
    numbers we issue next do not collide with it."""
    year, prefecture, serial = int(number[:4]), number[4:8], int(number[8:])
    _counter_row(session, year, prefecture)
    table = ManifestCounter.__table__
    session.execute(update(table).where(table.c.year == year, table.c.prefecture == prefecture).values(
        last_serial=case((table.c.last_serial < serial, serial), else_=table.c.last_serial)))


# ---------------------------------------------------------------- parties

def licence_covers(licence: dict[str, Any], waste_code: str, today: date) -> bool:
    """A hazardous-waste operating licence covers a code when it lists the code or its category
    (HW49); an empty list covers every waste. Expired licences cover nothing."""
    if (licence.get("kind") or "hw_operation") != "hw_operation":
        return False
    valid_until = licence.get("valid_until")
    if valid_until:
        try:
            until = valid_until if isinstance(valid_until, date) else date.fromisoformat(str(valid_until))
        except ValueError:
            return False
        if until < today:
            return False
    codes = [str(c).strip().upper() for c in (licence.get("waste_codes") or [])]
    return not codes or waste_code in codes or category_of(waste_code) in codes


def _licence_valid_on(licence: dict[str, Any], today: date) -> bool:
    valid_until = licence.get("valid_until")
    if not valid_until:
        return True
    try:
        until = valid_until if isinstance(valid_until, date) else date.fromisoformat(str(valid_until))
    except ValueError:
        return False
    return until >= today


def transport_permit(org: Organization, today: date) -> dict[str, Any] | None:
    """A carrier's valid road transport permit for dangerous goods (道路危险货物运输许可):
    the carrier refuses to carry without a manifest, and may not carry without a permit."""
    return next((lic for lic in (org.licences or [])
                 if lic.get("kind") == "transport" and _licence_valid_on(lic, today)), None)


def covering_licence(org: Organization, waste_code: str, today: date) -> dict[str, Any] | None:
    return next((lic for lic in (org.licences or []) if licence_covers(lic, waste_code, today)), None)


def party_of(actor: Principal, manifest: Manifest) -> set[str]:
    org = actor.organization
    if org is None or actor.is_device:
        return set()
    parties = set()
    if org.id == manifest.consignor_id:
        parties.add("consignor")
    if org.id == manifest.carrier_id:
        parties.add("carrier")
    if org.id == manifest.receiver_id:
        parties.add("receiver")
    return parties


PARTY_ZH = {"consignor": "移出人", "carrier": "承运人", "receiver": "接受人"}


def _require_party(actor: Principal, manifest: Manifest, party: str, action: str) -> None:
    if party not in party_of(actor, manifest):
        raise Forbidden(
            f"只有本联单的{PARTY_ZH[party]}可以执行此操作 (only the manifest's {party} may {action} it)",
            party=party, action=action,
        )


ACTION_FROM = {
    "submit": ("draft",), "pickup": ("submitted",), "receive": ("in_transit",), "reject": ("in_transit",),
    "process": ("received",), "cancel": ("draft", "submitted"),
}


def _require_state(manifest: Manifest, action: str) -> None:
    allowed = ACTION_FROM[action]
    if manifest.status not in allowed:
        from app.ledger.models import STATE_ZH

        hint = "；只能在承运人提货前作废 (cancel is possible only before pickup)" if action == "cancel" else ""
        raise Conflict(
            f"联单 {manifest.number} 当前状态为{STATE_ZH[manifest.status]}，不能执行 {action}{hint} "
            f"(manifest is {manifest.status}; {action} needs {' or '.join(allowed)})",
            status_now=manifest.status, action=action,
        )


def _lock_manifest(session: Session, manifest: Manifest) -> Manifest:
    """Lock the manifest row and re-read it (state, lines): two steps on one manifest serialise."""
    acquire_write_lock(session)
    # The rows must be fetched for populate_existing to refresh the objects already loaded.
    session.scalars(select(Manifest).where(Manifest.id == manifest.id).with_for_update(of=Manifest)
                    .execution_options(populate_existing=True)).one()
    session.scalars(select(ManifestLine).where(ManifestLine.manifest_id == manifest.id)
                    .execution_options(populate_existing=True)).all()
    return manifest


def _event(session: Session, manifest: Manifest, actor: Principal | None, action: str, from_status: str | None,
           at: datetime, party: str = "", **detail: Any) -> ManifestEvent:
    org = actor.organization if actor else None
    event = ManifestEvent(
        manifest_id=manifest.id, action=action, from_status=from_status, to_status=manifest.status, at=at,
        recorded_at=utcnow(), actor=actor.label if actor else "system", organization_id=org.id if org else None,
        organization_name=org.name if org else "", party=party, detail=detail,
    )
    manifest.events.append(event)
    return event


# ---------------------------------------------------------------- visibility

def manifest_scope(actor: Principal):
    """Manifests ``actor`` may read: its own as a party, and its jurisdiction's consignors'."""
    if actor.is_operator:
        return true()
    org = actor.organization
    if org is None or actor.is_device:
        return false()
    enterprises = select(Organization.id).where(enterprise_scope(actor))
    return or_(Manifest.consignor_id.in_(enterprises), Manifest.carrier_id == org.id, Manifest.receiver_id == org.id)


def get_manifest(session: Session, actor: Principal, number: str) -> Manifest:
    manifest = session.scalar(select(Manifest).where(Manifest.number == number, manifest_scope(actor)))
    if manifest is None:
        raise NotFound(f"联单 {number} 不存在或无权查看 (manifest {number} not found)")
    return manifest


def can_read(session: Session, actor: Principal, manifest: Manifest) -> bool:
    return session.scalar(select(Manifest.id).where(Manifest.id == manifest.id, manifest_scope(actor))) is not None


def find_manifest_public(session: Session, number: str) -> Manifest | None:
    if not NUMBER_RE.match(number or ""):
        return None
    return session.scalar(select(Manifest).where(Manifest.number == number))


FLAGS = ("overdue", "discrepant", "late", "rejected")


def list_manifests(session: Session, actor: Principal, *, status: str | None = None, flag: str | None = None,
                   enterprise: int | None = None, party: str | None = None, now: datetime | None = None):
    now = now or utcnow()
    query = select(Manifest).where(manifest_scope(actor))
    if status:
        query = query.where(Manifest.status == status)
    if enterprise:
        query = query.where(Manifest.consignor_id == enterprise)
    org_id = actor.organization.id if actor.organization else -1
    if party == "consignor":
        query = query.where(Manifest.consignor_id == org_id)
    elif party == "carrier":
        query = query.where(Manifest.carrier_id == org_id)
    elif party == "receiver":
        query = query.where(Manifest.receiver_id == org_id)
    if flag == "overdue":
        query = query.where(or_(Manifest.overdue.is_(True), and_(
            Manifest.status == "in_transit", Manifest.receipt_due_at <= now)))
    elif flag == "discrepant":
        query = query.where(Manifest.discrepant.is_(True))
    elif flag == "late":
        query = query.where(Manifest.late_entry.is_(True))
    elif flag == "rejected":
        query = query.where(Manifest.status == "rejected")
    return query.order_by(Manifest.created_at.desc(), Manifest.id.desc())


# ---------------------------------------------------------------- creating manifests

def _receipt_due(session: Session, picked_up_at: datetime) -> datetime:
    """End of the N-th working day after pickup (Shanghai): later receipts are overdue."""
    due_day = calendar(session).add_working_days(local_date(picked_up_at), rules(session).receipt_working_days)
    return _day_start(due_day + timedelta(days=1))


def _validate_lines(session: Session, consignor: Organization | None, raw_lines: list[dict[str, Any]],
                    errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    lines = []
    if not raw_lines:
        errors["lines"] = ["at least one line is required"]
    for i, raw in enumerate(raw_lines):
        place = f"lines.{i}"
        entry = catalogue_entry(raw.get("waste_code"))
        if entry is None:
            errors.setdefault(f"{place}.waste_code", []).append(_unknown_code(raw.get("waste_code")))
            continue
        quantity = raw.get("quantity_kg")
        if not isinstance(quantity, (int, float)) or quantity <= 0:
            errors.setdefault(f"{place}.quantity_kg", []).append("must be greater than 0")
            continue
        hazard = raw.get("hazard") or entry.hazard
        if parse_hazards(hazard) is None:
            errors.setdefault(f"{place}.hazard", []).append("'/'-separated hazard characteristics: T, C, I, R, In")
        form = raw.get("physical_form") or "solid"
        if form not in PHYSICAL_FORMS:
            errors.setdefault(f"{place}.physical_form", []).append(f"one of {', '.join(PHYSICAL_FORMS)}")
        batches = list(raw.get("source_batches") or [])
        if batches and consignor is not None:
            found = {r.batch_code: r for r in session.scalars(select(LedgerRecord).where(
                LedgerRecord.batch_code.in_(batches), LedgerRecord.enterprise_id == consignor.id,
                LedgerRecord.stage == "generation"))}
            for code in batches:
                record = found.get(code)
                if record is None:
                    errors.setdefault(f"{place}.source_batches", []).append(
                        f"{code} is not a generation batch of the consignor")
                elif record.waste_code != entry.code:
                    errors.setdefault(f"{place}.source_batches", []).append(
                        f"{code} holds {record.waste_code}, not {entry.code}")
            if len(set(batches)) != len(batches):
                errors.setdefault(f"{place}.source_batches", []).append("a batch is named twice")
        lines.append({
            "line_no": i + 1, "waste_code": entry.code, "waste_name": raw.get("waste_name") or entry.description,
            "category": entry.category, "physical_form": form, "hazard": hazard,
            "packaging": raw.get("packaging") or "", "quantity_kg": kg(quantity), "requested_batches": batches,
        })
    return lines


def create_manifest(session: Session, actor: Principal, data: dict[str, Any], now: datetime | None = None) -> Manifest:
    """A draft manifest (or, for a paper/national manifest recorded afterwards, one already in transit)."""
    now = now or utcnow()
    today = local_date(now)
    errors: dict[str, list[str]] = {}
    origin = data.get("origin") or "electronic"
    consignor_id = data.get("consignor_id") or (actor.organization.id if actor.organization else None)
    consignor = session.get(Organization, consignor_id) if consignor_id else None
    if consignor is None or not consignor.has_role("generator"):
        errors["consignor_id"] = ["the consignor (移出人) must be an organisation with the generator role"]
        consignor = None
    elif not (actor.organization and actor.organization.id == consignor.id) or actor.is_device:
        raise Forbidden("只有移出人可以填写联单 (only the consignor's staff create its manifests)")
    elif not consignor.county_code:
        errors["consignor_id"] = ["the consignor has no county: the manifest number needs its prefecture"]
    carrier = session.get(Organization, data.get("carrier_id")) if data.get("carrier_id") else None
    if carrier is None or not carrier.has_role("carrier"):
        errors["carrier_id"] = ["the carrier (承运人) must be an organisation with the carrier role"]
    elif transport_permit(carrier, today) is None:
        errors["carrier_id"] = [f"{carrier.name} holds no valid road transport permit for dangerous goods "
                                "(a licence of kind 'transport')"]
    receiver = session.get(Organization, data.get("receiver_id")) if data.get("receiver_id") else None
    if receiver is None or not (receiver.has_role("receiver") or receiver.has_role("regenerator")):
        errors["receiver_id"] = ["the receiver (接受人) must be an organisation with the receiver or regenerator role"]
        receiver = None
    lines = _validate_lines(session, consignor, data.get("lines") or [], errors)
    licence = None
    if receiver is not None:
        for line in lines:
            found = covering_licence(receiver, line["waste_code"], today)
            if found is None:
                errors.setdefault("receiver_id", []).append(
                    f"{receiver.name} holds no valid hazardous-waste licence covering {line['waste_code']} "
                    f"({line['category']})")
            licence = licence or found
    if consignor is not None and lines:
        need: dict[str, float] = defaultdict(float)
        for line in lines:
            need[line["waste_code"]] += line["quantity_kg"]
        stocks = {s.waste_code: s for s in session.scalars(select(WasteStock).where(
            WasteStock.enterprise_id == consignor.id, WasteStock.waste_code.in_(list(need))))}
        for line in lines:
            stock = stocks.get(line["waste_code"])
            available = stock.available_kg if stock else 0.0
            if need[line["waste_code"]] > available + EPS:
                errors.setdefault(f"lines.{line['line_no'] - 1}.quantity_kg", []).append(
                    f"only {available:g} kg of {line['waste_code']} available in stock; "
                    f"{need[line['waste_code']]:g} kg requested")
    number = data.get("number")
    transferred_at = data.get("transferred_at")
    if origin == "electronic" and (number or transferred_at):
        errors["origin"] = ["number and transferred_at are for paper or national manifests"]
    if origin == "national" and not number:
        errors["number"] = ["a manifest issued by the national system is recorded with its own number"]
    if origin == "paper" and transferred_at is None:
        errors["transferred_at"] = ["required: when the waste was handed to the carrier"]
    if transferred_at is not None and transferred_at > now + timedelta(minutes=5):
        errors["transferred_at"] = ["cannot be in the future"]
    if transferred_at is not None and not data.get("vehicle_plate"):
        errors["vehicle_plate"] = ["required for a transfer that has taken place"]
    if number:
        problem = number_problem(number, now)
        home = consignor.county_code[:4] if consignor is not None and consignor.county_code else None
        if problem is None and home and number[4:8] != home:
            problem = f"the number's prefecture {number[4:8]} is not the consignor's ({consignor.county_code[:4]})"
        if problem:
            errors["number"] = [problem]
    if errors:
        raise InvalidInput("The manifest has invalid fields.", errors=errors)
    if number:
        if session.scalar(select(Manifest.id).where(Manifest.number == number)):
            raise Conflict(f"联单编号 {number} 已存在 (a manifest with this number exists)",
                           errors={"number": ["already recorded"]})
        note_external_number(session, number)
    else:
        number = issue_number(session, consignor.county_code[:4], today.year)
    manifest = Manifest(
        number=number, origin=origin, status="draft", consignor_id=consignor.id, carrier_id=carrier.id,
        receiver_id=receiver.id, receiver_licence=(licence or {}).get("number", ""), route=data.get("route") or "",
        note=data.get("note") or "", vehicle_plate=data.get("vehicle_plate") or "",
        driver_name=data.get("driver_name") or "", driver_phone=data.get("driver_phone") or "",
        created_by_user_id=actor.user.id if actor.user else None, created_at=now,
    )
    manifest.lines = [ManifestLine(**line) for line in lines]
    session.add(manifest)
    session.flush()
    _event(session, manifest, actor, "create", None, now, "consignor", origin=origin)
    if transferred_at is not None:
        _record_past_transfer(session, actor, manifest, transferred_at, now)
    elif data.get("submit"):
        submit(session, actor, manifest, now)
    return manifest


def _record_past_transfer(session: Session, actor: Principal, manifest: Manifest, transferred_at: datetime,
                          now: datetime) -> None:
    """A paper (or national) manifest entered after the waste left: reserve and ship at once."""
    _reserve(session, manifest)
    manifest.submitted_at = transferred_at
    _ship(session, manifest, transferred_at, actor)
    manifest.status = "in_transit"
    manifest.picked_up_at = transferred_at
    manifest.receipt_due_at = _receipt_due(session, transferred_at)
    days = calendar(session).working_days_between(local_date(transferred_at), local_date(now))
    manifest.entry_working_days = days
    manifest.late_entry = days > rules(session).paper_entry_working_days
    _event(session, manifest, actor, "record_transfer", "draft", transferred_at, "consignor",
           entered_at=now.isoformat(), working_days_after_transfer=days, late=manifest.late_entry,
           vehicle_plate=manifest.vehicle_plate, driver_name=manifest.driver_name)


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
                    f"only {stocks[code].available_kg:g} kg of {code} available in stock; {need:g} kg needed"]
    if short:
        raise Conflict("库存不足，不能提交 (not enough stock for this manifest)", errors=short)
    for code, lines in grouped.items():
        for line in lines:
            if line.requested_batches:
                named = {r.batch_code: r for r in session.scalars(
                    select(LedgerRecord).where(LedgerRecord.batch_code.in_(line.requested_batches))
                    .execution_options(populate_existing=True))}
                candidates = [named[c] for c in line.requested_batches if c in named]
            else:
                candidates = list(session.scalars(
                    select(LedgerRecord).where(
                        LedgerRecord.enterprise_id == manifest.consignor_id, LedgerRecord.waste_code == code,
                        LedgerRecord.stage == "generation", LedgerRecord.available_kg > EPS)
                    .order_by(LedgerRecord.occurred_at, LedgerRecord.id)
                    .execution_options(populate_existing=True)))
            remaining = line.quantity_kg
            for record in candidates:  # oldest first: waste leaves in the order it arrived
                take = kg(min(record.available_kg or 0.0, remaining))
                if take <= EPS:
                    continue
                record.available_kg = kg(record.available_kg - take)
                line.sources.append(ManifestLineSource(record_id=record.id, quantity_kg=take))
                remaining = kg(remaining - take)
                if remaining <= EPS:
                    break
            if remaining > EPS:
                raise Conflict("所选批次的剩余量不足 (the named batches do not hold this quantity)", errors={
                    f"lines.{line.line_no - 1}.source_batches": [f"{remaining:g} kg more than the named batches hold"]})
        stocks[code].reserved_kg = kg(stocks[code].reserved_kg + sum(line.quantity_kg for line in lines))
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
                record.available_kg = kg(record.available_kg + source.quantity_kg)
                touched.append(record.id)
            line.sources.clear()
        stocks[code].reserved_kg = kg(max(stocks[code].reserved_kg - sum(line.quantity_kg for line in lines), 0.0))
    return touched


def _ship(session: Session, manifest: Manifest, at: datetime, actor: Principal) -> list[int]:
    """Out of storage (出库) and sent out (委外利用/处置) records per source batch; stock leaves."""
    grouped = _lines_by_code(manifest)
    stocks = {code: lock_stock(session, manifest.consignor_id, code) for code in sorted(grouped)}
    touched = []
    for code, lines in grouped.items():
        records = _fresh_records(session, [s.record_id for line in lines for s in line.sources])
        total = kg(sum(line.quantity_kg for line in lines))
        stock = stocks[code]
        if total > stock.on_hand_kg + EPS:  # an invariant: reservations never exceed what is on hand
            raise Conflict(f"库存不足 (stock of {code} is {stock.on_hand_kg:g} kg, {total:g} kg to ship)")
        for line in lines:
            for source in line.sources:
                record = records[source.record_id]
                record.on_site_kg = kg(record.on_site_kg - source.quantity_kg)
                touched.append(record.id)
                common = dict(
                    enterprise_id=manifest.consignor_id, waste_code=code, waste_name=line.waste_name,
                    category=line.category, catalogue_edition=record.catalogue_edition, quantity_kg=source.quantity_kg,
                    occurred_at=at, source_batch_code=record.batch_code, origin="manifest", box_id=record.box_id,
                    manifest_id=manifest.id, manifest_line_id=line.id, manifest_number=manifest.number,
                    handler=actor.label, destination=manifest.receiver.name,
                )
                _new_record(session, "out_of_storage", **common)
                _new_record(session, "sent_out", receiver_name=manifest.receiver.name,
                            licence_number=manifest.receiver_licence, **common)
        stock.on_hand_kg = kg(stock.on_hand_kg - total)
        stock.reserved_kg = kg(max(stock.reserved_kg - total, 0.0))
        stock.updated_at = utcnow()
    return touched


def _return(session: Session, manifest: Manifest, returns: dict[int, float], at: datetime,
            actor: Principal, reason: str) -> list[int]:
    """Refused waste goes back into the consignor's storage (退回入库), into the batches it came from."""
    lines = {line.id: line for line in manifest.lines}
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
            record.on_site_kg = kg(record.on_site_kg + take)
            record.available_kg = kg(record.available_kg + take)
            source.returned_kg = kg(source.returned_kg + take)
            touched.append(record.id)
            _new_record(
                session, "returned", enterprise_id=manifest.consignor_id, waste_code=line.waste_code,
                waste_name=line.waste_name, category=line.category, catalogue_edition=record.catalogue_edition,
                quantity_kg=take, occurred_at=at, source_batch_code=record.batch_code, origin="manifest",
                box_id=record.box_id, manifest_id=manifest.id, manifest_line_id=line.id,
                manifest_number=manifest.number, handler=actor.label,
                note=f"接受人拒收退回 (refused by the receiver): {reason}"[:2000],
            )
            remaining = kg(remaining - take)
            if remaining <= EPS:
                break
        stock = stocks[line.waste_code]
        stock.on_hand_kg = kg(stock.on_hand_kg + quantity - remaining)
        stock.updated_at = utcnow()
    return touched


# ---------------------------------------------------------------- manifest steps

def _step_time(errors: dict, name: str, value: datetime | None, now: datetime, not_before: datetime | None,
               before_what: str) -> datetime:
    at = value or now
    if at > now + timedelta(minutes=5):
        errors.setdefault(name, []).append("cannot be in the future")
    if not_before is not None and at < not_before:
        errors.setdefault(name, []).append(f"cannot be before {before_what}")
    return at


def _begin_step(session: Session, actor: Principal, manifest: Manifest, role: str, action: str,
                verb: str | None = None) -> None:
    """Every step of the lifecycle starts alike: the right party (403), the manifest locked so
    that concurrent steps run one after the other, then the state checked under the lock (409)."""
    _require_party(actor, manifest, role, verb or action)
    _lock_manifest(session, manifest)
    _require_state(manifest, action)


def submit(session: Session, actor: Principal, manifest: Manifest, now: datetime | None = None) -> Manifest:
    now = now or utcnow()
    _begin_step(session, actor, manifest, "consignor", "submit")
    _reserve(session, manifest)
    manifest.status = "submitted"
    manifest.submitted_at = now
    _event(session, manifest, actor, "submit", "draft", now, "consignor")
    refresh_box_colours(session, [s.record_id for line in manifest.lines for s in line.sources], now)
    return manifest


def pickup(session: Session, actor: Principal, manifest: Manifest, data: dict[str, Any],
           now: datetime | None = None) -> Manifest:
    now = now or utcnow()
    _begin_step(session, actor, manifest, "carrier", "pickup", verb="pick up")
    errors: dict[str, list[str]] = {}
    at = _step_time(errors, "picked_up_at", data.get("picked_up_at"), now, manifest.submitted_at, "the submission")
    if not data.get("vehicle_plate"):
        errors["vehicle_plate"] = ["required"]
    if not data.get("driver_name"):
        errors["driver_name"] = ["required"]
    if errors:
        raise InvalidInput("The pickup has invalid fields.", errors=errors)
    manifest.vehicle_plate = data["vehicle_plate"]
    manifest.driver_name = data["driver_name"]
    manifest.driver_phone = data.get("driver_phone") or manifest.driver_phone
    touched = _ship(session, manifest, at, actor)
    manifest.status = "in_transit"
    manifest.picked_up_at = at
    manifest.receipt_due_at = _receipt_due(session, at)
    _event(session, manifest, actor, "pickup", "submitted", at, "carrier", vehicle_plate=manifest.vehicle_plate,
           driver_name=manifest.driver_name, receipt_due_at=manifest.receipt_due_at.isoformat())
    refresh_box_colours(session, touched, now)
    return manifest


def receive(session: Session, actor: Principal, manifest: Manifest, data: dict[str, Any],
            now: datetime | None = None) -> Manifest:
    """Weighed quantities per line; accept, or accept in part (the refused part goes back)."""
    now = now or utcnow()
    _begin_step(session, actor, manifest, "receiver", "receive")
    errors: dict[str, list[str]] = {}
    at = _step_time(errors, "received_at", data.get("received_at"), now, manifest.picked_up_at, "the pickup")
    by_no = {line.line_no: line for line in manifest.lines}
    given: dict[int, dict[str, Any]] = {}
    for i, item in enumerate(data.get("lines") or []):
        place = f"lines.{i}"
        line = by_no.get(item.get("line_no"))
        if line is None:
            errors.setdefault(f"{place}.line_no", []).append(
                f"manifest {manifest.number} has no line {item.get('line_no')} (lines: "
                f"{', '.join(str(n) for n in sorted(by_no))})")
            continue
        if line.line_no in given:
            errors.setdefault(f"{place}.line_no", []).append(f"line {line.line_no} is given twice")
            continue
        received = item.get("received_kg")
        accepted = item.get("accepted_kg", received)
        if received is None or received < 0:
            errors.setdefault(f"{place}.received_kg", []).append("a weighed quantity ≥ 0 is required")
            continue
        if accepted is None or accepted < 0 or accepted > received + EPS:
            errors.setdefault(f"{place}.accepted_kg", []).append("between 0 and the received quantity")
            continue
        if received - accepted > line.quantity_kg + EPS:
            errors.setdefault(f"{place}.accepted_kg", []).append(
                f"cannot send back more than the {line.quantity_kg:g} kg shipped")
        if accepted < received - EPS and not (item.get("refusal_reason") or "").strip():
            errors.setdefault(f"{place}.refusal_reason", []).append("required when only part is accepted")
        given[line.line_no] = {"received": kg(received), "accepted": kg(accepted),
                               "reason": (item.get("refusal_reason") or "").strip()}
    missing = sorted(set(by_no) - set(given))
    if missing and not any(k.startswith("lines.") for k in errors):
        errors.setdefault("lines", []).append(f"every line needs its weighed quantity; missing line(s) "
                                              f"{', '.join(map(str, missing))}")
    if given and not missing and all(g["accepted"] <= EPS for g in given.values()):
        errors.setdefault("lines", []).append("nothing accepted: refuse the manifest with the reject action")
    if errors:
        raise InvalidInput("The receipt has invalid fields.", errors=errors)
    tolerance = rules(session).quantity_tolerance
    returns: dict[int, float] = {}
    discrepancies = []
    for no, g in given.items():
        line = by_no[no]
        line.received_kg, line.accepted_kg, line.refusal_reason = g["received"], g["accepted"], g["reason"]
        if g["received"] - g["accepted"] > EPS:
            returns[line.id] = kg(g["received"] - g["accepted"])
        deviation = abs(g["received"] - line.quantity_kg) / line.quantity_kg
        if deviation > tolerance + 1e-9:
            discrepancies.append({"line_no": no, "shipped_kg": line.quantity_kg, "received_kg": g["received"],
                                  "deviation": round(deviation, 4)})
    reasons = "; ".join(g["reason"] for g in given.values() if g["reason"])
    touched = _return(session, manifest, returns, at, actor, reasons) if returns else []
    manifest.status = "received"
    manifest.received_at = at
    manifest.acceptance = "partial" if returns else "full"
    manifest.discrepant = bool(discrepancies)
    manifest.overdue = manifest.receipt_due_at is not None and at >= manifest.receipt_due_at
    _event(session, manifest, actor, "receive", "in_transit", at, "receiver", acceptance=manifest.acceptance,
           lines=[{"line_no": no, "received_kg": g["received"], "accepted_kg": g["accepted"],
                   "refusal_reason": g["reason"]} for no, g in sorted(given.items())],
           discrepancies=discrepancies, tolerance=tolerance, overdue=manifest.overdue)
    refresh_box_colours(session, touched, now)
    return manifest


def reject(session: Session, actor: Principal, manifest: Manifest, data: dict[str, Any],
           now: datetime | None = None) -> Manifest:
    """拒收: the whole shipment is refused and goes back into the consignor's stock."""
    now = now or utcnow()
    _begin_step(session, actor, manifest, "receiver", "reject")
    errors: dict[str, list[str]] = {}
    at = _step_time(errors, "rejected_at", data.get("rejected_at"), now, manifest.picked_up_at, "the pickup")
    reason = (data.get("reason") or "").strip()
    if not reason:
        errors["reason"] = ["a reason is required"]
    if errors:
        raise InvalidInput("The refusal has invalid fields.", errors=errors)
    for line in manifest.lines:
        line.accepted_kg = 0.0
        line.refusal_reason = reason
    touched = _return(session, manifest, {line.id: line.quantity_kg for line in manifest.lines}, at, actor, reason)
    manifest.status = "rejected"
    manifest.rejected_at = at
    manifest.reject_reason = reason
    manifest.acceptance = "refused"
    manifest.overdue = manifest.receipt_due_at is not None and at >= manifest.receipt_due_at
    _event(session, manifest, actor, "reject", "in_transit", at, "receiver", reason=reason,
           returned_kg=kg(sum(line.quantity_kg for line in manifest.lines)))
    refresh_box_colours(session, touched, now)
    return manifest


def process(session: Session, actor: Principal, manifest: Manifest, data: dict[str, Any],
            now: datetime | None = None) -> Manifest:
    """The 利用/处置方式 per accepted line. No step follows it, so the manifest closes at once:
    ``processed`` and ``closed`` are both in the history, the state ends at closed."""
    now = now or utcnow()
    _begin_step(session, actor, manifest, "receiver", "process")
    errors: dict[str, list[str]] = {}
    at = _step_time(errors, "processed_at", data.get("processed_at"), now, manifest.received_at, "the receipt")
    known = methods(session)
    by_no = {line.line_no: line for line in manifest.lines}
    chosen: dict[int, str] = {}
    for i, item in enumerate(data.get("lines") or []):
        place = f"lines.{i}"
        line = by_no.get(item.get("line_no"))
        if line is None:
            errors.setdefault(f"{place}.line_no", []).append(f"manifest {manifest.number} has no line {item.get('line_no')}")
            continue
        code = (item.get("method_code") or "").strip().upper()
        if code not in known:
            errors.setdefault(f"{place}.method_code", []).append(f"one of {', '.join(known)}")
            continue
        if (line.accepted_kg or 0) <= EPS:
            errors.setdefault(f"{place}.line_no", []).append(f"line {line.line_no} was refused: nothing to process")
            continue
        chosen[line.line_no] = code
    missing = [no for no, line in by_no.items() if (line.accepted_kg or 0) > EPS and no not in chosen]
    if missing and not errors:
        errors["lines"] = [f"every accepted line needs a method code; missing line(s) {', '.join(map(str, missing))}"]
    if errors:
        raise InvalidInput("The processing record has invalid fields.", errors=errors)
    for no, code in chosen.items():
        by_no[no].method_code = code
        # The consignor's sent-out records carry the 利用/处置方式 too (HJ 1259 委外利用/处置).
        session.execute(update(LedgerRecord).where(LedgerRecord.manifest_line_id == by_no[no].id,
                                                   LedgerRecord.stage == "sent_out").values(method_code=code))
    manifest.status = "processed"
    manifest.processed_at = at
    _event(session, manifest, actor, "process", "received", at, "receiver",
           lines=[{"line_no": no, "method_code": code} for no, code in sorted(chosen.items())])
    manifest.status = "closed"
    manifest.closed_at = at
    _event(session, manifest, None, "close", "processed", at, "")
    return manifest


def cancel(session: Session, actor: Principal, manifest: Manifest, data: dict[str, Any] | None = None,
           now: datetime | None = None) -> Manifest:
    now = now or utcnow()
    _begin_step(session, actor, manifest, "consignor", "cancel")
    before = manifest.status
    touched = _release(session, manifest) if before == "submitted" else []
    manifest.status = "cancelled"
    manifest.cancelled_at = now
    _event(session, manifest, actor, "cancel", before, now, "consignor", reason=(data or {}).get("reason") or "")
    refresh_box_colours(session, touched, now)
    return manifest


ACTIONS = {"submit": submit, "pickup": pickup, "receive": receive, "reject": reject, "process": process,
           "cancel": cancel}


def act(session: Session, actor: Principal, manifest: Manifest, action: str, data: dict[str, Any],
        now: datetime | None = None) -> Manifest:
    if action == "submit":
        return submit(session, actor, manifest, now)
    return ACTIONS[action](session, actor, manifest, data, now)


# ---------------------------------------------------------------- anomalies (mass balance)

def _period(session: Session, start: date | None, end: date | None, now: datetime) -> tuple[datetime, datetime]:
    until = _day_start(end + timedelta(days=1)) if end else now
    since = _day_start(start) if start else until - timedelta(days=rules(session).default_period_days)
    return since, until


def _anomaly(org: Organization, code: str, zh: str, en: str, values: dict[str, Any], thresholds: dict[str, Any]) -> dict:
    return {"enterprise_id": org.id, "enterprise_name": org.name, "county_code": org.county_code, "park_id": org.park_id,
            "code": code, "zh": zh, "en": en, "values": values, "thresholds": thresholds}


def anomalies(session: Session, actor: Principal, *, enterprise: int | None = None, start: date | None = None,
              end: date | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Mass-balance anomalies per enterprise in the caller's jurisdiction, each with its numbers."""
    now = now or utcnow()
    cfg = rules(session)
    since, until = _period(session, start, end, now)
    orgs_q = select(Organization).where(enterprise_scope(actor))
    if enterprise:
        orgs_q = orgs_q.where(Organization.id == enterprise)
    orgs = {o.id: o for o in session.scalars(orgs_q)}
    ids = list(orgs)
    found: list[dict[str, Any]] = []
    if not ids:
        return {"from": since, "to": until, "items": []}

    # 1. Carbon gone missing: waste carbon weighed at replacements vs the carbon those replacements removed.
    previous_mass = func.lag(Fill.mass_kg).over(partition_by=Fill.box_id, order_by=(Fill.filled_at, Fill.id))
    fills = (select(Box.enterprise_id.label("enterprise_id"), Fill.kind.label("kind"), Fill.filled_at.label("at"),
                    Fill.removed_waste_kg.label("removed"), previous_mass.label("previous"))
             .join(Box, Box.id == Fill.box_id).where(Box.enterprise_id.in_(ids), Fill.filled_at < until).subquery())
    rows = session.execute(
        select(fills.c.enterprise_id, func.count(), func.sum(fills.c.removed), func.sum(fills.c.previous))
        .where(fills.c.kind == "replacement", fills.c.at >= since, fills.c.previous.is_not(None))
        .group_by(fills.c.enterprise_id))
    for org_id, count, removed, filled in rows:
        if not filled:
            continue
        ratio = (removed or 0.0) / filled
        if ratio < cfg.min_removed_to_filled_ratio:
            found.append(_anomaly(
                orgs[org_id], "carbon_missing",
                f"期内更换 {count} 次，被换下的活性炭装填量合计 {filled:g} kg，称重废炭仅 {removed:g} kg"
                f"（{ratio:.0%}，低于 {cfg.min_removed_to_filled_ratio:.0%}）：活性炭去向不明",
                f"{count} replacement(s) removed carbon filled at {filled:g} kg but only {removed:g} kg of waste "
                f"carbon was weighed ({ratio:.0%}, below {cfg.min_removed_to_filled_ratio:.0%}): carbon gone missing",
                {"replacements": count, "filled_kg": kg(filled), "removed_kg": kg(removed or 0), "ratio": round(ratio, 4)},
                {"min_ratio": cfg.min_removed_to_filled_ratio}))

    # 2. Generated but never shipped: batches still on site beyond the storage limit.
    limit_at = now - timedelta(days=cfg.storage_limit_days)
    rows = session.execute(
        select(LedgerRecord.enterprise_id, func.count(), func.sum(LedgerRecord.on_site_kg),
               func.min(LedgerRecord.occurred_at))
        .where(LedgerRecord.enterprise_id.in_(ids), LedgerRecord.stage == "generation",
               LedgerRecord.on_site_kg > EPS, LedgerRecord.occurred_at < limit_at)
        .group_by(LedgerRecord.enterprise_id))
    for org_id, count, on_site, oldest in rows:
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=timezone.utc)
        days = (now - oldest).total_seconds() / 86400
        found.append(_anomaly(
            orgs[org_id], "stored_too_long",
            f"{count} 个产生批次共 {on_site:g} kg 危险废物在厂内贮存超过 {cfg.storage_limit_days} 天未转移（最久 {days:.0f} 天）",
            f"{count} batch(es), {on_site:g} kg in all, generated but not shipped for more than "
            f"{cfg.storage_limit_days} days (oldest {days:.0f} days)",
            {"batches": count, "on_site_kg": kg(on_site), "oldest_days": round(days, 1)},
            {"storage_limit_days": cfg.storage_limit_days}))

    # 3. More on site than a storage point may hold.
    rows = session.execute(select(WasteStock.enterprise_id, func.sum(WasteStock.on_hand_kg))
                           .where(WasteStock.enterprise_id.in_(ids)).group_by(WasteStock.enterprise_id)
                           .having(func.sum(WasteStock.on_hand_kg) > cfg.max_on_site_kg))
    for org_id, on_hand in rows:
        found.append(_anomaly(
            orgs[org_id], "storage_over_limit",
            f"厂内贮存危险废物 {on_hand:g} kg，超过贮存点上限 {cfg.max_on_site_kg:g} kg",
            f"{on_hand:g} kg of hazardous waste on site, above the storage point limit of {cfg.max_on_site_kg:g} kg",
            {"on_hand_kg": kg(on_hand)}, {"max_on_site_kg": cfg.max_on_site_kg}))

    # 4. Shipped but not received: in transit past the receipt deadline.
    shipped = (select(ManifestLine.manifest_id, func.sum(ManifestLine.quantity_kg).label("kg"))
               .group_by(ManifestLine.manifest_id).subquery())
    rows = session.execute(
        select(Manifest.consignor_id, func.count(), func.sum(shipped.c.kg), func.min(Manifest.picked_up_at))
        .join(shipped, shipped.c.manifest_id == Manifest.id)
        .where(Manifest.consignor_id.in_(ids), Manifest.status == "in_transit", Manifest.receipt_due_at <= now)
        .group_by(Manifest.consignor_id))
    for org_id, count, quantity, oldest in rows:
        found.append(_anomaly(
            orgs[org_id], "shipped_not_received",
            f"{count} 张联单共 {quantity:g} kg 已运出，超过 {cfg.receipt_working_days} 个工作日仍未被接收",
            f"{count} manifest(s), {quantity:g} kg, shipped but not received within "
            f"{cfg.receipt_working_days} working days",
            {"manifests": count, "quantity_kg": kg(quantity)}, {"receipt_working_days": cfg.receipt_working_days}))

    # 5. Received far less than shipped over the period (lost between consignor and receiver).
    received = (select(ManifestLine.manifest_id, func.sum(ManifestLine.quantity_kg).label("shipped"),
                       func.sum(ManifestLine.received_kg).label("received"))
                .group_by(ManifestLine.manifest_id).subquery())
    rows = session.execute(
        select(Manifest.consignor_id, func.count(), func.sum(received.c.shipped), func.sum(received.c.received))
        .join(received, received.c.manifest_id == Manifest.id)
        .where(Manifest.consignor_id.in_(ids), Manifest.status.in_(("received", "processed", "closed")),
               Manifest.picked_up_at >= since, Manifest.picked_up_at < until)
        .group_by(Manifest.consignor_id))
    for org_id, count, shipped_kg, received_kg in rows:
        ratio = (received_kg or 0.0) / shipped_kg if shipped_kg else 1.0
        if ratio < cfg.min_received_to_shipped_ratio:
            found.append(_anomaly(
                orgs[org_id], "received_short",
                f"期内 {count} 张联单运出 {shipped_kg:g} kg，接受人仅称重接收 {received_kg:g} kg（{ratio:.0%}，"
                f"低于 {cfg.min_received_to_shipped_ratio:.0%}）",
                f"{count} manifest(s) shipped {shipped_kg:g} kg but the receivers weighed only {received_kg:g} kg "
                f"({ratio:.0%}, below {cfg.min_received_to_shipped_ratio:.0%})",
                {"manifests": count, "shipped_kg": kg(shipped_kg), "received_kg": kg(received_kg or 0),
                 "ratio": round(ratio, 4)}, {"min_ratio": cfg.min_received_to_shipped_ratio}))
    found.sort(key=lambda a: (a["enterprise_id"], a["code"]))
    return {"from": since, "to": until, "items": found}
