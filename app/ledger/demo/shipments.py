"""The demo's manifests: which waste stays behind on purpose, the monthly shipments and their
fates (closed, overdue, late, discrepant, refused, cancelled, …), each walked through the
manifest services, and the manifests of the last few days still open.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime

from sqlalchemy import select

from app.accounts.models import Organization
from app.accounts.services import Principal
from app.audit.models import SignatureMethod
from app.audit.signatures import SignatureProof
from app.boxes import services as box_services
from app.boxes.models import Box, Fill
from app.ledger import services as ledger
from app.ledger.demo.loop import (
    CANCEL_REASON,
    DAY,
    DRIVERS,
    HOUR,
    METHODS_OTHER,
    METHODS_PHARMA,
    REFUSAL,
    WASTE_CODE,
    Loop,
    Shipment,
    working_hours,
)
from app.ledger.models import LedgerRecord, Manifest, Stage

# ---------------------------------------------------------------- which waste stays behind


def current_fills(session, boxes: list[Box], now: datetime) -> dict[int, Fill]:
    return box_services.latest_fills(session, [b.id for b in boxes], now)


def _green_but_for_waste(session, loop: Loop, boxes: list[Box]) -> list[Box]:
    """Active boxes that no rule other than the waste rules colours today (sensor boxes
    included: their readings are in by now)."""
    evaluations = box_services.evaluate_boxes(session, boxes, loop.now)
    return [
        b
        for b in boxes
        if b.status == "active"
        and evaluations[b.id].facts.get("fill") is not None
        and not [r for r in evaluations[b.id].reasons if not r["code"].startswith("waste_")]
    ]


def hold_some_waste(session, loop: Loop, records: list[LedgerRecord], pool: list[Box]) -> list[Box]:
    """Three boxes keep the last replacement's waste off any manifest for over 30 days
    (yellow); two keep an older batch on site beyond 90 days (red). Returns the boxes chosen."""
    now, rng = loop.now, loop.rng
    candidates = _green_but_for_waste(session, loop, pool)
    fills = current_fills(session, candidates, now)
    by_box: dict[int, list[LedgerRecord]] = defaultdict(list)
    for record in records:
        if record.box_id is not None:  # a replacement's record names its box
            by_box[record.box_id].append(record)
    rng.shuffle(candidates)
    chosen: list[Box] = []
    red = yellow = 0
    for box in candidates:
        own, fill = by_box.get(box.id, []), fills[box.id]
        current = next((r for r in own if r.fill_id == fill.id), None)
        if yellow < 3 and current is not None and 31 <= (now - current.occurred_at).days <= 85:
            loop.held.add(current.id)
            yellow += 1
            chosen.append(box)
            continue
        old = [r for r in own if 95 <= (now - r.occurred_at).days <= 170 and r is not current]
        if red < 2 and old:
            loop.held.add(old[-1].id)
            red += 1
            chosen.append(box)
    return chosen


# ---------------------------------------------------------------- the manifests


def schedule(loop: Loop, records: list[LedgerRecord]) -> list[Shipment]:
    """Monthly shipments per enterprise, counted back from a last one 1–24 days ago."""
    rng, now = loop.rng, loop.now
    by_enterprise: dict[int, list[LedgerRecord]] = defaultdict(list)
    for record in records:
        if record.id not in loop.held:
            by_enterprise[record.enterprise_id].append(record)
    shipments: list[Shipment] = []
    showcase = loop.ctx.users["qiye"].organization_id
    for enterprise in loop.ctx.enterprises:
        own = sorted(by_enterprise.get(enterprise.id, []), key=lambda r: (r.occurred_at, r.id))
        if not own:
            continue
        # The showcase enterprise shipped a while ago, so its staff find waste to put on a manifest.
        last = now - (rng.uniform(12, 20) if enterprise.id == showcase else rng.uniform(1.5, 24)) * DAY
        times = [last]
        while times[-1] - 35 * DAY > own[0].occurred_at:
            times.append(times[-1] - rng.uniform(24, 34) * DAY)
        times = [working_hours(rng, t) for t in reversed(times)]
        times = [min(t, now - 2 * HOUR) for t in times]
        start = 0
        for t in times:
            end = start
            while end < len(own) and own[end].occurred_at < t - HOUR:
                end += 1
            if end > start:
                shipments.append(Shipment(enterprise, t, own[start:end], receiver=loop.receiver_of[enterprise.id]))
            start = end
        if shipments and shipments[-1].enterprise.id == enterprise.id:
            loop.last_shipment[enterprise.id] = shipments[-1].created_at
    return shipments


def assign_fates(loop: Loop, shipments: list[Shipment]) -> None:
    """The tail: a few manifests stop part way; a few historical ones carry a flag."""
    rng, now = loop.rng, loop.now
    tiantai = loop.ctx.orgs["regen_tiantai"]
    last_of: dict[int, Shipment] = {}
    for s in shipments:
        last_of[s.enterprise.id] = s
    showcase = loop.ctx.users["qiye"].organization_id
    lasts = [s for s in last_of.values() if s.enterprise.id != showcase]
    rng.shuffle(lasts)
    # The zaisheng login (天台) should find shipments to receive.
    lasts.sort(key=lambda s: s.receiver is None or s.receiver.id != tiantai.id)
    wanted = (
        ("in_transit", 3, (1.2, 3.0)),
        ("received", 2, (2.0, 5.0)),
        ("overdue", 2, (17.0, 24.0)),
        ("rejected", 1, (12.0, 20.0)),
    )
    pool = iter(lasts)
    for fate, count, (lo, hi) in wanted:
        for _ in range(count):
            tail = next(pool, None)
            if tail is None:  # fewer enterprises than tails wanted
                break
            s = tail
            s.fate = fate
            s.created_at = min(working_hours(rng, now - rng.uniform(lo, hi) * DAY), now - 2 * HOUR)
            # Its waste: what the enterprise had generated by then (the rest waits for the next one).
            kept = [r for r in s.batches if r.occurred_at < s.created_at - HOUR]
            if not kept:
                s.fate = "closed"
                continue
            s.batches = kept
    history = [s for s in shipments if s is not last_of[s.enterprise.id] and s.created_at < now - 40 * DAY]
    rng.shuffle(history)
    for fate, s in zip(("late", "discrepant", "cancelled"), history, strict=False):
        s.fate = fate
    # Landfill is the exception: two small shipments.
    small = sorted((s for s in history[3:] if s.fate == "closed"), key=lambda s: sum(r.quantity_kg for r in s.batches))
    for s in small[:2]:
        s.method = "D1"


def _method(loop: Loop, shipment: Shipment) -> str:
    if shipment.method:
        return shipment.method
    sector = loop.ctx.sectors[shipment.enterprise.id]
    table = METHODS_PHARMA if sector == "医化" else METHODS_OTHER
    return loop.rng.choices([m for m, _ in table], [w for _, w in table])[0]


def _create(session, loop: Loop, shipment: Shipment, receiver: Organization, at: datetime, batches) -> Manifest:
    quantity = ledger.kg(sum(r.on_site_kg if r.on_site_kg is not None else r.quantity_kg for r in batches))
    bags = max(1, math.ceil(quantity / 600))
    consignor = shipment.enterprise
    return ledger.create_manifest(
        session,
        loop.enterprise_actor[consignor.id],
        {
            "consignor_id": consignor.id,
            "carrier_id": loop.ctx.orgs["carrier"].id,
            "receiver_id": receiver.id,
            "route": f"{consignor.name} → {receiver.name}（{receiver.address}）",
            "lines": [
                {
                    "waste_code": WASTE_CODE,
                    "quantity_kg": quantity,
                    "physical_form": "solid",
                    "packaging": f"吨袋 {bags} 只 (ton bags)",
                    "source_batches": [r.batch_code for r in batches],
                }
            ],
        },
        now=at,
    )


def signed(actor: Principal, at: datetime) -> SignatureProof:
    """The demo's people sign their steps (as if they had typed their password at ``at``)."""
    assert actor.user is not None
    return SignatureProof.attested(actor.user, at)


