"""The benchmark data set's readings (``flask demo generate``, :mod:`app.demo.generate`).

Every sensor box reports once a minute for the last ``readings_per_sensor_box`` minutes, as a
city's gateways deliver them: a batch is one minute of up to 1,000 boxes. The history goes in
through :func:`store_history`, the one call of the ingest's bulk writer
(:func:`app.telemetry.services.ingestion.insert_readings`: multi-row INSERT today; COPY on
PostgreSQL when ingest gains it, taken without a change here). The last ``LIVE_MINUTES`` go
through the ingest service itself, what ``POST /api/v1/readings`` calls, so each box's sensor
state, hourly roll-up and colour are what ingest makes of its latest readings. Not done for the
history: its hourly roll-ups (``sensor_reading_hours`` holds the live minutes' hours only) and
the integration of its load into the saturation (the state starts at the live minutes).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.boxes.models import Box
from app.demo.generate import GenerateContext
from app.telemetry.services import Settings, ingest
from app.telemetry.services.checks import bind_ts
from app.telemetry.services.ingestion import insert_readings

BATCH_BOXES = 1_000
LIVE_MINUTES = 2  # the first batch syncs the states and replays; more minutes add little but time
HISTORY_ROWS_PER_COMMIT = 100_000


def _item(code: str, n: int, minute: int, ts: str) -> dict:
    return {
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


def store_history(session: Session, rows: list[tuple]) -> None:
    """Rows ``(box_id, ts, *measures, running)`` through ingest's bulk writer."""
    insert_readings(session, rows)


def store_batch(session: Session, ctx: GenerateContext, items: list[dict]) -> int:
    """One batch through the ingest service (what ``POST /api/v1/readings`` calls)."""
    settings = Settings(max_batch=max(Settings.max_batch, len(items)))
    result = ingest(session, ctx.operator, items, settings, now=ctx.now)
    if result.rejected:
        raise RuntimeError(f"generated readings rejected: {result.rejected_items[:3]}")
    return result.accepted


def generate_readings(session: Session, ctx: GenerateContext) -> None:
    codes, minutes = ctx.sensor_codes, ctx.plan.readings_per_sensor_box
    ids = {code: box_id for code, box_id in session.execute(select(Box.code, Box.id).where(Box.code.in_(codes)))}
    start = ctx.now.replace(second=0, microsecond=0) - timedelta(minutes=minutes)
    live_from = max(0, minutes - LIVE_MINUTES)
    stored, pending = 0, []
    sqlite = session.get_bind().dialect.name == "sqlite"
    for minute in range(live_from):
        bound = bind_ts(start + timedelta(minutes=minute), sqlite)
        for n, code in enumerate(codes):
            item = _item(code, n, minute, "")
            pending.append((ids[code], bound, *_measures(item), True))
        if len(pending) >= HISTORY_ROWS_PER_COMMIT or minute == live_from - 1:
            store_history(session, pending)
            stored += len(pending)
            pending = []
            ctx.commit()
            ctx.progress(f"{stored} readings")
    for minute in range(live_from, minutes):
        ts = (start + timedelta(minutes=minute)).isoformat()
        for begin in range(0, len(codes), BATCH_BOXES):
            items = [
                _item(code, n, minute, ts) for n, code in enumerate(codes[begin : begin + BATCH_BOXES], start=begin)
            ]
            stored += store_batch(session, ctx, items)
            ctx.commit()
            ctx.forget(session)
    ctx.progress(f"{stored} readings")
    ctx.counts["readings"] = stored


MEASURE_KEYS = (
    "inlet_mg_m3",
    "outlet_mg_m3",
    "airflow_m3_h",
    "pressure_drop_pa",
    "inlet_temp_c",
    "bed_temp_c",
    "rh_pct",
)


def _measures(item: dict) -> tuple:
    return tuple(item[k] for k in MEASURE_KEYS)
