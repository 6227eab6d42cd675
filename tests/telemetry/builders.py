"""Builders for the telemetry tests (no tests here; their fixtures are in tests/telemetry/conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app.boxes.models import Box, ColourChange
from app.boxes.services import record_fill
from app.extensions import db
from app.telemetry.models import BoxSensorState, SensorReading
from tests import factories

BASE = dict(
    inlet_mg_m3=100.0,
    outlet_mg_m3=20.0,
    airflow_m3_h=5000.0,
    pressure_drop_pa=800.0,
    inlet_temp_c=30.0,
    bed_temp_c=30.0,
    rh_pct=50.0,
    running=True,
)
# (100 − 20) mg/m³ × 5000 m³/h × 10⁻⁶ = 0.4 kg/h
RATE_KG_H = 0.4


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def reading(code: str, ts: datetime | str, **over) -> dict:
    return {"box_code": code, "ts": ts.isoformat() if isinstance(ts, datetime) else ts, **BASE, **over}


def make_sensor_box(world, filled_days_ago: float = 2, **extra):
    box = factories.box(
        world.enterprise, has_sensors=True, pressure_drop_min_pa=300.0, pressure_drop_max_pa=1200.0, **extra
    )
    record_fill(
        db.session,
        factories.op_principal(),
        box,
        {
            "mass_kg": 2000.0,
            "iodine_mg_g": 950.0,
            "filled_at": utc_now() - timedelta(days=filled_days_ago),
            "confirm_unusual": True,  # 2000 kg whatever the design (unusual for a small design, confirmed)
        },
    )
    db.session.commit()
    return box


def device_token(api, org) -> str:
    r = api.post("/api/v1/device-tokens", {"organization_id": org.id, "name": "gateway-1"})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["token"]


def post_readings(api, token: str, body):
    return api.client.post("/api/v1/readings", json=body, headers={"Authorization": f"Bearer {token}"})


def stored_count(box_id: int | None = None) -> int:
    query = select(func.count()).select_from(SensorReading)
    if box_id is not None:
        query = query.where(SensorReading.box_id == box_id)
    count = db.session.scalar(query)
    db.session.rollback()
    return count


def state_of(box_id: int) -> BoxSensorState:
    db.session.expire_all()
    return db.session.get(BoxSensorState, box_id)


def colour_history(box_id: int) -> list[tuple]:
    """A box's colour changes in order: what the incremental paths must write as a replay would."""
    changes = db.session.scalars(
        select(ColourChange).where(ColourChange.box_id == box_id).order_by(ColourChange.changed_at, ColourChange.id)
    )
    return [(c.colour, c.previous_colour, c.changed_at, c.reasons) for c in changes]


def shown(box: Box) -> tuple:
    """What reads of the box show (its stored evaluation), but the ids of its own fills."""
    detail = {k: v for k, v in (box.colour_detail or {}).items() if k != "fill_id"}
    return (
        box.colour,
        box.colour_since,
        box.colour_reasons,
        box.saturation,
        box.predicted_replacement_at,
        box.colour_next_check_at,
        detail,
    )
