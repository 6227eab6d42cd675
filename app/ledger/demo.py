"""The demo's closed loop: waste carbon shipped on manifests, received, regenerated, filled again.

A demo extension (:func:`app.demo.data.demo_extension`), run by :func:`app.demo.data.load_demo`
after the boxes and their backdated fill histories exist. Everything goes through the services
(``create_manifest``, ``submit``, ``pickup``, ``receive``, ``reject``, ``process``, ``cancel``,
``record_batch``, ``record_fill``, ``set_status``) with backdated ``now=`` values:

* every enterprise ships the waste carbon of its replacements roughly monthly (consignor = the
  enterprise's environmental officer, carrier = the demo carrier ``yunshu``, receiver = the
  regeneration plant of 天台 or 温岭), walked through submit → pickup → receive → process, mostly
  R7 (regeneration) or R15, some D10 (incineration), a few C1 (cement kiln), two D1 (landfill);
* the tail a real city has today: drafts and submitted manifests waiting for the carrier,
  shipments in transit, two overdue (in transit beyond 5 working days), one received late, one
  discrepant (weighed > 5 % short), one refused (拒收) and re-shipped, one cancelled;
* a few boxes' waste deliberately left behind (yellow "not on a manifest", red "held too long");
* the plants record monthly regeneration batches from the received waste carbon (iodine
  850–950 mg/g); the carbon service catches up on overdue and due boxes, restarts a few stopped
  ones and commissions a few new ones, mostly with regenerated carbon naming its batch.

Colour refreshes: a manifest step refreshes the colours of the boxes its waste came from at the
step's time. Replayed in the past, after the fills that came later are already stored, those
refreshes would write colour changes out of order (and cost most of the load time); the steps
here therefore run with that refresh deferred, and :func:`load_demo` evaluates every box once at
``now``. Fills recorded here come after each box's history, so they refresh as usual.

Deterministic: its own ``random.Random`` seeded from ``ctx.rng``.
"""
from __future__ import annotations

import math
import random
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterator

from sqlalchemy import select

from app.accounts.models import Organization, User
from app.accounts.services import Principal
from app.boxes import services as box_services
from app.boxes.models import Box, Fill
from app.common.timeutil import SHANGHAI, local_date
from app.demo.data import REPLAY_DEFERRED_CHECKS, VIRGIN_SUPPLIER, DemoContext, demo_extension
from app.ledger import services as ledger
from app.ledger.models import LedgerRecord, Manifest, Stage
from app.regeneration import services as regeneration
from app.regeneration.models import RegenerationBatch

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
WASTE_CODE = "900-039-49"
DRIVERS = (("王建国", "13857612306"), ("陈海峰", "13906561847"), ("李志强", "15888602931"), ("周卫东", "13736579120"))
REFUSAL = "含水率过高、吨袋破损渗漏，不符合入厂接收标准，整车拒收退回 (wet and leaking bags: refused)"
CANCEL_REASON = "接受单位选错，作废后重新填报 (wrong receiver chosen; cancelled and re-entered)"
# 利用/处置方式 by sector (pharmaceutical carbon with halogenated solvents is often incinerated).
METHODS_PHARMA = (("R7", 0.58), ("R15", 0.05), ("D10", 0.30), ("C1", 0.07))
METHODS_OTHER = (("R7", 0.80), ("R15", 0.10), ("D10", 0.05), ("C1", 0.05))

# The replayed fill histories predate the shipments below: their colour history leaves the waste
# rules out (see app.demo.data.REPLAY_DEFERRED_CHECKS).
REPLAY_DEFERRED_CHECKS.update({"waste_held_too_long", "waste_not_on_manifest"})


@dataclass
class Shipment:
    enterprise: Organization
    created_at: datetime
    batches: list[LedgerRecord]
    fate: str = "closed"  # closed | in_transit | overdue | late | received | rejected | discrepant | cancelled
    method: str | None = None
    receiver: Organization | None = None


@dataclass
class Loop:
    """What the extension builds and hands on between its steps."""

    ctx: DemoContext
    now: datetime
    rng: random.Random
    enterprise_actor: dict[int, Principal] = field(default_factory=dict)
    plant_actor: dict[int, Principal] = field(default_factory=dict)
    receiver_of: dict[int, Organization] = field(default_factory=dict)
    held: set[int] = field(default_factory=set)  # generation record ids left on site on purpose
    last_shipment: dict[int, datetime] = field(default_factory=dict)
    manifests: list[Manifest] = field(default_factory=list)

    @property
    def carrier(self) -> Principal:
        return self.ctx.principal("yunshu")


