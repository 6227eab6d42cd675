"""The demo's regeneration and recent fills: the plants' monthly batches from the received waste
carbon, then the carbon service's fills of the last weeks (mostly regenerated carbon).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from app.boxes import services as box_services
from app.boxes.models import Box
from app.common.timeutil import local_date
from app.demo.data import VIRGIN_SUPPLIER
from app.ledger import services as ledger
from app.ledger.demo.loop import (
    DAY,
    HOUR,
    Loop,
    at_local,
    working_hours,
)
from app.ledger.demo.shipments import current_fills
from app.regeneration import services as regeneration
from app.regeneration.models import RegenerationBatch

# ---------------------------------------------------------------- regeneration


def regenerate(session, loop: Loop) -> dict[int, list[RegenerationBatch]]:
    """Monthly batches per plant from the waste carbon it received and processed by R7."""
    rng, now = loop.rng, loop.now
    batches: dict[int, list[RegenerationBatch]] = defaultdict(list)
    for plant_id, actor in loop.plant_actor.items():
        plant = actor.organization
        assert plant is not None  # a plant's actor acts for the plant
        prefix = "TTZS" if plant.id == loop.ctx.orgs["regen_tiantai"].id else "WLZS"
        lines = [
            (m.received_at, m.number, line)
            for m in loop.manifests
            if m.receiver_id == plant_id and m.status == "closed" and m.received_at is not None
            for line in m.lines
            if line.method_code == "R7"
        ]
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
            produced = at_local(day, 16)
            inputs: list[dict[str, Any]] = [
                {
                    "manifest_number": number,
                    "line_no": line.line_no,
                    "quantity_kg": ledger.kg((line.accepted_kg or 0) - line.consumed_kg),
                }
                for received, number, line in lines
                if received < produced - 12 * HOUR and (line.accepted_kg or 0) - line.consumed_kg > 1
            ]
            if not inputs:
                continue
            total = sum(i["quantity_kg"] for i in inputs)
            batch = regeneration.record_batch(
                session,
                actor,
                {
                    "batch_no": f"{prefix}-{day:%Y%m}-{n:02d}",
                    "produced_on": day,
                    "method_code": "R7",
                    "inputs": inputs,
                    "output_kg": round(float(total) * rng.uniform(0.74, 0.82)),
                    "iodine_mg_g": float(rng.randint(850, 950)),
                    "note": "回转窑高温水蒸气活化再生 (steam reactivation in a rotary kiln)",
                },
                now=produced,
            )
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
                return {
                    "iodine_mg_g": batch.iodine_mg_g,
                    "supplier_org_id": plant.id,
                    "supplier_name": plant.name,
                    "batch_no": batch.batch_no,
                    "regeneration_batch_id": batch.id,
                    "note": f"再生炭，再生批次 {batch.batch_no} (regenerated carbon)",
                }
    iodine = float(rng.randint(900, 1050) if box.carbon_type == "granular" else rng.randint(700, 800))
    return {
        "iodine_mg_g": iodine,
        "supplier_org_id": None,
        "supplier_name": VIRGIN_SUPPLIER,
        "batch_no": f"JY{at:%y%m}-{rng.randint(1, 40):03d}",
        "note": "",
    }


def recent_fills(session, loop: Loop, batches: dict[int, list[RegenerationBatch]], skip: set[int]) -> None:
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
    fills = current_fills(session, ctx.boxes, now)
    quota = {"red_overdue": 0.7, "red_iodine": 0.5, "yellow": 0.25, "grey_stopped": 0.5, "grey_new": 0.75}
    for target, share in quota.items():
        boxes = by_target.get(target, [])
        rng.shuffle(boxes)
        for box in boxes[: round(len(boxes) * share)]:
            plan, fill = ctx.plans[box.id], fills.get(box.id)
            cycle = plan.cycle_days
            actor = ctx.principal(plan.actor)
            latest = now - min(0.6 * cycle, 25) * DAY  # the new fill stays green until now
            if fill is None:
                assert box.created_at is not None  # a stored box
                lo = box.created_at + 0.5 * DAY
            elif target == "red_overdue":
                lo = fill.filled_at + cycle * DAY + 0.3 * DAY  # it went red first
            elif target == "grey_stopped":
                assert box.colour_since is not None  # an evaluated box
                lo = box.colour_since + 2 * DAY
            else:
                lo = fill.filled_at + 0.3 * DAY
            lo = max(lo, latest)
            hi = now - 0.2 * DAY
            if lo >= hi:
                continue
            at = working_hours(rng, lo + (hi - lo) * rng.random(), 8, 16)
            at = min(max(at, lo), hi)
            mass = float(round(float(box.design_fill_kg) * rng.uniform(0.98, 1.02)))
            data = {
                "filled_at": at,
                "mass_kg": mass,
                "carbon_type": box.carbon_type,
                **_carbon(loop, box, mass, at, batches),
            }
            if fill is not None:
                data["removed_waste_kg"] = round(float(fill.mass_kg) * rng.uniform(1.05, 1.25), 1)
            if target == "red_overdue":
                # The red spell before the replacement enters the colour history.
                box_services.refresh_colours(session, [box], at - timedelta(minutes=1))
            box_services.record_fill(session, actor, box, data, now=at)
            ctx.fills += 1
            if target == "grey_stopped":
                box_services.set_status(session, actor, box, "active", now=at + 2 * HOUR)