def _pickup(session, loop: Loop, manifest: Manifest, at: datetime) -> None:
    plates = loop.ctx.orgs["carrier"].licences[0]["vehicles"]
    driver, phone = loop.rng.choice(DRIVERS)
    consignor = loop.enterprise_actor[manifest.consignor_id]
    assert consignor.user is not None
    ledger.pickup(
        session,
        loop.carrier,
        manifest,
        {"vehicle_plate": loop.rng.choice(plates), "driver_name": driver, "driver_phone": phone},
        now=at,
        signature=signed(loop.carrier, at),
        # The consignor's staff gave the driver a one-time code for the hand-over.
        handover=SignatureProof.attested(consignor.user, at, SignatureMethod.ONE_TIME_CODE),
    )


def ship(session, loop: Loop, shipment: Shipment) -> None:
    """Walk one shipment as far as its fate (and the clock) allow."""
    rng, now = loop.rng, loop.now
    receiver = shipment.receiver
    assert receiver is not None  # chosen when the shipment was planned
    consignor = loop.enterprise_actor[shipment.enterprise.id]
    at = shipment.created_at
    if shipment.fate == "cancelled":
        wrong = next(o for o in (loop.ctx.orgs["regen_tiantai"], loop.ctx.orgs["regen_wenling"]) if o.id != receiver.id)
        mistaken = _create(session, loop, shipment, wrong, at, shipment.batches)
        ledger.submit(session, consignor, mistaken, now=at + 0.2 * HOUR, signature=signed(consignor, at + 0.2 * HOUR))
        ledger.cancel(session, consignor, mistaken, {"reason": CANCEL_REASON}, now=at + rng.uniform(1, 3) * HOUR)
        loop.manifests.append(mistaken)
        at += 3.5 * HOUR
    manifest = _create(session, loop, shipment, receiver, at, shipment.batches)
    loop.manifests.append(manifest)
    submitted = at + rng.uniform(0.2, 2) * HOUR
    ledger.submit(session, consignor, manifest, now=submitted, signature=signed(consignor, submitted))
    if shipment.fate == "in_transit":
        picked = min(submitted + rng.uniform(3, 20) * HOUR, now - rng.uniform(1, 6) * HOUR)
    else:
        picked = working_hours(rng, submitted + rng.choice((0.6, 1, 1, 2)) * DAY, 8, 15)
    if picked <= submitted:
        picked = submitted + 0.5 * HOUR
    if shipment.fate == "overdue":
        while ledger._receipt_due(session, picked) > now - 2 * HOUR:
            picked -= DAY
        picked = max(picked, submitted + HOUR)
    if picked > now - HOUR:
        return
    _pickup(session, loop, manifest, picked)
    if shipment.fate in ("in_transit", "overdue"):
        return
    receiver_actor = loop.plant_actor[receiver.id]
    if shipment.fate == "late":
        arrived = ledger._receipt_due(session, picked) + rng.uniform(1, 2.5) * DAY
        arrived = working_hours(rng, arrived, 9, 16)
    else:
        arrived = picked + rng.uniform(2, 7) * HOUR
    if arrived > now - HOUR:
        return
    line = manifest.lines[0]
    if shipment.fate == "rejected":
        ledger.reject(
            session,
            receiver_actor,
            manifest,
            {"reason": REFUSAL},
            now=arrived,
            signature=signed(receiver_actor, arrived),
        )
        # Re-packed and shipped again a few days later.
        again = Shipment(
            shipment.enterprise,
            working_hours(rng, arrived + rng.uniform(2, 4) * DAY),
            shipment.batches,
            receiver=receiver,
        )
        if again.created_at < now - 2 * HOUR:
            ship(session, loop, again)
        return
    ratio = rng.uniform(0.915, 0.93) if shipment.fate == "discrepant" else rng.uniform(0.988, 1.006)
    ledger.receive(
        session,
        receiver_actor,
        manifest,
        {"lines": [{"line_no": line.line_no, "received_kg": ledger.kg(float(line.quantity_kg) * ratio)}]},
        now=arrived,
        signature=signed(receiver_actor, arrived),
    )
    if shipment.fate == "received":
        return
    processed = working_hours(rng, arrived + rng.uniform(1, 6) * DAY, 9, 17)
    if processed > now - HOUR:
        return
    ledger.process(
        session,
        receiver_actor,
        manifest,
        {"lines": [{"line_no": line.line_no, "method_code": _method(loop, shipment)}]},
        now=processed,
        signature=signed(receiver_actor, processed),
    )


