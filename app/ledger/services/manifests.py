"""Manifests: visibility, lookup and listing, and creation (electronic, paper or national)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, false, or_, select, true
from sqlalchemy.orm import Session

from app.accounts.models import Organization
from app.accounts.services import Principal, enterprise_scope
from app.audit.signatures import SignatureProof
from app.common.confirmations import Warnings, confirmed_lines
from app.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.common.timeutil import local_date, utcnow
from app.ledger.catalogue import parse_hazards
from app.ledger.models import PHYSICAL_FORMS, LedgerRecord, Manifest, ManifestLine, ManifestStatus, Stage, WasteStock
from app.ledger.services.licences import covering_licence, transport_permit
from app.ledger.services.numbering import NUMBER_RE, issue_number, note_external_number, number_problem
from app.ledger.services.rules_access import (
    EPS,
    ZERO_KG,
    _unknown_code,
    calendar,
    catalogue_entry,
    is_number,
    kg,
    rules,
)
from app.ledger.services.steps import _event, _receipt_due, submit
from app.ledger.services.stock import _reserve, _ship


def manifest_scope(actor: Principal):
    """Manifests ``actor`` may read: its own as a party, and its jurisdiction's consignors'."""
    if actor.is_operator:
        return true()
    org = actor.organization
    if org is None or actor.is_device:
        return false()
    if org.has_role("regulator") and org.county_code is None:
        # The whole city (enterprise_scope's rule: a regulator without a county): every consignor
        # is inside. Spelt as "consignor in (every organisation)" it made PostgreSQL read all 10⁶
        # manifests per list page (a seq scan, 7 s) instead of walking the list's index.
        return true()
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


def require_visible_consignor(session: Session, actor: Principal, enterprise_id: int) -> None:
    """NotFound unless ``actor`` may see the consignor ``enterprise_id``: in its jurisdiction, or
    the consignor of a manifest it is a party to (a receiver filtering by its own consignors).
    Another tenant's enterprise and an unknown one answer alike: existence is not disclosed."""
    if session.scalar(select(Organization.id).where(Organization.id == enterprise_id, enterprise_scope(actor))):
        return
    shared = select(Manifest.id).where(Manifest.consignor_id == enterprise_id, manifest_scope(actor)).limit(1)
    if session.scalar(shared) is None:
        raise NotFound(f"企业 {enterprise_id} 不存在或无权查看 (enterprise {enterprise_id} not found)")


def list_manifests(
    session: Session,
    actor: Principal,
    *,
    status: str | None = None,
    flag: str | None = None,
    enterprise: int | None = None,
    party: str | None = None,
    now: datetime | None = None,
):
    now = now or utcnow()
    query = select(Manifest).where(manifest_scope(actor))
    if status:
        query = query.where(Manifest.status == status)
    if enterprise:
        require_visible_consignor(session, actor, enterprise)
        query = query.where(Manifest.consignor_id == enterprise)
    org_id = actor.organization.id if actor.organization else -1
    if party == "consignor":
        query = query.where(Manifest.consignor_id == org_id)
    elif party == "carrier":
        query = query.where(Manifest.carrier_id == org_id)
    elif party == "receiver":
        query = query.where(Manifest.receiver_id == org_id)
    if flag == "overdue":
        query = query.where(
            or_(
                Manifest.overdue.is_(True),
                and_(Manifest.status == ManifestStatus.IN_TRANSIT, Manifest.receipt_due_at <= now),
            )
        )
    elif flag == "discrepant":
        query = query.where(Manifest.discrepant.is_(True))
    elif flag == "late":
        query = query.where(Manifest.late_entry.is_(True))
    elif flag == "rejected":
        query = query.where(Manifest.status == ManifestStatus.REJECTED)
    return query.order_by(Manifest.created_at.desc(), Manifest.id.desc())


# ---------------------------------------------------------------- creating manifests


def _validate_lines(
    session: Session, consignor: Organization | None, raw_lines: list[dict[str, Any]], errors: dict[str, list[str]]
) -> list[dict[str, Any]]:
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
        if not is_number(quantity) or kg(quantity) <= 0:
            errors.setdefault(f"{place}.quantity_kg", []).append("must be greater than 0 (at least 1 g)")
            continue
        hazard = raw.get("hazard") or entry.hazard
        if parse_hazards(hazard) is None:
            errors.setdefault(f"{place}.hazard", []).append("'/'-separated hazard characteristics: T, C, I, R, In")
        form = raw.get("physical_form") or "solid"
        if form not in PHYSICAL_FORMS:
            errors.setdefault(f"{place}.physical_form", []).append(f"one of {', '.join(PHYSICAL_FORMS)}")
        batches = list(raw.get("source_batches") or [])
        if batches and consignor is not None:
            found = {
                r.batch_code: r
                for r in session.scalars(
                    select(LedgerRecord).where(
                        LedgerRecord.batch_code.in_(batches),
                        LedgerRecord.enterprise_id == consignor.id,
                        LedgerRecord.stage == Stage.GENERATION,
                    )
                )
            }
            for code in batches:
                record = found.get(code)
                if record is None:
                    errors.setdefault(f"{place}.source_batches", []).append(
                        f"{code} is not a generation batch of the consignor"
                    )
                elif record.waste_code != entry.code:
                    errors.setdefault(f"{place}.source_batches", []).append(
                        f"{code} holds {record.waste_code}, not {entry.code}"
                    )
            if len(set(batches)) != len(batches):
                errors.setdefault(f"{place}.source_batches", []).append("a batch is named twice")
        lines.append(
            {
                "line_no": i + 1,
                "waste_code": entry.code,
                "waste_name": raw.get("waste_name") or entry.description,
                "category": entry.category,
                "physical_form": form,
                "hazard": hazard,
                "packaging": raw.get("packaging") or "",
                "quantity_kg": kg(quantity),
                "requested_batches": batches,
            }
        )
    return lines


