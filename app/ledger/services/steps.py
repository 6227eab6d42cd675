"""Manifest lifecycle steps: parties, state checks, locking, events, and submit/pickup/receive/reject/process/cancel.

Over ~400 lines because the six steps share the party/lock/state helpers at the top and
read best in lifecycle order in one file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.accounts.services import Principal
from app.audit import signatures
from app.audit.signatures import SignatureProof
from app.common.confirmations import Warnings, confirmed_lines
from app.common.errors import Conflict, Forbidden, InvalidInput
from app.common.timeutil import local_date, utcnow
from app.ledger.locking import acquire_write_lock
from app.ledger.models import LedgerRecord, Manifest, ManifestEvent, ManifestLine, ManifestStatus, Stage
from app.ledger.services.rules_access import EPS, ZERO_KG, _day_start, calendar, is_number, kg, methods, rules
from app.ledger.services.stock import _release, _reserve, _return, _ship, refresh_box_colours

S = ManifestStatus


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
            party=party,
            action=action,
        )


ACTION_FROM: dict[str, tuple[ManifestStatus, ...]] = {
    "submit": (S.DRAFT,),
    "pickup": (S.SUBMITTED,),
    "receive": (S.IN_TRANSIT,),
    "reject": (S.IN_TRANSIT,),
    "process": (S.RECEIVED,),
    "cancel": (S.DRAFT, S.SUBMITTED),
}


def _require_state(manifest: Manifest, action: str) -> None:
    allowed = ACTION_FROM[action]
    if manifest.status not in allowed:
        from app.ledger.models import STATE_ZH

        hint = "；只能在承运人提货前作废 (cancel is possible only before pickup)" if action == "cancel" else ""
        raise Conflict(
            f"联单 {manifest.number} 当前状态为{STATE_ZH[manifest.status]}，不能执行 {action}{hint} "
            f"(manifest is {manifest.status}; {action} needs {' or '.join(allowed)})",
            status_now=manifest.status,
            action=action,
        )


def _lock_manifest(session: Session, manifest: Manifest) -> Manifest:
    """Lock the manifest row and re-read it (state, lines): two steps on one manifest serialise."""
    acquire_write_lock(session)
    # The rows must be fetched for populate_existing to refresh the objects already loaded.
    session.scalars(
        select(Manifest)
        .where(Manifest.id == manifest.id)
        .with_for_update(of=Manifest)
        .execution_options(populate_existing=True)
    ).one()
    session.scalars(
        select(ManifestLine).where(ManifestLine.manifest_id == manifest.id).execution_options(populate_existing=True)
    ).all()
    return manifest


def _event(
    session: Session,
    manifest: Manifest,
    actor: Principal | None,
    action: str,
    from_status: ManifestStatus | None,
    at: datetime,
    party: str = "",
    **detail: Any,
) -> ManifestEvent:
    org = actor.organization if actor else None
    event = ManifestEvent(
        manifest_id=manifest.id,
        action=action,
        from_status=from_status,
        to_status=manifest.status,
        at=at,
        recorded_at=utcnow(),
        actor=actor.label if actor else "system",
        organization_id=org.id if org else None,
        organization_name=org.name if org else "",
        party=party,
        detail=detail,
    )
    manifest.events.append(event)
    return event


def _receipt_due(session: Session, picked_up_at: datetime) -> datetime:
    """End of the N-th working day after pickup (Shanghai): later receipts are overdue."""
    due_day = calendar(session).add_working_days(local_date(picked_up_at), rules(session).receipt_working_days)
    return _day_start(due_day + timedelta(days=1))


# ---------------------------------------------------------------- manifest steps


def _step_time(
    errors: dict, name: str, value: datetime | None, now: datetime, not_before: datetime | None, before_what: str
) -> datetime:
    at = value or now
    if at > now + timedelta(minutes=5):
        errors.setdefault(name, []).append("cannot be in the future")
    if not_before is not None and at < not_before:
        errors.setdefault(name, []).append(f"cannot be before {before_what}")
    return at


def named_lines(
    errors: dict[str, list[str]], manifest: Manifest, items: list[dict[str, Any]] | None
) -> Iterator[tuple[str, ManifestLine, dict[str, Any]]]:
    """The items of a body's ``lines`` with the manifest line each names by ``line_no``, and its
    error place ``lines.<i>``; a line the manifest has not, or one given twice, is an error and
    is skipped (receipt, processing and revisions name lines alike)."""
    # Keyed by Any: a body may name a line by any JSON value (an unknown one is an error).
    by_no: dict[Any, ManifestLine] = {line.line_no: line for line in manifest.lines}
    seen: set[int] = set()
    for i, item in enumerate(items or []):
        place = f"lines.{i}"
        line = by_no.get(item.get("line_no"))
        if line is None:
            errors.setdefault(f"{place}.line_no", []).append(
                f"manifest {manifest.number} has no line {item.get('line_no')} "
                f"(lines: {', '.join(str(n) for n in sorted(by_no))})"
            )
        elif line.line_no in seen:
            errors.setdefault(f"{place}.line_no", []).append(f"line {line.line_no} is given twice")
        else:
            seen.add(line.line_no)
            yield place, line, item


def _begin_step(
    session: Session, actor: Principal, manifest: Manifest, role: str, action: str, verb: str | None = None
) -> None:
    """Every step of the lifecycle starts alike: the right party (403), the manifest locked so
    that concurrent steps run one after the other, then the state checked under the lock (409)."""
    _require_party(actor, manifest, role, verb or action)
    _lock_manifest(session, manifest)
    _require_state(manifest, action)


def _begin_signed_step(
    session: Session,
    actor: Principal,
    manifest: Manifest,
    role: str,
    action: str,
    signature: SignatureProof | None,
    verb: str | None = None,
) -> SignatureProof:
    """A signed step begins as every step does, then its signer's proof is checked under the
    lock, before anything changes (422 when missing or not the party's, 403 for a device)."""
    _begin_step(session, actor, manifest, role, action, verb)
    return signatures.require(actor, manifest, role, signature)


def submit(
    session: Session,
    actor: Principal,
    manifest: Manifest,
    now: datetime | None = None,
    *,
    signature: SignatureProof | None = None,
) -> Manifest:
    """Signed by the consignor's staff member (``signature``: :func:`app.audit.signatures.authenticate_signer`)."""
    now = now or utcnow()
    signature = _begin_signed_step(session, actor, manifest, "consignor", "submit", signature)
    _reserve(session, manifest)
    manifest.status = S.SUBMITTED
    manifest.submitted_at = now
    _event(session, manifest, actor, "submit", S.DRAFT, now, "consignor")
    signatures.record(session, manifest, "submit", "consignor", signature, now)
    refresh_box_colours(session, [s.record_id for line in manifest.lines for s in line.sources], now)
    return manifest


def pickup(
    session: Session,
    actor: Principal,
    manifest: Manifest,
    data: dict[str, Any],
    now: datetime | None = None,
    *,
    signature: SignatureProof | None = None,
    handover: SignatureProof | None = None,
) -> Manifest:
    """Two signatures: the carrier's (``signature``) and the consignor's hand-over (``handover``:
    its one-time code typed by the carrier, or a consignor staff member's password)."""
    now = now or utcnow()
    signature = _begin_signed_step(session, actor, manifest, "carrier", "pickup", signature, verb="pick up")
    handover = signatures.require(actor, manifest, "consignor", handover, field="handover", own=False)
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
    manifest.status = S.IN_TRANSIT
    manifest.picked_up_at = at
    manifest.receipt_due_at = _receipt_due(session, at)
    _event(
        session,
        manifest,
        actor,
        "pickup",
        S.SUBMITTED,
        at,
        "carrier",
        vehicle_plate=manifest.vehicle_plate,
        driver_name=manifest.driver_name,
        receipt_due_at=manifest.receipt_due_at.isoformat(),
    )
    signatures.record(session, manifest, "pickup", "carrier", signature, now)
    signatures.record(session, manifest, "pickup", "consignor", handover, now)
    refresh_box_colours(session, touched, now)
    return manifest


def receive(
    session: Session,
    actor: Principal,
    manifest: Manifest,
    data: dict[str, Any],
    now: datetime | None = None,
    *,
    signature: SignatureProof | None = None,
) -> Manifest:
    """Weighed quantities per line; accept, or accept in part (the refused part goes back)."""
    now = now or utcnow()
    signature = _begin_signed_step(session, actor, manifest, "receiver", "receive", signature)
    errors: dict[str, list[str]] = {}
    at = _step_time(errors, "received_at", data.get("received_at"), now, manifest.picked_up_at, "the pickup")
    by_no = {line.line_no: line for line in manifest.lines}
    given: dict[int, dict[str, Any]] = {}
    for place, line, item in named_lines(errors, manifest, data.get("lines")):
        received = item.get("received_kg")
        accepted = item.get("accepted_kg", received)
        if not is_number(received) or received < 0:
            errors.setdefault(f"{place}.received_kg", []).append("a weighed quantity ≥ 0 is required")
            continue
        received = kg(received)
        if not is_number(accepted) or accepted < 0 or kg(accepted) > received:
            errors.setdefault(f"{place}.accepted_kg", []).append("between 0 and the received quantity")
            continue
        accepted = kg(accepted)
        if received - accepted > line.quantity_kg:
            errors.setdefault(f"{place}.accepted_kg", []).append(
                f"cannot send back more than the {float(line.quantity_kg):g} kg shipped"
            )
        if accepted < received - EPS and not (item.get("refusal_reason") or "").strip():
            errors.setdefault(f"{place}.refusal_reason", []).append("required when only part is accepted")
        given[line.line_no] = {
            "received": kg(received),
            "accepted": kg(accepted),
            "reason": (item.get("refusal_reason") or "").strip(),
        }
    missing = sorted(set(by_no) - set(given))
    if missing and not any(k.startswith("lines.") for k in errors):
        errors.setdefault("lines", []).append(
            f"every line needs its weighed quantity; missing line(s) {', '.join(map(str, missing))}"
        )
    if given and not missing and all(g["accepted"] <= EPS for g in given.values()):
        errors.setdefault("lines", []).append("nothing accepted: refuse the manifest with the reject action")
    if errors:
        raise InvalidInput("The receipt has invalid fields.", errors=errors)
    unusual = Warnings(session)  # a weighed quantity far above the shipped one: confirm it
    places = {no: i for i, no in enumerate(given)}
    for no, g in given.items():
        unusual.received_vs_shipped(f"lines.{places[no]}.received_kg", g["received"], by_no[no].quantity_kg)
    confirmed = confirmed_lines(unusual, unusual.settle(data))
    tolerance = rules(session).quantity_tolerance
    returns: dict[int, Any] = {}
    discrepancies = []
    for no, g in given.items():
        line = by_no[no]
        line.received_kg, line.accepted_kg, line.refusal_reason = g["received"], g["accepted"], g["reason"]
        if places[no] in confirmed:
            line.confirmed_unusual = True
        if g["received"] - g["accepted"] > EPS:
            returns[line.id] = kg(g["received"] - g["accepted"])
        deviation = float(abs(g["received"] - line.quantity_kg) / line.quantity_kg)  # a ratio: float
        if deviation > tolerance + 1e-9:
            discrepancies.append(
                {
                    "line_no": no,
                    "shipped_kg": float(line.quantity_kg),
                    "received_kg": float(g["received"]),
                    "deviation": round(deviation, 4),
                }
            )
    reasons = "; ".join(g["reason"] for g in given.values() if g["reason"])
    touched = _return(session, manifest, returns, at, actor, reasons) if returns else []
    manifest.status = S.RECEIVED
    manifest.received_at = at
    manifest.acceptance = "partial" if returns else "full"
    manifest.discrepant = bool(discrepancies)
    manifest.overdue = manifest.receipt_due_at is not None and at >= manifest.receipt_due_at
    _event(
        session,
        manifest,
        actor,
        "receive",
        S.IN_TRANSIT,
        at,
        "receiver",
        acceptance=manifest.acceptance,
        lines=[
            {
                "line_no": no,
                "received_kg": float(g["received"]),
                "accepted_kg": float(g["accepted"]),
                "refusal_reason": g["reason"],
            }
            for no, g in sorted(given.items())
        ],
        discrepancies=discrepancies,
        tolerance=tolerance,
        overdue=manifest.overdue,
    )
    signatures.record(session, manifest, "receive", "receiver", signature, now)
    refresh_box_colours(session, touched, now)
    return manifest


def reject(
    session: Session,
    actor: Principal,
    manifest: Manifest,
    data: dict[str, Any],
    now: datetime | None = None,
    *,
    signature: SignatureProof | None = None,
) -> Manifest:
    """拒收: the whole shipment is refused and goes back into the consignor's stock."""
    now = now or utcnow()
    signature = _begin_signed_step(session, actor, manifest, "receiver", "reject", signature)
    errors: dict[str, list[str]] = {}
    at = _step_time(errors, "rejected_at", data.get("rejected_at"), now, manifest.picked_up_at, "the pickup")
    reason = (data.get("reason") or "").strip()
    if not reason:
        errors["reason"] = ["a reason is required"]
    if errors:
        raise InvalidInput("The refusal has invalid fields.", errors=errors)
    for line in manifest.lines:
        line.accepted_kg = ZERO_KG
        line.refusal_reason = reason
    touched = _return(session, manifest, {line.id: line.quantity_kg for line in manifest.lines}, at, actor, reason)
    manifest.status = S.REJECTED
    manifest.rejected_at = at
    manifest.reject_reason = reason
    manifest.acceptance = "refused"
    manifest.overdue = manifest.receipt_due_at is not None and at >= manifest.receipt_due_at
    _event(
        session,
        manifest,
        actor,
        "reject",
        S.IN_TRANSIT,
        at,
        "receiver",
        reason=reason,
        returned_kg=float(kg(sum((line.quantity_kg for line in manifest.lines), ZERO_KG))),
    )
    signatures.record(session, manifest, "reject", "receiver", signature, now)
    refresh_box_colours(session, touched, now)
    return manifest


def process(
    session: Session,
    actor: Principal,
    manifest: Manifest,
    data: dict[str, Any],
    now: datetime | None = None,
    *,
    signature: SignatureProof | None = None,
) -> Manifest:
    """The 利用/处置方式 per accepted line. No step follows it, so the manifest closes at once:
    ``processed`` and ``closed`` are both in the history, the state ends at closed."""
    now = now or utcnow()
    signature = _begin_signed_step(session, actor, manifest, "receiver", "process", signature)
    errors: dict[str, list[str]] = {}
    at = _step_time(errors, "processed_at", data.get("processed_at"), now, manifest.received_at, "the receipt")
    known = methods(session)
    by_no = {line.line_no: line for line in manifest.lines}
    chosen: dict[int, str] = {}
    for place, line, item in named_lines(errors, manifest, data.get("lines")):
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
        session.execute(
            update(LedgerRecord)
            .where(LedgerRecord.manifest_line_id == by_no[no].id, LedgerRecord.stage == Stage.SENT_OUT)
            .values(method_code=code)
        )
    manifest.status = S.PROCESSED
    manifest.processed_at = at
    _event(
        session,
        manifest,
        actor,
        "process",
        S.RECEIVED,
        at,
        "receiver",
        lines=[{"line_no": no, "method_code": code} for no, code in sorted(chosen.items())],
    )
    signatures.record(session, manifest, "process", "receiver", signature, now)
    manifest.status = S.CLOSED
    manifest.closed_at = at
    _event(session, manifest, None, "close", S.PROCESSED, at, "")
    return manifest


def cancel(
    session: Session,
    actor: Principal,
    manifest: Manifest,
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Manifest:
    now = now or utcnow()
    _begin_step(session, actor, manifest, "consignor", "cancel")
    before = manifest.status
    touched = _release(session, manifest) if before == S.SUBMITTED else []
    manifest.status = S.CANCELLED
    manifest.cancelled_at = now
    _event(session, manifest, actor, "cancel", before, now, "consignor", reason=(data or {}).get("reason") or "")
    refresh_box_colours(session, touched, now)
    return manifest


ACTIONS: dict[str, Callable[..., Manifest]] = {
    "submit": submit,
    "pickup": pickup,
    "receive": receive,
    "reject": reject,
    "process": process,
    "cancel": cancel,
}


def act(
    session: Session,
    actor: Principal,
    manifest: Manifest,
    action: str,
    data: dict[str, Any],
    now: datetime | None = None,
    *,
    signature: SignatureProof | None = None,
    handover: SignatureProof | None = None,
) -> Manifest:
    """One step by name; the signed ones take ``signature`` (pickup also ``handover``)."""
    if action == "submit":
        return submit(session, actor, manifest, now, signature=signature)
    if action == "pickup":
        return pickup(session, actor, manifest, data, now, signature=signature, handover=handover)
    if action == "cancel":
        return cancel(session, actor, manifest, data, now)
    return ACTIONS[action](session, actor, manifest, data, now, signature=signature)
