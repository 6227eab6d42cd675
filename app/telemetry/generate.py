"""The benchmark data set's readings (``flask demo generate``, :mod:`app.demo.generate`).

Every sensor box reports once a minute for the last ``readings_per_sensor_box`` minutes. All of
it goes in through the ingest service, what ``POST /api/v1/readings`` and the MQTT subscriber
call, as a city's gateways would upload a backlog: a batch is ``BATCH_BOXES`` boxes ×
``BATCH_MINUTES`` minutes, the batches in time order. So every box's sensor state (the integral
of its load since its fill), hourly roll-ups, audit entries and colour are what ingest makes of
the readings, with nothing written past it. A box's first batch is the first readings of its
fill (ingest evaluates it in full and replays the batch); the later ones append to the newest
(ingest's figures path: the full evaluation only for boxes whose readings crossed a threshold of
the colour rules). Many minutes a batch, because ingest's cost is per batch and per box as well
as per reading (one minute a batch, 10⁷ readings would take 10⁴ batches and hours).
"""

from __future__ import annotations

from datetime import timedelta

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.boxes.models import Box, Fill
from app.demo.generate import GenerateContext, bulk_rows
from app.telemetry import wire
from app.telemetry.models import BoxSensorState
from app.telemetry.services import Settings, ingest, readings_of

BATCH_BOXES = 1_000
BATCH_MINUTES = 60  # up to 60,000 readings a batch


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


STATE_COLUMNS = (
    "box_id", "fill_id", "fill_started_at", "adsorbed_kg", "integrated_count", "last_rate_kg_h", "load_hours",
    "breakthrough_count", "latest", "reading_count", "updated_at",
)  # fmt: skip


def sensor_states(session: Session, ctx: GenerateContext) -> None:
    """Every box's sensor state, in bulk, as registration makes it (the wiring's
    ``box_registered`` hook, :func:`app.telemetry.services.states.create_sensor_state`) and its
    first fill leaves it once the box is evaluated (synced to the fill: no readings yet, the
    integral at zero); run before the boxes' colours are evaluated, which would otherwise sync
    each box's state one by one."""
    rows = [
        (box_id, fill_id, filled_at, 0.0, 0, 0.0, "[]", 0, "{}", 0, created_at)
        for box_id, fill_id, filled_at, created_at in session.execute(
            select(Fill.box_id, Fill.id, Fill.filled_at, Box.created_at)
            .join(Box, Box.id == Fill.box_id)
            .order_by(Fill.box_id)
        )
    ]
    for begin in range(0, len(rows), 10_000):
        bulk_rows(session, BoxSensorState, STATE_COLUMNS, rows[begin : begin + 10_000])
    ctx.commit()
    ctx.progress(f"{len(rows)} sensor states")


def store_batch(session: Session, ctx: GenerateContext, items: list[dict]) -> int:
    """One batch as ``POST /api/v1/readings`` takes it: the JSON body a gateway sends, decoded by
    the wire format (:mod:`app.telemetry.wire`: typed and range-checked in C), then the ingest
    service."""
    settings = Settings(max_batch=max(Settings.max_batch, len(items)))
    body = wire.decode(orjson.dumps({"readings": items}))
    result = ingest(session, ctx.operator, readings_of(body, settings.max_batch), settings, now=ctx.now)
    if result.rejected:
        raise RuntimeError(f"generated readings rejected: {result.rejected_items[:3]}")
    return result.accepted


def generate_readings(session: Session, ctx: GenerateContext) -> None:
    codes, minutes = ctx.sensor_codes, ctx.plan.readings_per_sensor_box
    start = ctx.now.replace(second=0, microsecond=0) - timedelta(minutes=minutes)
    stamps = [(start + timedelta(minutes=m)).isoformat() for m in range(minutes)]
    stored = 0
    # The first minute alone: it is each box's first readings of its fill, which ingest evaluates
    # in full and replays from (a moment a reading, so a long first batch costs a replay of each).
    windows = [range(0, min(1, minutes))] + [
        range(m, min(m + BATCH_MINUTES, minutes)) for m in range(1, minutes, BATCH_MINUTES)
    ]
    for window in windows:
        for begin in range(0, len(codes), BATCH_BOXES):
            # A box's minutes together (a gateway's backlog of one box), boxes in order.
            items = [
                _item(code, n, minute, stamps[minute])
                for n, code in enumerate(codes[begin : begin + BATCH_BOXES], start=begin)
                for minute in window
            ]
            stored += store_batch(session, ctx, items)
            ctx.commit()
            ctx.forget(session)
        ctx.progress(f"{stored} readings")
    ctx.counts["readings"] = stored
