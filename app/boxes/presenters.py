"""Turning a box and its evaluation into what the API and the pages show."""

from __future__ import annotations

from typing import Any

from flask import current_app, url_for

from app.boxes.models import COLOUR_ZH
from app.boxes.services import BoxView


def box_payload(view: BoxView) -> dict[str, Any]:
    box, ev = view.box, view.evaluation
    facts = ev.facts
    load = box.design_daily_load_kg
    cycle = box.capacity_kg(view.fill.mass_kg if view.fill else box.design_fill_kg) / load if load > 0 else None
    base = current_app.config["PUBLIC_BASE_URL"]
    return {
        **{
            c: getattr(box, c)
            for c in (
                "id",
                "code",
                "name",
                "enterprise_id",
                "service_org_id",
                "facility_code",
                "outlet_code",
                "carbon_type",
                "design_fill_kg",
                "design_airflow_m3_h",
                "design_removed_mg_m3",
                "hours_per_day",
                "adsorption_capacity",
                "emission_limit_mg_m3",
                "pressure_drop_min_pa",
                "pressure_drop_max_pa",
                "has_sensors",
                "waste_code",
                "status",
                "label_version",
                "colour",
                "colour_since",
            )
        },
        "enterprise_name": box.enterprise.name,
        "county_code": box.enterprise.county_code,
        "park_id": box.enterprise.park_id,
        "colour_zh": COLOUR_ZH[box.colour],
        "reasons": ev.reasons,
        "rules_version": facts["rules"].version if "rules" in facts else "",
        "saturation": ev.saturation,
        "saturation_basis": ev.saturation_basis,
        "adsorbed_kg": facts.get("adsorbed_kg"),
        "capacity_kg": facts.get("capacity_kg"),
        "design_daily_load_kg": load,
        "design_cycle_days": cycle,
        "predicted_replacement_at": ev.predicted_replacement_at,
        "load_basis": facts.get("load_basis"),
        "load_kg_per_day": facts.get("load_kg_per_day"),
        "load_window": facts.get("load_window"),
        "current_fill": view.fill,
        "latest_reading": facts.get("latest_reading"),
        "qr_png_url": url_for("labels.qr_png_view", code=box.code),
        "scan_url": f"{base}/c/{box.code}",
    }