# ---------------------------------------------------------------- time helpers

def _at_local(day: date, hour: float) -> datetime:
    """``day`` at ``hour`` (fractional) Shanghai time, as UTC."""
    minutes = min(int(round(hour * 60)), 24 * 60 - 1)
    return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=SHANGHAI).astimezone(timezone.utc)


def _working_hours(rng: random.Random, moment: datetime, start: float = 8.5, end: float = 16.5) -> datetime:
    """The local day of ``moment`` at a time within working hours."""
    return _at_local(local_date(moment), rng.uniform(start, end))


@contextmanager
def deferred_box_refresh() -> Iterator[None]:
    """Run manifest steps without their per-step colour refresh (see the module docstring)."""
    original = ledger.refresh_box_colours
    ledger.refresh_box_colours = lambda session, record_ids, now: None
    try:
        yield
    finally:
        ledger.refresh_box_colours = original


# ---------------------------------------------------------------- people

def _staff_user(session, ctx: DemoContext, org: Organization, username: str, display: str) -> Principal:
    """A staff account of ``org`` (same demo password as the printed logins; not printed itself)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        user = User(username=username, display_name=display, organization_id=org.id, role="staff",
                    password_hash=ctx.users["qiye"].password_hash, created_at=ctx.now - 400 * DAY)
        session.add(user)
        session.flush()
    return Principal(user=user)


def _people(session, loop: Loop) -> None:
    ctx = loop.ctx
    for i, enterprise in enumerate(ctx.enterprises):
        if enterprise.id == ctx.users["qiye"].organization_id:
            loop.enterprise_actor[enterprise.id] = ctx.principal("qiye2")
        else:
            loop.enterprise_actor[enterprise.id] = _staff_user(
                session, ctx, enterprise, f"qiye-{i:02d}", f"环保专员（{enterprise.name}）")
    tiantai, wenling = ctx.orgs["regen_tiantai"], ctx.orgs["regen_wenling"]
    loop.plant_actor[tiantai.id] = ctx.principal("zaisheng")
    loop.plant_actor[wenling.id] = _staff_user(session, ctx, wenling, "zaisheng-wl", f"接收员（{wenling.name}）")
    for enterprise in ctx.enterprises:
        county = enterprise.county_code
        if county in ("331081", "331083"):
            receiver = wenling
        elif county == "331004":
            receiver = wenling if loop.rng.random() < 0.6 else tiantai
        else:
            receiver = tiantai
        loop.receiver_of[enterprise.id] = receiver


# ---------------------------------------------------------------- which waste stays behind

def _current_fills(session, boxes: list[Box], now: datetime) -> dict[int, Fill]:
    return box_services.latest_fills(session, [b.id for b in boxes], now)


def _green_but_for_waste(session, loop: Loop, boxes: list[Box]) -> list[Box]:
    """Active boxes that no rule other than the waste rules colours today (sensor boxes
    included: their readings are in by now)."""
    evaluations = box_services.evaluate_boxes(session, boxes, loop.now)
    return [b for b in boxes if b.status == "active" and evaluations[b.id].facts.get("fill") is not None
            and not [r for r in evaluations[b.id].reasons if not r["code"].startswith("waste_")]]


def _hold_some_waste(session, loop: Loop, records: list[LedgerRecord], pool: list[Box]) -> list[Box]:
    """Three boxes keep the last replacement's waste off any manifest for over 30 days
    (yellow); two keep an older batch on site beyond 90 days (red). Returns the boxes chosen."""
    now, rng = loop.now, loop.rng
    candidates = _green_but_for_waste(session, loop, pool)
    fills = _current_fills(session, candidates, now)
    by_box: dict[int, list[LedgerRecord]] = defaultdict(list)
    for record in records:
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

def _schedule(loop: Loop, records: list[LedgerRecord]) -> list[Shipment]:
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
        times = [_working_hours(rng, t) for t in reversed(times)]
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


def _assign_fates(loop: Loop, shipments: list[Shipment]) -> None:
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
    lasts.sort(key=lambda s: s.receiver.id != tiantai.id)
    wanted = (("in_transit", 3, (1.2, 3.0)), ("received", 2, (2.0, 5.0)), ("overdue", 2, (17.0, 24.0)),
              ("rejected", 1, (12.0, 20.0)))
    pool = iter(lasts)
    for fate, count, (lo, hi) in wanted:
        for _ in range(count):
            s = next(pool, None)
            if s is None:  # fewer enterprises than tails wanted
                break
            s.fate = fate
            s.created_at = min(_working_hours(rng, now - rng.uniform(lo, hi) * DAY), now - 2 * HOUR)
            # Its waste: what the enterprise had generated by then (the rest waits for the next one).
            kept = [r for r in s.batches if r.occurred_at < s.created_at - HOUR]
            if not kept:
                s.fate = "closed"
                continue
            s.batches = kept
    history = [s for s in shipments if s is not last_of[s.enterprise.id] and s.created_at < now - 40 * DAY]
    rng.shuffle(history)
    for fate, s in zip(("late", "discrepant", "cancelled"), history):
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
    return ledger.create_manifest(session, loop.enterprise_actor[consignor.id], {
        "consignor_id": consignor.id, "carrier_id": loop.ctx.orgs["carrier"].id, "receiver_id": receiver.id,
        "route": f"{consignor.name} → {receiver.name}（{receiver.address}）",
        "lines": [{"waste_code": WASTE_CODE, "quantity_kg": quantity, "physical_form": "solid",
                   "packaging": f"吨袋 {bags} 只 (ton bags)", "source_batches": [r.batch_code for r in batches]}],
    }, now=at)


def _pickup(session, loop: Loop, manifest: Manifest, at: datetime) -> None:
    plates = loop.ctx.orgs["carrier"].licences[0]["vehicles"]
    driver, phone = loop.rng.choice(DRIVERS)
    ledger.pickup(session, loop.carrier, manifest, {
        "vehicle_plate": loop.rng.choice(plates), "driver_name": driver, "driver_phone": phone}, now=at)


def _ship(session, loop: Loop, shipment: Shipment) -> None:
    """Walk one shipment as far as its fate (and the clock) allow."""
    rng, now = loop.rng, loop.now
    receiver = shipment.receiver
    consignor = loop.enterprise_actor[shipment.enterprise.id]
    at = shipment.created_at
    if shipment.fate == "cancelled":
        wrong = next(o for o in (loop.ctx.orgs["regen_tiantai"], loop.ctx.orgs["regen_wenling"]) if o.id != receiver.id)
        mistaken = _create(session, loop, shipment, wrong, at, shipment.batches)
        ledger.submit(session, consignor, mistaken, now=at + 0.2 * HOUR)
        ledger.cancel(session, consignor, mistaken, {"reason": CANCEL_REASON}, now=at + rng.uniform(1, 3) * HOUR)
        loop.manifests.append(mistaken)
        at += 3.5 * HOUR
    manifest = _create(session, loop, shipment, receiver, at, shipment.batches)
    loop.manifests.append(manifest)
    submitted = at + rng.uniform(0.2, 2) * HOUR
    ledger.submit(session, consignor, manifest, now=submitted)
    if shipment.fate == "in_transit":
        picked = min(submitted + rng.uniform(3, 20) * HOUR, now - rng.uniform(1, 6) * HOUR)
    else:
        picked = _working_hours(rng, submitted + rng.choice((0.6, 1, 1, 2)) * DAY, 8, 15)
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
        arrived = _working_hours(rng, arrived, 9, 16)
    else:
        arrived = picked + rng.uniform(2, 7) * HOUR
    if arrived > now - HOUR:
        return
    line = manifest.lines[0]
    if shipment.fate == "rejected":
        ledger.reject(session, receiver_actor, manifest, {"reason": REFUSAL}, now=arrived)
        # Re-packed and shipped again a few days later.
        again = Shipment(shipment.enterprise, _working_hours(rng, arrived + rng.uniform(2, 4) * DAY),
                         shipment.batches, receiver=receiver)
        if again.created_at < now - 2 * HOUR:
            _ship(session, loop, again)
        return
    ratio = rng.uniform(0.915, 0.93) if shipment.fate == "discrepant" else rng.uniform(0.988, 1.006)
    ledger.receive(session, receiver_actor, manifest,
                   {"lines": [{"line_no": line.line_no, "received_kg": ledger.kg(float(line.quantity_kg) * ratio)}]},
                   now=arrived)
    if shipment.fate == "received":
        return
    processed = _working_hours(rng, arrived + rng.uniform(1, 6) * DAY, 9, 17)
    if processed > now - HOUR:
        return
    ledger.process(session, receiver_actor, manifest,
                   {"lines": [{"line_no": line.line_no, "method_code": _method(loop, shipment)}]}, now=processed)


# ---------------------------------------------------------------- regeneration

def _regenerate(session, loop: Loop) -> dict[int, list[RegenerationBatch]]:
    """Monthly batches per plant from the waste carbon it received and processed by R7."""
    rng, now = loop.rng, loop.now
    batches: dict[int, list[RegenerationBatch]] = defaultdict(list)
    for plant_id, actor in loop.plant_actor.items():
        plant = actor.organization
        prefix = "TTZS" if plant.id == loop.ctx.orgs["regen_tiantai"].id else "WLZS"
        lines = [(m.received_at, m.number, line) for m in loop.manifests if m.receiver_id == plant_id
                 and m.status == "closed" for line in m.lines if line.method_code == "R7"]
        if not lines:
            continue
        lines.sort(key=lambda x: x[0])
        today = local_date(now)
        days: list[date] = []
        day = local_date(lines[0][0])
        day = date(day.year + day.month // 12, day.month % 12 + 1, 3)  # early the next month
        while day <= today - timedelta(days=9):
            days.append(day)
            day = date(day.year + day.month // 12, day.month % 12 + 1, 3)
        days.append(today - timedelta(days=rng.randint(4, 7)))
        for n, day in enumerate(days, 1):
            produced = _at_local(day, 16)
            inputs = [{"manifest_number": number, "line_no": line.line_no,
                       "quantity_kg": ledger.kg((line.accepted_kg or 0) - line.consumed_kg)}
                      for received, number, line in lines
                      if received < produced - 12 * HOUR and (line.accepted_kg or 0) - line.consumed_kg > 1]
            if not inputs:
                continue
            total = sum(i["quantity_kg"] for i in inputs)
            batch = regeneration.record_batch(session, actor, {
                "batch_no": f"{prefix}-{day:%Y%m}-{n:02d}", "produced_on": day, "method_code": "R7",
                "inputs": inputs, "output_kg": round(float(total) * rng.uniform(0.74, 0.82)),
                "iodine_mg_g": float(rng.randint(850, 950)),
                "note": "回转窑高温水蒸气活化再生 (steam reactivation in a rotary kiln)",
            }, now=produced)
            batches[plant_id].append(batch)
    return batches


# ---------------------------------------------------------------- fills of the last weeks

def _carbon(loop: Loop, box: Box, mass: float, at: datetime, batches: dict[int, list[RegenerationBatch]]) -> dict:
    """Regenerated carbon of the region's plant when a batch has enough left, else new carbon."""
    rng = loop.rng
    plant = loop.receiver_of[box.enterprise_id]
    if box.carbon_type == "granular":
        for batch in sorted(batches.get(plant.id, []), key=lambda b: b.produced_on, reverse=True):
            if batch.produced_on <= local_date(at) - timedelta(days=1) and batch.remaining_kg >= mass:
                return {"iodine_mg_g": batch.iodine_mg_g, "supplier_org_id": plant.id, "supplier_name": plant.name,
                        "batch_no": batch.batch_no, "regeneration_batch_id": batch.id,
                        "note": f"再生炭，再生批次 {batch.batch_no} (regenerated carbon)"}
    iodine = float(rng.randint(900, 1050) if box.carbon_type == "granular" else rng.randint(700, 800))
    return {"iodine_mg_g": iodine, "supplier_org_id": None, "supplier_name": VIRGIN_SUPPLIER,
            "batch_no": f"JY{at:%y%m}-{rng.randint(1, 40):03d}", "note": ""}


