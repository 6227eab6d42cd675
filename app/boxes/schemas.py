from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.boxes.models import BOX_STATUSES, CARBON_TYPES, COLOURS
from app.common.schemas import Id, PageArgs, Plausible, PlausibleDateTime, StrictSchema


class BoxIn(StrictSchema):
    enterprise_id = Id(metadata={"description": "defaults to the caller's organisation"})
    service_org_id = Id(
        allow_none=True, metadata={"description": "the carbon service (换炭服务) that replaces the carbon"}
    )
    code = fields.Str(metadata={"description": "an existing printed code; generated when absent"})
    name = fields.Str(load_default="", validate=validate.Length(max=120))
    facility_code = fields.Str(
        required=True, validate=validate.Regexp(r"^[A-Za-z0-9-]{1,20}$"), metadata={"example": "TA001"}
    )
    outlet_code = fields.Str(
        required=True, validate=validate.Regexp(r"^[A-Za-z0-9-]{1,20}$"), metadata={"example": "DA001"}
    )
    carbon_type = fields.Str(required=True, validate=validate.OneOf(CARBON_TYPES))
    design_fill_kg = Plausible("carbon_kg", required=True, metadata={"description": "M, kg"})
    design_airflow_m3_h = Plausible("airflow_m3_h", required=True, metadata={"description": "Q, m³/h"})
    design_removed_mg_m3 = Plausible(
        "voc_mg_m3", required=True, metadata={"description": "C, VOCs concentration removed, mg/m³"}
    )
    hours_per_day = Plausible("hours_per_day", required=True, metadata={"description": "t, h/d"})
    adsorption_capacity = fields.Float(
        load_default=0.10,
        validate=validate.Range(min=0, min_inclusive=False, max=0.5),
        metadata={"description": "S, dynamic adsorption capacity as a mass fraction"},
    )
    emission_limit_mg_m3 = Plausible("voc_mg_m3", required=True)
    pressure_drop_min_pa = Plausible("pressure_drop_pa", allow_none=True)
    pressure_drop_max_pa = Plausible("pressure_drop_pa", allow_none=True)
    has_sensors = fields.Bool(load_default=False)
    waste_code = fields.Str(load_default="900-039-49", validate=validate.Regexp(r"^\d{3}-\d{3}-\d{2}$"))


class BoxQuery(PageArgs):
    colour = fields.Str(validate=validate.OneOf(COLOURS))
    county = fields.Str(validate=validate.Length(equal=6))
    park = Id()
    enterprise = Id()
    status = fields.Str(validate=validate.OneOf(BOX_STATUSES))


class BoxStatusIn(StrictSchema):
    status = fields.Str(required=True, validate=validate.OneOf(BOX_STATUSES))


class ReasonOut(Schema):
    code = fields.Str()
    level = fields.Str()
    zh = fields.Str()
    en = fields.Str()
    observed = fields.Raw(allow_none=True)
    threshold = fields.Raw(allow_none=True)


class LoadWindowOut(Schema):
    hours = fields.Float(
        metadata={
            "description": "the window's length: from the later of the fill and 24 clock hours back to the newest reading"
        }
    )
    covered_hours = fields.Float(
        metadata={"description": "the readings' held time in it (gaps over the cap do not count)"}
    )
    min_covered_hours = fields.Float(metadata={"description": "below this, too little data: the design load is used"})
    adsorbed_kg = fields.Float(metadata={"description": "what the integral counts in the window"})


class FillIn(StrictSchema):
    filled_at = PlausibleDateTime(metadata={"description": "ISO 8601; no offset means Asia/Shanghai; default now"})
    kind = fields.Str(validate=validate.OneOf(("initial", "replacement")))
    mass_kg = Plausible("carbon_kg", required=True)
    carbon_type = fields.Str(validate=validate.OneOf(CARBON_TYPES))
    supplier_org_id = Id(allow_none=True)
    supplier_name = fields.Str(load_default="", validate=validate.Length(max=200))
    batch_no = fields.Str(load_default="", validate=validate.Length(max=60))
    iodine_mg_g = Plausible("iodine_mg_g", required=True, metadata={"description": "碘值 of the new carbon, mg/g"})
    regeneration_batch_id = Id(allow_none=True, metadata={"description": "the regeneration batch the carbon came from"})
    removed_waste_kg = Plausible(
        "waste_kg",
        allow_none=True,
        metadata={"description": "weighed waste carbon removed, kg (required for a replacement)"},
    )
    note = fields.Str(load_default="", validate=validate.Length(max=2000))
    confirm_unusual = fields.Bool(
        load_default=False,
        metadata={
            "description": "confirms values plausibility.yaml calls unusual (else 422 code confirmation_required)"
        },
    )


