"""Request and response schemas of the statistics API (every number carries its unit in its name)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from app.common.schemas import Id, LocalDateTime, PageArgs, Plausible, StrictSchema
from app.statistics.models import VALUE_ADDED_SCOPES

PERIOD_DOC = (
    "YYYY (year), YYYY-Qn (quarter) or YYYY-MM (month); Asia/Shanghai calendar periods. "
    "A future period is refused (422); the current one counts up to now."
)


class MetricsQuery(Schema):
    period = fields.Str(required=True, metadata={"description": PERIOD_DOC, "example": "2025-Q3"})
    base_year = fields.Int(
        validate=validate.Range(min=2000, max=2100),
        metadata={
            "description": "the year the landfill share is compared with (same kind of period); default: the "
            "STATISTICS_BASE_YEAR setting (2024)"
        },
    )


class ScopeOut(Schema):
    kind = fields.Str(metadata={"description": "park | county | city"})
    park_id = fields.Int(allow_none=True)
    county_code = fields.Str(allow_none=True)
    name = fields.Str()


class PeriodOut(Schema):
    label = fields.Str()
    kind = fields.Str(metadata={"description": "year | quarter | month"})
    start = fields.DateTime(metadata={"description": "inclusive, UTC (00:00 Asia/Shanghai)"})
    end = fields.DateTime(metadata={"description": "exclusive, UTC"})
    complete = fields.Bool(metadata={"description": "false for the current period (figures up to now)"})


class WasteCodeRow(Schema):
    waste_code = fields.Str()
    waste_name = fields.Str()
    generated_kg = fields.Float()
    into_storage_kg = fields.Float()
    returned_kg = fields.Float()
    in_storage_end_kg = fields.Float()
    shipped_kg = fields.Float()
    received_kg = fields.Float()
    accepted_kg = fields.Float()


class TreatmentOut(Schema):
    utilised_kg = fields.Float(metadata={"description": "R1–R9, R15, C2, C3"})
    incinerated_kg = fields.Float(metadata={"description": "D10"})
    cement_kiln_kg = fields.Float(metadata={"description": "C1"})
    landfilled_kg = fields.Float(metadata={"description": "D1"})
    other_kg = fields.Float(metadata={"description": "D9, D16"})
    processed_kg = fields.Float()


class MethodRow(Schema):
    method_code = fields.Str()
    treatment = fields.Str()
    quantity_kg = fields.Float()


class LandfillPoint(Schema):
    period = fields.Str()
    processed_kg = fields.Float()
    landfilled_kg = fields.Float()
    landfill_share = fields.Float(allow_none=True)
    change_share = fields.Float(
        allow_none=True, metadata={"description": "current share minus this period's (negative: towards zero landfill)"}
    )
    direction = fields.Str(allow_none=True, metadata={"description": "down | up | flat"})


class LandfillTrend(Schema):
    previous = fields.Nested(LandfillPoint, metadata={"description": "the previous period"})
    base = fields.Nested(LandfillPoint, metadata={"description": "the same period of the base year"})


class RegenerationOut(Schema):
    waste_carbon_processed_kg = fields.Float()
    waste_carbon_regenerated_kg = fields.Float()
    regeneration_rate_share = fields.Float(
        allow_none=True,
        metadata={
            "description": "waste carbon processed in the period consumed by regeneration batches ÷ waste carbon processed"
        },
    )
    fills_count = fields.Int()
    fills_kg = fields.Float()
    regenerated_fills_count = fields.Int()
    regenerated_fills_kg = fields.Float()
    regenerated_fills_count_share = fields.Float(allow_none=True)
    regenerated_fills_kg_share = fields.Float(allow_none=True)


class ManifestCounts(Schema):
    shipped_count = fields.Int()
    on_time_count = fields.Int()
    overdue_count = fields.Int()
    discrepant_count = fields.Int()
    rejected_count = fields.Int()
    in_transit_count = fields.Int()
    on_time_share = fields.Float(allow_none=True, metadata={"description": "on time ÷ (on time + overdue)"})


class BoxesOut(Schema):
    at = fields.DateTime(metadata={"description": "the moment the colours are counted at"})
    by_colour = fields.Dict(keys=fields.Str(), values=fields.Int())
    total_count = fields.Int()
    red_box_days = fields.Float()


class ReplacementsOut(Schema):
    replacement_count = fields.Int()
    on_time_replacement_count = fields.Int()
    late_replacement_count = fields.Int()
    on_time_replacement_share = fields.Float(allow_none=True)


class IntensityOut(Schema):
    value_added_10k_yuan = fields.Float(allow_none=True)
    value_added_source = fields.Str(allow_none=True)
    generated_t = fields.Float()
    generation_intensity_t_per_10k_yuan = fields.Float(allow_none=True)
    previous_year_period = fields.Str()
    previous_year_generated_t = fields.Float()
    previous_year_value_added_10k_yuan = fields.Float(allow_none=True)
    previous_year_intensity_t_per_10k_yuan = fields.Float(allow_none=True)
    yoy_growth_share = fields.Float(allow_none=True)


class GapOut(Schema):
    code = fields.Str()
    gap_kg = fields.Float()
    zh = fields.Str()
    en = fields.Str()
    numbers = fields.Dict(keys=fields.Str(), values=fields.Float())


class MassBalanceOut(Schema):
    filled_kg = fields.Float()
    replaced_carbon_kg = fields.Float()
    waste_carbon_weighed_kg = fields.Float()
    waste_carbon_generated_kg = fields.Float()
    generated_kg = fields.Float()
    shipped_kg = fields.Float()
    received_kg = fields.Float()
    gaps = fields.List(fields.Nested(GapOut))


class MetricsOut(Schema):
    scope = fields.Nested(ScopeOut)
    period = fields.Nested(PeriodOut)
    base_year = fields.Int()
    generated_kg = fields.Float()
    generated_t = fields.Float()
    into_storage_kg = fields.Float()
    returned_kg = fields.Float()
    in_storage_end_kg = fields.Float()
    shipped_kg = fields.Float()
    received_kg = fields.Float()
    accepted_kg = fields.Float()
    by_waste_code = fields.List(fields.Nested(WasteCodeRow))
    processed_kg = fields.Float()
    landfilled_kg = fields.Float()
    landfill_share = fields.Float(
        allow_none=True, metadata={"description": "D1 ÷ all utilised or disposed; null when nothing was processed"}
    )
    treatment = fields.Nested(TreatmentOut)
    by_method = fields.List(fields.Nested(MethodRow))
    landfill_trend = fields.Nested(LandfillTrend)
    regeneration = fields.Nested(RegenerationOut)
    manifests = fields.Nested(ManifestCounts)
    boxes = fields.Nested(BoxesOut)
    replacements = fields.Nested(ReplacementsOut)
    intensity = fields.Nested(IntensityOut)
    mass_balance = fields.Nested(MassBalanceOut)
    definitions = fields.Dict(keys=fields.Str(), values=fields.Str())


# ---------------------------------------------------------------- value added


class ValueAddedIn(StrictSchema):
    scope = fields.Str(required=True, validate=validate.OneOf(VALUE_ADDED_SCOPES))
    park_id = Id(metadata={"description": "required for scope park"})
    county_code = fields.Str(
        validate=validate.Regexp(r"^\d{6}$", error="a 6-digit GB/T 2260 code"),
        metadata={"description": "required for scope county"},
    )
    period = fields.Str(required=True, metadata={"description": PERIOD_DOC})
    value_added_10k_yuan = Plausible(
        "value_added_10k_yuan", required=True, metadata={"description": "industrial value added, 10⁴ yuan (万元)"}
    )
    source_department = fields.Str(
        required=True, validate=validate.Length(min=1, max=200), metadata={"description": "e.g. 台州市统计局"}
    )

    @validates("source_department")
    def _source(self, value, **kwargs):
        # Control characters (a NUL byte: refused by PostgreSQL, kept by SQLite) are no part of a name.
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise ValidationError("no control characters")
        if not value.strip():
            raise ValidationError("the department the figure comes from is required")

    @validates("period")
    def _period(self, value, **kwargs):
        from app.common.errors import InvalidInput
        from app.statistics.services import parse_period

        try:
            parse_period(value)
        except InvalidInput as exc:
            raise ValidationError(exc.errors["period"]) from exc

    @validates_schema
    def _scope_fields(self, data, **kwargs):
        scope = data.get("scope")
        if scope == "park" and data.get("park_id") is None:
            raise ValidationError("required for scope park", "park_id")
        if scope == "county" and not data.get("county_code"):
            raise ValidationError("required for scope county", "county_code")


class ValueAddedOut(Schema):
    id = fields.Int()
    scope = fields.Str()
    park_id = fields.Int(allow_none=True)
    county_code = fields.Str(allow_none=True)
    period = fields.Str()
    value_added_10k_yuan = fields.Float()
    source_department = fields.Str()
    imported_at = LocalDateTime()


class ValueAddedResult(Schema):
    created = fields.Int()
    updated = fields.Int()
    items = fields.List(fields.Nested(ValueAddedOut))


class ValueAddedQuery(PageArgs):
    scope = fields.Str(validate=validate.OneOf(VALUE_ADDED_SCOPES))
    period = fields.Str(metadata={"description": PERIOD_DOC})
