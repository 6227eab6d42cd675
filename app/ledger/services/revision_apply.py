"""What a revision may change, checked by the rules of the original write, and how it is applied.

Manifests: the carrier, the receiver, route, note, vehicle and driver; per line the packaging, the
physical form, the shipped quantity and (once received) the weighed and accepted quantities with
the refusal reason. Ledger records: a generation batch's quantity and its descriptive fields (the
later stages follow their manifest: correct the manifest).

A changed quantity re-posts the manifest's stock: its reservation or shipment and its returns are
taken back, then made again with the corrected figures, under the same stock locks as the steps
(:mod:`.stock`), so stock never goes negative; the out-of-storage, sent-out and returned ledger
records follow the new figures.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import Organization
from app.accounts.services import Principal
from app.common.errors import Conflict, InvalidInput
from app.common.limits import limit
from app.common.timeutil import local_date
from app.ledger.models import (
    PHYSICAL_FORMS,
    PICKED_UP_STATES,
    RECEIVED_STATES,
    LedgerRecord,
    Manifest,
    ManifestLine,
)
from app.ledger.services.licences import covering_licence, transport_permit
from app.ledger.services.revision_repost import receipt_flags, repost, sync_derived_records
from app.ledger.services.rules_access import EPS, ZERO_KG, is_number, kg
from app.ledger.services.steps import _lock_manifest, named_lines
from app.ledger.services.stock import refresh_box_colours

REVISABLE_STATES = ("submitted", "in_transit", "received", "processed", "closed", "rejected")
HEADER_TEXTS = {"route": 300, "note": 2000, "vehicle_plate": 12, "driver_name": 60, "driver_phone": 30}
LINE_TEXTS = {"packaging": 60, "refusal_reason": 2000}
LINE_MASSES = ("quantity_kg", "received_kg", "accepted_kg")
RECORD_TEXTS = {"waste_name": 300, "facility_code": 40, "container_type": 40, "handler": 120, "note": 2000}


def _mass(errors: dict, place: str, value: Any, kind: str) -> Decimal | None:
    """An exact mass within the plausible range of ``kind`` (app/data/plausibility.yaml)."""
    if not is_number(value) and not isinstance(value, str):
        errors.setdefault(place, []).append("a number of kg is required")
        return None
    try:
        mass = kg(value)
    except ValueError:
        errors.setdefault(place, []).append("a number of kg is required")
        return None
    problem = limit(kind).check(float(mass))
    if problem:
        errors.setdefault(place, []).append(problem)
        return None
    return mass


def _text(errors: dict, place: str, value: Any, longest: int) -> str | None:
    if not isinstance(value, str) or len(value) > longest:
        errors.setdefault(place, []).append(f"a text of at most {longest} characters")
        return None
    return value.strip()


# ---------------------------------------------------------------- snapshots (the versions' content)


def _m(value: Decimal | None) -> str | None:
    return None if value is None else str(kg(value))


def manifest_content(manifest: Manifest) -> dict[str, Any]:
    return {
        "number": manifest.number,
        "version": manifest.version or 1,
        "status": str(manifest.status),
        "carrier_id": manifest.carrier_id,
        "carrier_name": manifest.carrier.name if manifest.carrier else "",
        "receiver_id": manifest.receiver_id,
        "receiver_name": manifest.receiver.name if manifest.receiver else "",
        "receiver_licence": manifest.receiver_licence,
        **{name: getattr(manifest, name) for name in HEADER_TEXTS},
        "lines": [
            {
                "line_no": line.line_no,
                "waste_code": line.waste_code,
                "waste_name": line.waste_name,
                "physical_form": line.physical_form,
                "packaging": line.packaging,
                "quantity_kg": _m(line.quantity_kg),
                "received_kg": _m(line.received_kg),
                "accepted_kg": _m(line.accepted_kg),
                "refusal_reason": line.refusal_reason,
                "method_code": line.method_code,
                "sources": [
                    {
                        "batch_code": s.record.batch_code,
                        "quantity_kg": _m(s.quantity_kg),
                        "returned_kg": _m(s.returned_kg),
                    }
                    for s in line.sources
                ],
            }
            for line in manifest.lines
        ],
    }


def record_content(record: LedgerRecord) -> dict[str, Any]:
    return {
        "batch_code": record.batch_code,
        "version": record.version or 1,
        "stage": str(record.stage),
        "waste_code": record.waste_code,
        "quantity_kg": _m(record.quantity_kg),
        "on_site_kg": _m(record.on_site_kg),
        "available_kg": _m(record.available_kg),
        "container_count": record.container_count,
        **{name: getattr(record, name) for name in RECORD_TEXTS},
    }


# ---------------------------------------------------------------- manifests: checking the changes


def check_manifest_changes(session: Session, manifest: Manifest, raw: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The proposed changes in their stored form (masses as decimal strings), only what differs;
    every problem at once as 422 (per field), a state that cannot be revised as 409."""
    if manifest.status not in REVISABLE_STATES:
        hint = "a draft is changed by cancelling it" if manifest.status == "draft" else "it is cancelled"
        raise Conflict(
            f"联单 {manifest.number} 当前状态不能申请更正 (manifest is {manifest.status}: {hint})",
            status_now=manifest.status,
        )
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    today = local_date(now)
    if "carrier_id" in raw and raw["carrier_id"] != manifest.carrier_id:
        carrier = session.get(Organization, raw["carrier_id"]) if isinstance(raw["carrier_id"], int) else None
        if carrier is None or not carrier.has_role("carrier"):
            errors["carrier_id"] = ["the carrier (承运人) must be an organisation with the carrier role"]
        elif transport_permit(carrier, today) is None:
            errors["carrier_id"] = [f"{carrier.name} holds no valid road transport permit for dangerous goods"]
        else:
            out["carrier_id"] = carrier.id
    if "receiver_id" in raw and raw["receiver_id"] != manifest.receiver_id:
        receiver = session.get(Organization, raw["receiver_id"]) if isinstance(raw["receiver_id"], int) else None
        if receiver is None or not (receiver.has_role("receiver") or receiver.has_role("regenerator")):
            errors["receiver_id"] = [
                "the receiver (接受人) must be an organisation with the receiver or regenerator role"
            ]
        elif any(line.consumed_kg > EPS for line in manifest.lines):
            errors["receiver_id"] = ["the accepted waste is already consumed by the receiver's regeneration"]
        else:
            for line in manifest.lines:
                if covering_licence(receiver, line.waste_code, today) is None:
                    errors.setdefault("receiver_id", []).append(
                        f"{receiver.name} holds no valid hazardous-waste licence covering {line.waste_code}"
                    )
            out["receiver_id"] = receiver.id
    for name, longest in HEADER_TEXTS.items():
        if name in raw:
            value = _text(errors, name, raw[name], longest)
            if name in ("vehicle_plate", "driver_name") and value == "" and manifest.status in PICKED_UP_STATES:
                errors.setdefault(name, []).append("required once the waste is picked up")
            elif value is not None and value != getattr(manifest, name):
                out[name] = value
    lines_out: list[dict[str, Any]] = []
    for place, found, item in named_lines(errors, manifest, raw.get("lines")):
        change = _check_line(manifest, found, item, place, errors)
        if len(change) > 1:
            lines_out.append(change)
    if lines_out:
        out["lines"] = lines_out
    if not errors:
        _check_line_totals(manifest, out, errors)
    if errors:
        raise InvalidInput("The revision has invalid fields.", errors=errors)
    if not out:
        raise InvalidInput.field("changes", "nothing would change: give the corrected values")
    return out


