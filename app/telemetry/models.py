"""Telemetry tables: raw readings, one integration state per box, hourly roll-ups, dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.common.timeutil import utcnow
from app.common.types import UTCDateTime
from app.extensions import Model

# Numeric measures of a reading: name → (unit, lowest, highest accepted value, required).
# The ranges are the documented sensor ranges: anything outside is a fault, not a reading.
MEASURES: dict[str, tuple[str, float, float, bool]] = {
    "inlet_mg_m3": ("mg/m³", 0.0, 10_000.0, True),
    "outlet_mg_m3": ("mg/m³", 0.0, 10_000.0, True),
    "airflow_m3_h": ("m³/h", 0.0, 1_000_000.0, True),
    "pressure_drop_pa": ("Pa", 0.0, 20_000.0, False),
    "inlet_temp_c": ("°C", -40.0, 300.0, False),
    "bed_temp_c": ("°C", -40.0, 300.0, False),
    "rh_pct": ("%", 0.0, 100.0, False),
}
# Measures kept in the hourly roll-ups (sum, min, max; n for the optional ones).
ROLLUP_MEASURES = ("inlet_mg_m3", "outlet_mg_m3", "airflow_m3_h", "pressure_drop_pa", "bed_temp_c", "inlet_temp_c")


class SensorReading(Model):
    """One reading of a box's sensors. The primary key (box, ts) makes ingest idempotent and is
    the only index: at 10⁷–10⁹ rows a surrogate id would only cost space."""

    __tablename__ = "sensor_readings"
    box_id: Mapped[int] = mapped_column(ForeignKey("boxes.id"), primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    inlet_mg_m3: Mapped[float] = mapped_column(Float)
    outlet_mg_m3: Mapped[float] = mapped_column(Float)
    airflow_m3_h: Mapped[float] = mapped_column(Float)
    pressure_drop_pa: Mapped[float | None] = mapped_column(Float)
    inlet_temp_c: Mapped[float | None] = mapped_column(Float)
    bed_temp_c: Mapped[float | None] = mapped_column(Float)
    rh_pct: Mapped[float | None] = mapped_column(Float)
    running: Mapped[bool] = mapped_column(Boolean, default=True)


class BoxSensorState(Model):
    """What ingest keeps per box so that a batch never re-reads the box's history.

    ``adsorbed_kg`` is the integral over closed intervals of the readings of fill ``fill_id``
    (each reading × its hold time to the next, capped); the last integrated reading's interval
    is still open and is added on evaluation (up to the cap). ``latest_*`` is the newest reading
    of any fill, for the alarms and the box page.
    """

    __tablename__ = "box_sensor_states"
    box_id: Mapped[int] = mapped_column(ForeignKey("boxes.id"), primary_key=True)
    fill_id: Mapped[int | None] = mapped_column(Integer)
    fill_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Float on purpose: an estimate integrated from sensor readings (mg/m³ × m³/h × h), never a
    # weighed mass that enters a balance; the masses of the ledger are exact (Kilograms).
    adsorbed_kg: Mapped[float] = mapped_column(Float, default=0.0)
    integrated_count: Mapped[int] = mapped_column(Integer, default=0)
    # The newest reading of the fill: its ts and adsorption rate (kg/h) start the open interval.
    last_integrated_ts: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_rate_kg_h: Mapped[float] = mapped_column(Float, default=0.0)
    # Measured load: [hour (epoch s), kg, held s] of the intervals of the fill that start in each
    # hour of the load window ending at last_integrated_ts (app.telemetry.integration.window_load).
    load_hours: Mapped[list[list[float]]] = mapped_column(JSON, default=list)
    # Breakthrough streak: consecutive newest readings with the outlet above the emission limit.
    breakthrough_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    breakthrough_count: Mapped[int] = mapped_column(Integer, default=0)
    latest_ts: Mapped[datetime | None] = mapped_column(UTCDateTime())
    latest: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reading_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ReadingHour(Model):
    """Hourly roll-up of a box's readings, maintained at ingest by an upsert. Asia/Shanghai has
    no daylight saving, so its hours are UTC hours; days are aggregated from these rows."""

    __tablename__ = "sensor_reading_hours"
    box_id: Mapped[int] = mapped_column(ForeignKey("boxes.id"), primary_key=True)
    hour_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    running_count: Mapped[int] = mapped_column(Integer, default=0)
    # kg adsorbed by the intervals that start in this hour (for the fill in force).
    adsorbed_kg: Mapped[float] = mapped_column(Float, default=0.0)  # an estimate from sensors: Float
    inlet_mg_m3_sum: Mapped[float] = mapped_column(Float, default=0.0)
    inlet_mg_m3_min: Mapped[float | None] = mapped_column(Float)
    inlet_mg_m3_max: Mapped[float | None] = mapped_column(Float)
    outlet_mg_m3_sum: Mapped[float] = mapped_column(Float, default=0.0)
    outlet_mg_m3_min: Mapped[float | None] = mapped_column(Float)
    outlet_mg_m3_max: Mapped[float | None] = mapped_column(Float)
    airflow_m3_h_sum: Mapped[float] = mapped_column(Float, default=0.0)
    airflow_m3_h_min: Mapped[float | None] = mapped_column(Float)
    airflow_m3_h_max: Mapped[float | None] = mapped_column(Float)
    pressure_drop_pa_n: Mapped[int] = mapped_column(Integer, default=0)
    pressure_drop_pa_sum: Mapped[float] = mapped_column(Float, default=0.0)
    pressure_drop_pa_min: Mapped[float | None] = mapped_column(Float)
    pressure_drop_pa_max: Mapped[float | None] = mapped_column(Float)
    bed_temp_c_n: Mapped[int] = mapped_column(Integer, default=0)
    bed_temp_c_sum: Mapped[float] = mapped_column(Float, default=0.0)
    bed_temp_c_min: Mapped[float | None] = mapped_column(Float)
    bed_temp_c_max: Mapped[float | None] = mapped_column(Float)
    inlet_temp_c_n: Mapped[int] = mapped_column(Integer, default=0)
    inlet_temp_c_sum: Mapped[float] = mapped_column(Float, default=0.0)
    inlet_temp_c_min: Mapped[float | None] = mapped_column(Float)
    inlet_temp_c_max: Mapped[float | None] = mapped_column(Float)


class DeadLetter(Model):
    """An MQTT message (or the rejected part of one) that could not be stored, with the reason,
    kept for operators. Device tokens in the payload are redacted before it is stored."""

    __tablename__ = "telemetry_dead_letters"
    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    source: Mapped[str] = mapped_column(String(10), default="mqtt")
    topic: Mapped[str] = mapped_column(String(255), default="")
    reason: Mapped[str] = mapped_column(String(40))  # undecodable | invalid_json | unauthenticated | …
    detail: Mapped[str] = mapped_column(Text, default="")
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    payload: Mapped[str] = mapped_column(Text, default="")
    payload_bytes: Mapped[int] = mapped_column(Integer, default=0)