# ---------------------------------------------------------------- the last few days


def open_manifests(session, loop: Loop) -> None:
    """Manifests started from stock in the last days: drafts (one for the showcase enterprise,
    whose staff can submit it) and submitted ones waiting for the carrier."""
    rng, now = loop.rng, loop.now
    fresh = list(
        session.scalars(
            select(LedgerRecord)
            .where(LedgerRecord.stage == Stage.GENERATION, LedgerRecord.available_kg > ledger.EPS)
            .order_by(LedgerRecord.occurred_at)
        )
    )
    by_enterprise: dict[int, list[LedgerRecord]] = defaultdict(list)
    for record in fresh:
        if record.id not in loop.held and record.occurred_at < now - 6 * HOUR:
            by_enterprise[record.enterprise_id].append(record)
    showcase = loop.ctx.users["qiye"].organization_id
    assert showcase is not None  # the showcase login is an enterprise's
    busy = {
        m.consignor_id for m in loop.manifests if m.status in ("submitted", "in_transit") or (m.status == "rejected")
    }
    order = [e for e in loop.ctx.enterprises if by_enterprise.get(e.id) and e.id not in busy and e.id != showcase]
    rng.shuffle(order)
    plan = [("draft", e) for e in order[:1]] + [("submitted", e) for e in order[1:4]]
    if by_enterprise.get(showcase):
        plan.insert(0, ("draft", next(e for e in loop.ctx.enterprises if e.id == showcase)))
    for state, enterprise in plan:
        own = by_enterprise[enterprise.id]
        at = max(now - rng.uniform(0.2, 2.5) * DAY, own[-1].occurred_at + 2 * HOUR)
        if at > now - 0.5 * HOUR:
            continue
        receiver = loop.receiver_of[enterprise.id]
        shipment = Shipment(enterprise, at, own, receiver=receiver)
        manifest = _create(session, loop, shipment, receiver, at, own)
        loop.manifests.append(manifest)
        if state == "submitted":
            submitted = min(at + rng.uniform(0.3, 3) * HOUR, now - 0.2 * HOUR)
            actor = loop.enterprise_actor[enterprise.id]
            ledger.submit(session, actor, manifest, now=submitted, signature=signed(actor, submitted))