def create_manifest(
    session: Session,
    actor: Principal,
    data: dict[str, Any],
    now: datetime | None = None,
    *,
    signature: SignatureProof | None = None,
) -> Manifest:
    """A draft manifest (or, for a paper/national manifest recorded afterwards, one already in
    transit). ``submit: true`` submits at once, signed by ``signature`` (as :func:`submit`)."""
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
        errors["carrier_id"] = [
            f"{carrier.name} holds no valid road transport permit for dangerous goods (a licence of kind 'transport')"
        ]
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
                    f"({line['category']})"
                )
            licence = licence or found
    if consignor is not None and lines:
        need: dict[str, Decimal] = defaultdict(Decimal)
        for line in lines:
            need[line["waste_code"]] += line["quantity_kg"]
        stocks = {
            s.waste_code: s
            for s in session.scalars(
                select(WasteStock).where(
                    WasteStock.enterprise_id == consignor.id, WasteStock.waste_code.in_(list(need))
                )
            )
        }
        for line in lines:
            stock = stocks.get(line["waste_code"])
            available = stock.available_kg if stock else ZERO_KG
            if need[line["waste_code"]] > available + EPS:
                errors.setdefault(f"lines.{line['line_no'] - 1}.quantity_kg", []).append(
                    f"only {float(available):g} kg of {line['waste_code']} available in stock; "
                    f"{float(need[line['waste_code']]):g} kg requested"
                )
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
            problem = f"the number's prefecture {number[4:8]} is not the consignor's ({home})"
        if problem:
            errors["number"] = [problem]
    if errors:
        raise InvalidInput("The manifest has invalid fields.", errors=errors)
    unusual = Warnings(session)  # possible but unusual quantities: the request must confirm them
    for i, line in enumerate(lines):
        unusual.waste_quantity(f"lines.{i}.quantity_kg", line["quantity_kg"])
    confirmed = unusual.settle(data)
    # Each of these missing (or a consignor without a county) is an error above.
    assert consignor is not None and consignor.county_code and carrier is not None and receiver is not None
    if number:
        if session.scalar(select(Manifest.id).where(Manifest.number == number)):
            raise Conflict(
                f"联单编号 {number} 已存在 (a manifest with this number exists)",
                errors={"number": ["already recorded"]},
            )
        note_external_number(session, number)
    else:
        number = issue_number(session, consignor.county_code[:4], today.year)
    manifest = Manifest(
        number=number,
        origin=origin,
        status=ManifestStatus.DRAFT,
        consignor_id=consignor.id,
        carrier_id=carrier.id,
        receiver_id=receiver.id,
        receiver_licence=(licence or {}).get("number", ""),
        route=data.get("route") or "",
        note=data.get("note") or "",
        vehicle_plate=data.get("vehicle_plate") or "",
        driver_name=data.get("driver_name") or "",
        driver_phone=data.get("driver_phone") or "",
        created_by_user_id=actor.user.id if actor.user else None,
        created_at=now,
    )
    manifest.lines = [
        ManifestLine(**line, confirmed_unusual=i in confirmed_lines(unusual, confirmed)) for i, line in enumerate(lines)
    ]
    session.add(manifest)
    session.flush()
    _event(session, manifest, actor, "create", None, now, "consignor", origin=origin)
    if transferred_at is not None:
        _record_past_transfer(session, actor, manifest, transferred_at, now)
    elif data.get("submit"):
        submit(session, actor, manifest, now, signature=signature)
    return manifest


def _record_past_transfer(
    session: Session, actor: Principal, manifest: Manifest, transferred_at: datetime, now: datetime
) -> None:
    """A paper (or national) manifest entered after the waste left: reserve and ship at once."""
    _reserve(session, manifest)
    manifest.submitted_at = transferred_at
    _ship(session, manifest, transferred_at, actor)
    manifest.status = ManifestStatus.IN_TRANSIT
    manifest.picked_up_at = transferred_at
    manifest.receipt_due_at = _receipt_due(session, transferred_at)
    days = calendar(session).working_days_between(local_date(transferred_at), local_date(now))
    manifest.entry_working_days = days
    manifest.late_entry = days > rules(session).paper_entry_working_days
    _event(
        session,
        manifest,
        actor,
        "record_transfer",
        ManifestStatus.DRAFT,
        transferred_at,
        "consignor",
        entered_at=now.isoformat(),
        working_days_after_transfer=days,
        late=manifest.late_entry,
        vehicle_plate=manifest.vehicle_plate,
        driver_name=manifest.driver_name,
    )