class FillOut(Schema):
    id = fields.Int()
    kind = fields.Str()
    filled_at = fields.DateTime()
    mass_kg = fields.Float()
    carbon_type = fields.Str()
    supplier_org_id = Id(allow_none=True)
    supplier_name = fields.Str()
    batch_no = fields.Str()
    iodine_mg_g = fields.Float()
    regeneration_batch_id = Id(allow_none=True)
    removed_waste_kg = fields.Float(allow_none=True)
    confirmed_unusual = fields.Bool(
        metadata={"description": "an unusual value (plausibility.yaml) was confirmed by the person recording it"}
    )
    replaced_overdue = fields.Bool(
        allow_none=True,
        metadata={
            "description": "a replacement: the carbon it replaced was already saturated or past its predicted "
            "replacement date (a late replacement); null for a first fill"
        },
    )
    performed_by_org_id = Id(allow_none=True)
    note = fields.Str()
    ledger_batch_code = fields.Method("_ledger_code")

    def _ledger_code(self, fill):
        return getattr(fill, "ledger_batch_code", None)


class BoxOut(Schema):
    id = fields.Int()
    code = fields.Str()
    name = fields.Str()
    enterprise_id = Id()
    enterprise_name = fields.Str()
    service_org_id = Id(allow_none=True)
    county_code = fields.Str(allow_none=True)
    park_id = Id(allow_none=True)
    facility_code = fields.Str()
    outlet_code = fields.Str()
    carbon_type = fields.Str()
    design_fill_kg = fields.Float()
    design_airflow_m3_h = fields.Float()
    design_removed_mg_m3 = fields.Float()
    hours_per_day = fields.Float()
    adsorption_capacity = fields.Float()
    emission_limit_mg_m3 = fields.Float()
    pressure_drop_min_pa = fields.Float(allow_none=True)
    pressure_drop_max_pa = fields.Float(allow_none=True)
    has_sensors = fields.Bool()
    waste_code = fields.Str()
    status = fields.Str()
    label_version = fields.Int()
    colour = fields.Str()
    colour_zh = fields.Str()
    colour_since = fields.DateTime(allow_none=True)
    reasons = fields.List(fields.Nested(ReasonOut))
    rules_version = fields.Str()
    saturation = fields.Float(allow_none=True, metadata={"description": "adsorbed ÷ capacity (1.0 = saturated)"})
    saturation_basis = fields.Str(
        allow_none=True, metadata={"description": "sensor (integrated readings) or design (formula T)"}
    )
    adsorbed_kg = fields.Float(allow_none=True)
    capacity_kg = fields.Float(allow_none=True)
    design_daily_load_kg = fields.Float()
    design_cycle_days = fields.Float(allow_none=True, metadata={"description": "T = M × S ÷ (C × 10⁻⁶ × Q × t)"})
    predicted_replacement_at = fields.DateTime(allow_none=True)
    load_basis = fields.Str(
        allow_none=True,
        metadata={
            "description": "the load the prediction uses: measured (adsorbed kg of the last 24 h of readings "
            "÷ the window's length) or design (no sensors, or fewer than the colour rules' "
            "measured_load.min_covered_hours of readings in the window)"
        },
    )
    load_kg_per_day = fields.Float(allow_none=True, metadata={"description": "that load, kg/d"})
    load_window = fields.Nested(
        LoadWindowOut,
        allow_none=True,
        metadata={"description": "a box with sensors: the 24-hour window the measured load was judged on"},
    )
    current_fill = fields.Nested(FillOut, allow_none=True)
    latest_reading = fields.Raw(allow_none=True)
    qr_png_url = fields.Str()
    scan_url = fields.Str()


class ColourChangeOut(Schema):
    colour = fields.Str()
    previous_colour = fields.Str(allow_none=True)
    changed_at = fields.DateTime()
    recorded_at = fields.DateTime()
    rules_version = fields.Str()
    reasons = fields.Raw()


class BoxEventOut(Schema):
    kind = fields.Str()
    at = fields.DateTime()
    actor = fields.Str()
    detail = fields.Raw()


class HistoryOut(Schema):
    code = fields.Str()
    colour_changes = fields.List(fields.Nested(ColourChangeOut))
    fills = fields.List(fields.Nested(FillOut))
    events = fields.List(fields.Nested(BoxEventOut))
    days_by_colour = fields.Dict(keys=fields.Str(), values=fields.Float())


class LabelsQuery(Schema):
    codes = fields.Str(metadata={"description": "comma-separated box codes"})
    frame = fields.Str(
        load_default="neutral",
        validate=validate.OneOf(("neutral", "current")),
        metadata={"description": "neutral (default: the label outlives colours) or current colour"},
    )
    enterprise = Id()
    colour = fields.Str(validate=validate.OneOf(COLOURS))
