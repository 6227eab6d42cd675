"""The demo's sensor data: the last three days of readings of every box with sensors.

A demo extension (listed in :func:`app.common.wiring.demo_extensions`). Each enterprise's gateway pushes its
boxes' readings through :func:`app.telemetry.services.ingest` (what ``POST /api/v1/readings``
calls), one reading per box every 10 minutes, with values a real adsorption box shows: inlet
VOCs 30–150 mg/m³, outlet well below the box's emission limit, airflow near design, pressure
drop inside the band, gas 25–35 °C, RH 40–80 %, the fan running in the box's working hours.

A handful of boxes show each sensor alarm at the end of the window: sustained breakthrough,
bed temperature ≥ 83 °C, inlet gas above 40 °C, pressure drop above or below its band, low
removal efficiency; two boxes went silent more than 24 h ago and two more than 72 h ago.

Only active boxes with carbon in them report (a stopped fan sends nothing worth showing).
Deterministic: its own ``random.Random`` seeded from ``ctx.rng``.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, has_app_context

from app.accounts.services import Principal
from app.boxes.models import Box
from app.common.timeutil import SHANGHAI
from app.demo.data import DemoContext
from app.telemetry.services import Settings, ingest

STEP = timedelta(minutes=10)
WINDOW = timedelta(days=3)
# role → how many boxes show it
ALARMS = (
    ("breakthrough", 2),
    ("bed_hot", 2),
    ("inlet_hot", 2),
    ("dp_high", 1),
    ("dp_low", 1),
    ("low_efficiency", 2),
    ("silent_24h", 2),
    ("silent_72h", 2),
)
ALARM_SPAN = {
    "breakthrough": 5.0,
    "bed_hot": 1.5,
    "inlet_hot": 3.0,
    "dp_high": 6.0,
    "dp_low": 4.0,
    "low_efficiency": 4.0,
}  # hours before the last reading in which the alarm builds up


# The demo keeps only the last days of readings: the replayed fill histories leave the silence
# rules out of the colour history (app.demo.context.DemoExtension.deferred_checks,
# app.common.wiring.demo_extensions).
REPLAY_DEFERRED_CHECKS = frozenset({"no_sensor_data", "no_sensor_data_long"})


def _settings() -> Settings:
    return Settings.from_config(current_app.config) if has_app_context() else Settings()


def _shift(hours: float) -> tuple[float, float]:
    """Local start and end hour of a box's working day (a 24 h box never stops)."""
    if hours >= 24:
        return 0.0, 24.0
    start = {8: 8.0, 10: 8.0, 12: 7.0, 16: 6.0, 20: 4.0}.get(int(hours), 8.0)
    return start, start + hours


class _Profile:
    """One box's steady state; :meth:`reading` adds the daily rhythm and sensor noise."""

    def __init__(self, box: Box, rng: random.Random):
        self.box, self.rng = box, rng
        self.airflow = box.design_airflow_m3_h * rng.uniform(0.85, 1.03)
        self.inlet = min(150.0, max(30.0, box.design_removed_mg_m3 / 0.9 * rng.uniform(0.85, 1.1)))
        self.efficiency = rng.uniform(0.86, 0.95)
        self.outlet_cap = box.emission_limit_mg_m3 * rng.uniform(0.3, 0.55)
        lo, hi = box.pressure_drop_min_pa or 200.0, box.pressure_drop_max_pa or 1500.0
        self.dp = lo + (hi - lo) * rng.uniform(0.3, 0.55)
        self.gas = rng.uniform(26.0, 31.0)
        self.rh = rng.uniform(50.0, 70.0)
        self.start, self.end = _shift(box.hours_per_day)

    def running(self, ts: datetime) -> bool:
        local = ts.astimezone(SHANGHAI)
        hour = local.hour + local.minute / 60
        return self.start <= hour < self.end

    def reading(self, ts: datetime, running: bool) -> dict[str, Any]:
        rng = self.rng
        local = ts.astimezone(SHANGHAI)
        day_phase = math.sin((local.hour + local.minute / 60 - 9) / 24 * 2 * math.pi)
        if not running:
            return {
                "inlet_mg_m3": round(rng.uniform(2, 6), 1),
                "outlet_mg_m3": round(rng.uniform(0.5, 2), 1),
                "airflow_m3_h": 0.0,
                "pressure_drop_pa": round(rng.uniform(0, 15)),
                "inlet_temp_c": round(self.gas - 2 + 2 * day_phase + rng.gauss(0, 0.3), 1),
                "bed_temp_c": round(self.gas - 1 + 2 * day_phase + rng.gauss(0, 0.3), 1),
                "rh_pct": round(min(80, self.rh + 8 + rng.gauss(0, 2)), 1),
            }
        inlet = min(150.0, max(30.0, self.inlet * (1 + 0.2 * day_phase) * rng.uniform(0.9, 1.1)))
        outlet = min(inlet * (1 - self.efficiency) * rng.uniform(0.85, 1.15), self.outlet_cap * rng.uniform(0.9, 1.0))
        gas = self.gas + 3 * day_phase + rng.gauss(0, 0.4)
        return {
            "inlet_mg_m3": round(inlet, 1),
            "outlet_mg_m3": round(outlet, 2),
            "airflow_m3_h": round(self.airflow * rng.uniform(0.97, 1.03)),
            "pressure_drop_pa": round(self.dp * rng.uniform(0.97, 1.03)),
            "inlet_temp_c": round(min(35.0, max(25.0, gas)), 1),
            "bed_temp_c": round(min(37.0, max(25.0, gas + self.rng.uniform(1.0, 3.0))), 1),
            "rh_pct": round(min(80.0, max(40.0, self.rh - 8 * day_phase + rng.gauss(0, 2))), 1),
        }


