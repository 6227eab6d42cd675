"""The benchmark data set's readings (``flask demo generate``, :mod:`app.demo.generate`).

Every sensor box reports once a minute for the last ``readings_per_sensor_box`` minutes. A batch
is one minute of every box (1,000 boxes a batch, as a city's gateways deliver them), stored
through :func:`store_batch`, the one place that calls the ingest service: when ingest gains a
faster path (COPY on PostgreSQL) the generator takes it without a change here.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from app.demo.generate import GenerateContext
from app.telemetry.services import Settings, ingest

BATCH_BOXES = 1_000


def store_batch(session: Session, ctx: GenerateContext, items: list[dict]) -> int:
    """One batch through the ingest service (what ``POST /api/v1/readings`` calls)."""
    settings = Settings(max_batch=max(Settings.max_batch, len(items)))
    result = ingest(session, ctx.operator, items, settings, now=ctx.now)
    if result.rejected:
        raise RuntimeError(f"generated readings rejected: {result.rejected_items[:3]}")
    return result.accepted


def generate_readings(session: Session, ctx: GenerateContext) -> None:
    codes, minutes = ctx.sensor_codes, ctx.plan.readings_per_sensor_box
    start = ctx.now.replace(second=0, microsecond=0) - timedelta(minutes=minutes)
    stored = 0
    for minute in range(minutes):
        ts = (start + timedelta(minutes=minute)).isoformat()
        for begin in range(0, len(codes), BATCH_BOXES):
            items = [
                {
                    "box_code": code,
                    "ts": ts,
                    "running": True,
                    "inlet_mg_m3": 60.0 + (n * 7 + minute) % 90,
                    "outlet_mg_m3": 8.0 + (n + minute) % 12,
                    "airflow_m3_h": 14000.0 + (n * 13) % 2000,
                    "pressure_drop_pa": 600.0 + (n * 11 + minute) % 300,
                    "inlet_temp_c": 28.0 + n % 6,
                    "bed_temp_c": 32.0 + n % 8,
                    "rh_pct": 45.0 + n % 30,
                }
                for n, code in enumerate(codes[begin : begin + BATCH_BOXES], start=begin)
            ]
            stored += store_batch(session, ctx, items)
            ctx.commit()
            ctx.forget(session)
        if minute % 50 == 49:
            ctx.progress(f"{stored} readings")
    ctx.counts["readings"] = stored