def _recent_fills(session, loop: Loop, batches: dict[int, list[RegenerationBatch]], skip: set[int]) -> None:
    """The carbon service catches up: replaces most overdue boxes and some due soon (with
    regenerated carbon where the region's plant has it), refills red-iodine boxes with good
    carbon, restarts a few stopped boxes and commissions a few new ones."""
    ctx, rng, now = loop.ctx, loop.rng, loop.now
    showcase = ctx.users["qiye"].organization_id
    by_target: dict[str, list[Box]] = defaultdict(list)
    for box in ctx.boxes:
        if box.has_sensors or box.enterprise_id == showcase or box.id in skip:
            continue
        by_target[ctx.plans[box.id].target].append(box)
    fills = _current_fills(session, ctx.boxes, now)
    quota = {"red_overdue": 0.7, "red_iodine": 0.5, "yellow": 0.25, "grey_stopped": 0.5, "grey_new": 0.75}
    for target, share in quota.items():
        boxes = by_target.get(target, [])
        rng.shuffle(boxes)
        for box in boxes[:round(len(boxes) * share)]:
            plan, fill = ctx.plans[box.id], fills.get(box.id)
            cycle = plan.cycle_days
            actor = ctx.principal(plan.actor)
            latest = now - min(0.6 * cycle, 25) * DAY  # the new fill stays green until now
            if fill is None:
                lo = box.created_at + 0.5 * DAY
            elif target == "red_overdue":
                lo = fill.filled_at + cycle * DAY + 0.3 * DAY  # it went red first
            elif target == "grey_stopped":
                lo = box.colour_since + 2 * DAY
            else:
                lo = fill.filled_at + 0.3 * DAY
            lo = max(lo, latest)
            hi = now - 0.2 * DAY
            if lo >= hi:
                continue
            at = _working_hours(rng, lo + (hi - lo) * rng.random(), 8, 16)
            at = min(max(at, lo), hi)
            mass = float(round(float(box.design_fill_kg) * rng.uniform(0.98, 1.02)))
            data = {"filled_at": at, "mass_kg": mass, "carbon_type": box.carbon_type,
                    **_carbon(loop, box, mass, at, batches)}
            if fill is not None:
                data["removed_waste_kg"] = round(float(fill.mass_kg) * rng.uniform(1.05, 1.25), 1)
            if target == "red_overdue":
                # The red spell before the replacement enters the colour history.
                box_services.refresh_colours(session, [box], at - timedelta(minutes=1))
            box_services.record_fill(session, actor, box, data, now=at)
            ctx.fills += 1
            if target == "grey_stopped":
                box_services.set_status(session, actor, box, "active", now=at + 2 * HOUR)