def _alarm(role: str, values: dict[str, Any], box: Box, progress: float, rng: random.Random) -> None:
    """Bend a running reading towards the alarm; ``progress`` runs 0 → 1 over the alarm span."""
    limit = box.emission_limit_mg_m3
    lo, hi = box.pressure_drop_min_pa or 200.0, box.pressure_drop_max_pa or 1500.0
    if role == "breakthrough":
        # The bed is exhausted: the outlet climbs through the limit and stays above it.
        values["outlet_mg_m3"] = round(limit * (0.7 + 0.9 * progress) * rng.uniform(0.97, 1.03), 2)
        values["inlet_mg_m3"] = max(values["inlet_mg_m3"], round(values["outlet_mg_m3"] * 1.4, 1))
    elif role == "bed_hot":
        values["bed_temp_c"] = round(
            values["bed_temp_c"] + (86.5 - values["bed_temp_c"]) * progress**1.5 + rng.uniform(-0.3, 0.3), 1
        )
    elif role == "inlet_hot":
        values["inlet_temp_c"] = round(34 + 10 * progress + rng.uniform(-0.4, 0.4), 1)
        values["bed_temp_c"] = round(max(values["bed_temp_c"], values["inlet_temp_c"] + 1.5), 1)
    elif role == "dp_high":
        values["pressure_drop_pa"] = round(hi * (0.85 + 0.35 * progress) * rng.uniform(0.98, 1.02))
    elif role == "dp_low":
        values["pressure_drop_pa"] = round(lo * (1.0 - 0.6 * progress) * rng.uniform(0.95, 1.05))
    elif role == "low_efficiency":
        efficiency = 0.88 - 0.28 * progress
        inlet = min(values["inlet_mg_m3"], limit * 1.5)
        values["inlet_mg_m3"] = round(max(inlet, 30.0), 1)
        values["outlet_mg_m3"] = round(min(values["inlet_mg_m3"] * (1 - efficiency), limit * 0.9), 2)


def _roles(boxes: list[Box], rng: random.Random) -> dict[int, str]:
    """Alarm roles for a few boxes: round-the-clock ones first, so the alarm shows at any hour;
    low efficiency needs a limit loose enough to stay below it."""
    order = boxes[:]
    rng.shuffle(order)
    order.sort(key=lambda b: b.hours_per_day < 20)
    roles: dict[int, str] = {}
    for role, count in ALARMS:
        for box in order:
            if count == 0:
                break
            if box.id in roles or (role == "low_efficiency" and box.emission_limit_mg_m3 < 40):
                continue
            roles[box.id] = role
            count -= 1
    return roles


def _box_readings(box: Box, role: str | None, now: datetime, rng: random.Random) -> list[dict[str, Any]]:
    profile = _Profile(box, rng)
    last = now - timedelta(minutes=rng.uniform(0.5, 9.5))
    if role == "silent_24h":
        last = now - timedelta(hours=rng.uniform(28, 54))
    elif role == "silent_72h":
        last = now - timedelta(hours=rng.uniform(80, 118))
    last = last.replace(second=0, microsecond=0)
    first = last - WINDOW if role is None or not role.startswith("silent") else last - timedelta(days=2)
    span = timedelta(hours=ALARM_SPAN.get(role or "", 0))
    items = []
    ts = first
    while ts <= last:
        running = profile.running(ts)
        alarming = role is not None and role in ALARM_SPAN and ts > last - span
        if alarming:
            running = True  # the alarm boxes run round the clock at the end (night shift)
        values = profile.reading(ts, running)
        if alarming and role is not None:  # (alarming implies a role)
            _alarm(role, values, box, 1 - (last - ts) / span, rng)
        items.append({"box_code": box.code, "ts": ts.timestamp(), "running": running, **values})
        ts += STEP
    return items


def stream_sensor_readings(session, ctx: DemoContext, now: datetime) -> None:
    rng = random.Random(ctx.rng.random())
    reporting = [b for b in ctx.boxes if b.has_sensors and b.status == "active" and ctx.plans[b.id].fill_times]
    roles = _roles(reporting, rng)
    settings = _settings()
    by_enterprise: dict[int, list[Box]] = defaultdict(list)
    for box in reporting:
        by_enterprise[box.enterprise_id].append(box)
    orgs = {o.id: o for o in ctx.enterprises}
    for enterprise_id, boxes in by_enterprise.items():
        # Each enterprise's gateway sends with its own device identity.
        gateway = Principal(device_org=orgs[enterprise_id], token_kind="device")
        items: list[dict[str, Any]] = []
        for box in boxes:
            items.extend(_box_readings(box, roles.get(box.id), now, rng))
        for begin in range(0, len(items), settings.max_batch):
            result = ingest(session, gateway, items[begin : begin + settings.max_batch], settings, now=now)
            if result.rejected:
                raise RuntimeError(f"demo readings rejected: {result.rejected_items[:3]}")
    session.flush()
