"""The box page's concentration chart: inlet and outlet hourly averages as SVG coordinates."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from app.common.timeutil import SHANGHAI, from_db


def concentration_chart(
    rows: list[dict[str, Any]], start: datetime, end: datetime, limit: float | None
) -> dict[str, Any] | None:
    """Inlet and outlet hourly averages as SVG polylines (the x axis is time, y is mg/m³)."""
    points = [(from_db(r["start"]), r["inlet_mg_m3"]["avg"], r["outlet_mg_m3"]["avg"]) for r in rows]
    points = [p for p in points if p[1] is not None or p[2] is not None]
    if not points:
        return None
    width, height, left, right, top, bottom = 720, 220, 44, 12, 12, 26
    top_value = max([v for p in points for v in p[1:] if v is not None] + [limit or 0]) * 1.1 or 1.0
    span = (end - start).total_seconds()

    def x(t: datetime) -> float:
        return round(left + (t - start).total_seconds() / span * (width - left - right), 1)

    def y(v: float) -> float:
        return round(top + (1 - v / top_value) * (height - top - bottom), 1)

    def line(i: int) -> str:
        return " ".join(f"{x(p[0])},{y(p[i])}" for p in points if p[i] is not None)

    magnitude = 10 ** max(len(str(int(top_value))) - 1, 0)
    step = next(
        m * f for m in (magnitude / 10, magnitude) for f in (1, 2, 5) if m * f >= 1 and top_value / (m * f) <= 6
    )
    step = int(step)
    y_ticks = [{"v": v, "y": y(v)} for v in range(0, int(top_value) + 1, step)]
    x_ticks = []
    tick = (start.astimezone(SHANGHAI) + timedelta(hours=6)).replace(minute=0, second=0, microsecond=0)
    tick = tick.replace(hour=tick.hour - tick.hour % 6)
    while tick < end:
        if tick >= start:
            x_ticks.append(
                {"x": x(tick), "label": tick.strftime("%m-%d %H:%M") if tick.hour == 0 else tick.strftime("%H:%M")}
            )
        tick += timedelta(hours=6)
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": width - right,
        "top": top,
        "bottom": height - bottom,
        "inlet": line(1),
        "outlet": line(2),
        "y_ticks": y_ticks,
        "x_ticks": x_ticks,
        "limit_y": y(limit) if limit else None,
        "points": len(points),
    }