# ---------------------------------------------------------------- the last few days

def _open_manifests(session, loop: Loop) -> None:
    """Manifests started from stock in the last days: drafts (one for the showcase enterprise,
    whose staff can submit it) and submitted ones waiting for the carrier."""
    rng, now = loop.rng, loop.now
    fresh = list(session.scalars(select(LedgerRecord).where(
        LedgerRecord.stage == Stage.GENERATION, LedgerRecord.available_kg > ledger.EPS).order_by(LedgerRecord.occurred_at)))
    by_enterprise: dict[int, list[LedgerRecord]] = defaultdict(list)
    for record in fresh:
        if record.id not in loop.held and record.occurred_at < now - 6 * HOUR:
            by_enterprise[record.enterprise_id].append(record)
    showcase = loop.ctx.users["qiye"].organization_id
    busy = {m.consignor_id for m in loop.manifests if m.status in ("submitted", "in_transit") or
            (m.status == "rejected")}
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
        shipment = Shipment(enterprise, at, own, receiver=loop.receiver_of[enterprise.id])
        manifest = _create(session, loop, shipment, shipment.receiver, at, own)
        loop.manifests.append(manifest)
        if state == "submitted":
            ledger.submit(session, loop.enterprise_actor[enterprise.id], manifest,
                          now=min(at + rng.uniform(0.3, 3) * HOUR, now - 0.2 * HOUR))


# ---------------------------------------------------------------- the extension

@demo_extension
def close_the_loop(session, ctx: DemoContext, now: datetime) -> None:
    loop = Loop(ctx=ctx, now=now, rng=random.Random(ctx.rng.random()))
    _people(session, loop)
    box_ids = [b.id for b in ctx.boxes]
    records = list(session.scalars(select(LedgerRecord).where(
        LedgerRecord.stage == "generation", LedgerRecord.box_id.in_(box_ids))
        .order_by(LedgerRecord.occurred_at, LedgerRecord.id)))
    showcase = ctx.users["qiye"].organization_id
    pool = [b for b in ctx.boxes if b.status == "active" and b.enterprise_id != showcase]
    left_behind = _hold_some_waste(session, loop, records, pool)
    shipments = _schedule(loop, records)
    _assign_fates(loop, shipments)
    shipments.sort(key=lambda s: s.created_at)  # manifest serials follow time
    with deferred_box_refresh():
        for shipment in shipments:
            _ship(session, loop, shipment)
        batches = _regenerate(session, loop)
    _recent_fills(session, loop, batches, {b.id for b in left_behind})
    with deferred_box_refresh():
        _open_manifests(session, loop)
    session.flush()
