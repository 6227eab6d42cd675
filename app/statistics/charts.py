"""Chart geometry for the statistics page: server-rendered inline SVG (no script, no CDN), so the
page works offline and prints. The template draws what these functions lay out."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _


def bar_chart(treatment: dict[str, float]) -> dict[str, Any]:
    """Horizontal bars of the treatment methods (kg), as SVG geometry."""
    labels = {
        "utilised": _("利用"),
        "incinerated": _("焚烧"),
        "cement_kiln": _("水泥窑协同处置"),
        "landfilled": _("填埋"),
        "other": _("其他处置"),
    }
    top = float(max([treatment[f"{k}_kg"] for k in labels] + [0]) or 1)  # exact kg → geometry in floats
    # Room for the labels and values at the phone's larger type (app.css: .bar-chart text).
    width, left, bar_h, gap = 640, 170, 22, 10
    bars = []
    for i, (key, label) in enumerate(labels.items()):
        value = float(treatment[f"{key}_kg"])
        bars.append(
            {
                "key": key,
                "label": label,
                "value": value,
                "y": 10 + i * (bar_h + gap),
                "h": bar_h,
                "w": round(value / top * (width - left - 170), 1),
            }
        )
    return {"width": width, "height": 20 + len(bars) * (bar_h + gap), "left": left, "bars": bars}


def line_chart(series: list[dict[str, Any]], gaps: dict[str, str] | None = None) -> dict[str, Any]:
    """The landfill share per month (0–100 %) as an SVG polyline; months without processing are
    gaps, marked on the axis (``gaps``: period → why, :func:`app.statistics.services.empty_months`).
    Every other month's label is ``minor``: a phone shows only the others (app.css), so that the
    labels never overlap at 375 px."""
    width, height, left, right, top, bottom = 640, 220, 44, 28, 12, 40
    top_pct = max([p["landfill_share"] * 100 for p in series if p["landfill_share"] is not None] + [10.0])
    top_pct = min(100.0, (int(top_pct / 10) + 1) * 10)
    step = (width - left - right) / max(len(series) - 1, 1)

    def y(pct: float) -> float:
        return round(top + (1 - pct / top_pct) * (height - top - bottom), 1)

    points = [
        {
            "x": round(left + i * step, 1),
            "y": y(p["landfill_share"] * 100),
            "period": p["period"],
            "pct": round(p["landfill_share"] * 100, 2),
        }
        for i, p in enumerate(series)
        if p["landfill_share"] is not None
    ]
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": width - right,
        "top": top,
        "bottom": height - bottom,
        "points": points,
        "polyline": " ".join(f"{p['x']},{p['y']}" for p in points),
        "x_labels": [
            {"x": round(left + i * step, 1), "label": p["period"][2:], "minor": (len(series) - 1 - i) % 2 == 1}
            for i, p in enumerate(series)
        ],
        "gaps": [
            {
                "x": round(left + i * step, 1),
                "y": y(0),
                "period": p["period"],
                "code": (gaps or {}).get(p["period"], ""),
            }
            for i, p in enumerate(series)
            if p["landfill_share"] is None
        ],
        "y_ticks": [{"v": v, "y": y(v)} for v in range(0, int(top_pct) + 1, max(int(top_pct) // 5, 1))],
    }