def _check_line(manifest: Manifest, line: ManifestLine, item: dict, place: str, errors: dict) -> dict[str, Any]:
    change: dict[str, Any] = {"line_no": line.line_no}
    if "physical_form" in item and item["physical_form"] != line.physical_form:
        if item["physical_form"] not in PHYSICAL_FORMS:
            errors.setdefault(f"{place}.physical_form", []).append(f"one of {', '.join(PHYSICAL_FORMS)}")
        else:
            change["physical_form"] = item["physical_form"]
    for name, longest in LINE_TEXTS.items():
        if name in item:
            value = _text(errors, f"{place}.{name}", item[name], longest)
            if value is not None and value != getattr(line, name):
                change[name] = value
    for name in LINE_MASSES:
        if name not in item or item[name] is None:
            continue
        if name != "quantity_kg" and manifest.status not in RECEIVED_STATES:
            errors.setdefault(f"{place}.{name}", []).append("only a received manifest has weighed quantities")
            continue
        mass = _mass(errors, f"{place}.{name}", item[name], "waste_kg" if name == "quantity_kg" else "received_kg")
        if mass is not None and mass != getattr(line, name):
            change[name] = str(mass)
    if "received_kg" in change and "accepted_kg" not in item and line.accepted_kg == line.received_kg:
        change["accepted_kg"] = change["received_kg"]  # accepted whole: it stays accepted whole (as at receipt)
    return change


