"""Reading back a box's readings: raw, or the hourly roll-ups as stored, or days summed from them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.boxes.models import Box
from app.common.timeutil import SHANGHAI
from app.telemetry.integration import hour_of
from app.telemetry.models import MEASURES, ROLLUP_MEASURES, ReadingHour, SensorReading

RAW_LIMIT = 10_000


def raw_readings(session: Session, box: Box, start: datetime, end: datetime, limit: int = RAW_LIMIT):
    t = SensorReading
    rows = (
        session.execute(select(t).where(t.box_id == box.id, t.ts >= start, t.ts < end).order_by(t.ts).limit(limit + 1))
        .scalars()
        .all()
    )
    truncated = len(rows) > limit
    return [{"ts": r.ts, **{m: getattr(r, m) for m in MEASURES}, "running": r.running} for r in rows[:limit]], truncated


def _finish(agg: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "start": agg["start"],
        "count": agg["count"],
        "running_share": agg["running_count"] / agg["count"] if agg["count"] else None,
        "adsorbed_kg": agg["adsorbed_kg"],
    }
    for m in ROLLUP_MEASURES:
        n = agg["count"] if MEASURES[m][3] else agg[f"{m}_n"]
        out[m] = {"avg": agg[f"{m}_sum"] / n if n else None, "min": agg[f"{m}_min"], "max": agg[f"{m}_max"]}
    inlet, outlet = out["inlet_mg_m3"]["avg"], out["outlet_mg_m3"]["avg"]
    out["removal_efficiency"] = 1 - outlet / inlet if inlet else None
    if "date" in agg:
        out["date"] = agg["date"]
    return out


def _hour_rows(session: Session, box: Box, start: datetime, end: datetime) -> list[dict[str, Any]]:
    t = ReadingHour.__table__
    rows = (
        session.execute(
            select(t)
            .where(t.c.box_id == box.id, t.c.hour_start >= hour_of(start), t.c.hour_start < end)
            .order_by(t.c.hour_start)
        )
        .mappings()
        .all()
    )
    return [{**dict(r), "start": r["hour_start"]} for r in rows]


def rollup_readings(
    session: Session, box: Box, start: datetime, end: datetime, resolution: str
) -> list[dict[str, Any]]:
    """Hourly roll-ups as stored, or days (Asia/Shanghai) summed from them."""
    if resolution == "hour":
        return [_finish(r) for r in _hour_rows(session, box, start, end)]
    local_start = start.astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    days: dict[Any, dict[str, Any]] = {}
    for r in _hour_rows(session, box, local_start.astimezone(UTC), end):
        day = r["hour_start"].astimezone(SHANGHAI).date()
        agg = days.get(day)
        if agg is None:
            day_start = datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).astimezone(UTC)
            days[day] = {**r, "start": day_start, "date": day.isoformat()}
            continue
        for k in ("count", "running_count", "adsorbed_kg"):
            agg[k] += r[k]
        for m in ROLLUP_MEASURES:
            agg[f"{m}_sum"] += r[f"{m}_sum"]
            if not MEASURES[m][3]:
                agg[f"{m}_n"] += r[f"{m}_n"]
            for k, pick in ((f"{m}_min", min), (f"{m}_max", max)):
                values = [v for v in (agg[k], r[k]) if v is not None]
                agg[k] = pick(values) if values else None
    return [_finish(a) for a in days.values()]
