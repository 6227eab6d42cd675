"""The demo's boxes: design parameters, the planned fill history that leaves each box in its
target colour "today", registration, and the replay of the fills in time order.

Deterministic: everything draws from ``ctx.rng`` in a fixed order (moving code here must not
change the order of the draws).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.accounts.models import Organization
from app.boxes import codes
from app.boxes import services as box_services
from app.demo.content import SECTORS, SHOWCASE_TARGETS, TARGET_WEIGHTS, VIRGIN_SUPPLIER
from app.demo.context import BoxPlan, DemoContext

BOX_COUNT = 300


def _design(rng: random.Random, sector: str, carbon_type: str) -> dict[str, Any]:
    """Design parameters in the realistic ranges, sized for a replacement cycle of 2 weeks to 4 months."""
    spec = SECTORS[sector]
    for _ in range(200):
        airflow = float(rng.randrange(5000, 40001, 500))
        per_m3h = rng.uniform(0.06, 0.12) if carbon_type == "granular" else rng.uniform(0.03, 0.07)
        mass = float(min(3000, max(200, round(airflow * per_m3h / 50) * 50)))
        capacity = 0.15 if rng.random() < 0.25 else 0.10
        hours = float(rng.choice(spec["hours"]))
        target_cycle = rng.uniform(18, 100)
        conc = mass * capacity / (target_cycle * 1e-6 * airflow * hours)
        conc = float(min(150, max(20, round(conc))))
        cycle = mass * capacity / (conc * 1e-6 * airflow * hours)
        if 14 <= cycle <= 130:
            break
    low = rng.choice((150, 200, 300))
    return {
        "carbon_type": carbon_type,
        "design_fill_kg": mass,
        "design_airflow_m3_h": airflow,
        "design_removed_mg_m3": conc,
        "hours_per_day": hours,
        "adsorption_capacity": capacity,
        "emission_limit_mg_m3": spec["limit"],
        "pressure_drop_min_pa": float(low),
        "pressure_drop_max_pa": float(low + rng.choice((1000, 1200, 1500))),
    }


def _cycle_days(design: dict[str, Any]) -> float:
    """T = M × S ÷ (C × 10⁻⁶ × Q × t)."""
    return (
        design["design_fill_kg"]
        * design["adsorption_capacity"]
        / (design["design_removed_mg_m3"] * 1e-6 * design["design_airflow_m3_h"] * design["hours_per_day"])
    )


def _plan(rng: random.Random, target: str, cycle: float, now: datetime) -> BoxPlan:
    """Fill times (oldest first) that leave the box in ``target`` state at ``now``."""
    day = timedelta(days=1)
    if target == "grey_new":
        return BoxPlan(target, cycle, [])
    if target in ("green", "green_first", "red_iodine", "grey_stopped", "grey_decommissioned"):
        # Below 80% and more than 7 days (plus a margin) before the predicted date.
        upper = min(0.7, 1 - 8.5 / cycle)
        fraction = rng.uniform(0.03, max(upper, 0.05))
    elif target in ("yellow", "yellow_first"):
        # Either ≥80% saturation or within 7 days of the date; never past it.
        lower = min(0.82, 1 - 6.5 / cycle)
        fraction = rng.uniform(lower, 0.97)
    else:  # red_overdue
        fraction = rng.uniform(1.08, 1.9)
    last = now - fraction * cycle * day
    if target in ("grey_stopped", "grey_decommissioned"):
        # Stopped some time ago; its last fill came before that.
        stopped_at = now - rng.uniform(3, 60) * day
        last = stopped_at - fraction * cycle * day
    times = [last]
    if target not in ("green_first", "yellow_first"):
        start = now - rng.uniform(150, 420) * day
        while len(times) < 6:
            late = rng.random() < 0.22
            gap = cycle * (rng.uniform(1.02, 1.45) if late else rng.uniform(0.78, 0.98))
            previous = times[-1] - gap * day
            if previous < start:
                break
            times.append(previous)
    times = [t.replace(microsecond=0) for t in reversed(times)]
    plan = BoxPlan(target, cycle, times)
    if target in ("grey_stopped", "grey_decommissioned"):
        status = "stopped" if target == "grey_stopped" else "decommissioned"
        plan.status_change = (status, (times[-1] + (now - times[-1]) * rng.uniform(0.3, 0.95)).replace(microsecond=0))
    return plan


def _box_counts(rng: random.Random, enterprises: list[Organization], sectors: dict[int, str]) -> list[int]:
    weights = [SECTORS[sectors[e.id]]["weight"] * rng.uniform(0.7, 1.3) for e in enterprises]
    weights[0] = 0  # the showcase enterprise gets exactly len(SHOWCASE_TARGETS)
    rest = BOX_COUNT - len(SHOWCASE_TARGETS)
    raw = [rest * w / sum(weights) for w in weights]
    counts = [max(int(r), 1) if w else 0 for r, w in zip(raw, weights, strict=True)]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - int(raw[i]), reverse=True)
    i = 0
    while sum(counts) < rest:
        counts[order[i % len(order)]] += 1
        i += 1
    counts[0] = len(SHOWCASE_TARGETS)
    return counts


def _iodine(rng: random.Random, carbon_type: str, bad: bool) -> float:
    if carbon_type == "honeycomb":
        return float(rng.randint(590, 640) if bad else rng.randint(680, 820))
    return float(rng.randint(700, 785) if bad else rng.randint(820, 1050))


def load_boxes(session: Session, ctx: DemoContext) -> None:
    """Register the boxes and replay their fill histories in time order."""
    rng, now = ctx.rng, ctx.now
    targets = [t for t, _ in TARGET_WEIGHTS]
    weights = [w for _, w in TARGET_WEIGHTS]
    counts = _box_counts(rng, ctx.enterprises, ctx.sectors)
    used_codes: set[str] = set()
    for index, (enterprise, count) in enumerate(zip(ctx.enterprises, counts, strict=True)):
        sector = ctx.sectors[enterprise.id]
        workshops = SECTORS[sector]["workshops"]
        for n in range(count):
            target = SHOWCASE_TARGETS[n] if index == 0 else rng.choices(targets, weights)[0]
            carbon_type = "honeycomb" if rng.random() < 0.15 else "granular"
            if index == 0 and n in (1, 5):
                carbon_type = "honeycomb"
            design = _design(rng, sector, carbon_type)
            plan = _plan(rng, target, _cycle_days(design), now)
            # The showcase enterprise replaces some of its boxes itself; the carbon service does the rest.
            self_service = index == 0 and n % 2 == 1
            plan.actor = "qiye2" if self_service else "huanta"
            while True:
                code = codes.make_code(enterprise.county_code, "".join(rng.choice(codes.ALPHABET) for _ in range(5)))
                if code not in used_codes:
                    used_codes.add(code)
                    break
            created = plan.fill_times[0] if plan.fill_times else now - timedelta(days=rng.uniform(1, 20))
            created = (created - timedelta(days=rng.uniform(0.5, 6))).replace(microsecond=0)
            workshop = workshops[n % len(workshops)]
            box = box_services.register_box(
                session,
                ctx.operator_principal,
                {
                    **design,
                    "code": code,
                    "enterprise_id": enterprise.id,
                    "service_org_id": None if self_service else ctx.orgs["service"].id,
                    "name": f"{workshop}{'蜂窝' if carbon_type == 'honeycomb' else ''}活性炭吸附箱 {n + 1}#",
                    "facility_code": f"TA{n + 1:03d}",
                    "outlet_code": f"DA{n // 2 + 1:03d}",
                    # The showcase enterprise has no sensors, so its colours come from the fills alone.
                    "has_sensors": rng.random() < 0.25 and index != 0,
                },
                now=created,
            )
            ctx.boxes.append(box)
            ctx.plans[box.id] = plan
    session.flush()
    _replay_fills(session, ctx)


def _replay_fills(session: Session, ctx: DemoContext) -> None:
    rng = ctx.rng
    batch_seq: dict[str, int] = {}
    for box in ctx.boxes:
        plan = ctx.plans[box.id]
        actor = ctx.principal(plan.actor)
        enterprise = box.enterprise
        supplier = (
            ctx.orgs["regen_wenling"] if enterprise.county_code in ("331081", "331083") else ctx.orgs["regen_tiantai"]
        )
        previous_mass: float | None = None
        for i, filled_at in enumerate(plan.fill_times):
            last = i == len(plan.fill_times) - 1
            if previous_mass is not None and filled_at - plan.fill_times[i - 1] > timedelta(days=plan.cycle_days):
                # A late replacement: the box went red (overdue) before it; the colour history
                # records that spell, so red box-days count. (On-time ones skip the extra
                # evaluation: it is the slow part of the load.)
                box_services.refresh_colours(session, [box], filled_at - timedelta(minutes=1))
            regenerated = box.carbon_type == "granular" and rng.random() < 0.7
            day_key = f"{filled_at:%y%m%d}"
            batch_seq[day_key] = batch_seq.get(day_key, 0) + 1
            mass = round(float(box.design_fill_kg) * rng.uniform(0.98, 1.02))
            data: dict[str, Any] = {
                "filled_at": filled_at,
                "mass_kg": float(mass),
                "carbon_type": box.carbon_type,
                "iodine_mg_g": _iodine(rng, box.carbon_type, bad=last and plan.target == "red_iodine"),
                "supplier_org_id": supplier.id if regenerated else None,
                "supplier_name": supplier.name if regenerated else VIRGIN_SUPPLIER,
                "batch_no": (
                    f"ZS{day_key}-{batch_seq[day_key]:02d}"
                    if regenerated
                    else f"JY{filled_at:%y%m}-{rng.randint(1, 40):03d}"
                ),
                "note": "再生炭" if regenerated else "",
            }
            if previous_mass is not None:
                # Loaded carbon weighs more than it did new (adsorbed VOCs and moisture).
                data["removed_waste_kg"] = round(float(previous_mass) * rng.uniform(1.05, 1.25), 1)
            box_services.record_fill(session, actor, box, data, now=filled_at)
            ctx.fills += 1
            previous_mass = float(mass)
        if plan.status_change:
            status, at = plan.status_change
            box_services.refresh_colours(session, [box], at - timedelta(minutes=1))
            box_services.set_status(session, actor, box, status, now=at)