def _check_line_totals(manifest: Manifest, out: dict[str, Any], errors: dict) -> None:
    """The receipt's rules on the corrected figures of every line (changed or not)."""
    changed = {c["line_no"]: c for c in out.get("lines", [])}
    received_any = manifest.status in RECEIVED_STATES
    accepted_total = ZERO_KG
    for i, line in enumerate(manifest.lines):
        c = changed.get(line.line_no, {})
        quantity = kg(c.get("quantity_kg", line.quantity_kg))
        if not received_any:
            continue
        received = kg(c.get("received_kg", line.received_kg))
        accepted = kg(c.get("accepted_kg", line.accepted_kg))
        accepted_total += accepted
        place = f"lines.{i}"
        if accepted > received:
            errors.setdefault(f"{place}.accepted_kg", []).append("between 0 and the received quantity")
        elif received - accepted > quantity:
            errors.setdefault(f"{place}.accepted_kg", []).append(
                f"cannot send back more than the {quantity} kg shipped"
            )
        if accepted < line.consumed_kg:
            errors.setdefault(f"{place}.accepted_kg", []).append(
                f"{line.consumed_kg} kg of it are already consumed by regeneration"
            )
        if line.method_code and accepted <= EPS:
            errors.setdefault(f"{place}.accepted_kg", []).append("a processed line keeps an accepted quantity")
        if accepted < received - EPS and not c.get("refusal_reason", line.refusal_reason):
            errors.setdefault(f"{place}.refusal_reason", []).append("required when only part is accepted")
    if received_any and accepted_total <= EPS:
        errors.setdefault("lines", []).append("nothing accepted: a refusal is not a correction")


def stock_shortfall(session: Session, manifest: Manifest, changes: dict[str, Any]) -> dict[str, list[str]]:
    """Per line: more kg than the consignor has available (the stock locks are taken at approval)."""
    from app.ledger.models import WasteStock

    changed = {c["line_no"]: c for c in changes.get("lines", [])}
    more: dict[str, Decimal] = defaultdict(Decimal)
    for line in manifest.lines:
        if "quantity_kg" in changed.get(line.line_no, {}):
            more[line.waste_code] += kg(changed[line.line_no]["quantity_kg"]) - line.quantity_kg
    errors: dict[str, list[str]] = {}
    for code, extra in more.items():
        stock = session.scalar(
            select(WasteStock).where(WasteStock.enterprise_id == manifest.consignor_id, WasteStock.waste_code == code)
        )
        available = stock.available_kg if stock else ZERO_KG
        if extra > available + EPS:
            for i, line in enumerate(manifest.lines):
                if line.waste_code == code and line.line_no in changed:
                    errors[f"lines.{i}.quantity_kg"] = [
                        f"only {available} kg of {code} more available in stock; {kg(extra)} kg more requested"
                    ]
    return errors


# ---------------------------------------------------------------- manifests: applying


def apply_manifest_changes(
    session: Session, actor: Principal, manifest: Manifest, changes: dict[str, Any], now: datetime
) -> None:
    """Write the (re-checked) changes; re-post the stock when a quantity changed."""
    _lock_manifest(session, manifest)
    changes = check_manifest_changes(session, manifest, _as_input(changes), now)
    if "carrier_id" in changes:
        manifest.carrier_id = changes["carrier_id"]
    if "receiver_id" in changes:
        receiver = session.get(Organization, changes["receiver_id"])
        assert receiver is not None  # checked above
        manifest.receiver_id = receiver.id
        licence = covering_licence(receiver, manifest.lines[0].waste_code, local_date(now)) if manifest.lines else None
        manifest.receiver_licence = (licence or {}).get("number", "")
    for name in HEADER_TEXTS:
        if name in changes:
            setattr(manifest, name, changes[name])
    session.flush()
    session.refresh(manifest, ["carrier", "receiver"])
    by_no = {line.line_no: line for line in manifest.lines}
    masses_changed = False
    for change in changes.get("lines", []):
        line = by_no[change["line_no"]]
        for name, value in change.items():
            if name in LINE_MASSES:
                masses_changed = True
                setattr(line, name, kg(value))
            elif name != "line_no":
                setattr(line, name, value)
    if masses_changed:
        touched = repost(session, manifest)
        receipt_flags(session, manifest)
        refresh_box_colours(session, touched, now)
    sync_derived_records(session, actor, manifest)


def _as_input(changes: dict[str, Any]) -> dict[str, Any]:
    return {**changes, "lines": [dict(c) for c in changes.get("lines", [])]}
