"""Request and response shapes of the synergy index API (the OpenAPI documentation of /api/v1/index)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.common.schemas import PageArgs, Plausible

COUNTY = validate.Regexp(r"^\d{6}$", error="a six-digit county code, e.g. 331023")


class ScoresQuery(Schema):
    # The period is read by the services (app.common.periods), after the caller is known.
    period = fields.Str(required=True, metadata={"description": "2025 or 2025-Q2"})
    base_year = fields.Int(
        validate=validate.Range(min=2000, max=2100),
        metadata={"description": "default: the definition's target.base_year, else the year before"},
    )


class ValuesQuery(PageArgs):
    period = fields.Str(metadata={"description": "2025 or 2025-Q2"})
    county = fields.Str(validate=COUNTY)


class ValueIn(Schema):
    """One row of an import (JSON). CSV/XLSX headers may be English or Chinese:
    county_code/县市区代码, period/期间, indicator/指标序号, value/数值, source_department/数据来源, unit/单位."""

    county_code = fields.Str(required=True, metadata={"example": "331023"})
    period = fields.Str(required=True, metadata={"example": "2025-Q2"})
    indicator = fields.Int(required=True, metadata={"example": 3})
    value = Plausible("index_value", required=True, metadata={"example": 92.5})
    source_department = fields.Str(required=True, metadata={"example": "市生态环境局"})
    unit = fields.Str(metadata={"description": "optional; must match the indicator's unit when it has one"})


class ImportResult(Schema):
    rows = fields.Int()
    inserted = fields.Int()
    updated = fields.Int(metadata={"description": "existing values replaced (the old value is kept in the audit)"})
    unchanged = fields.Int()
    ignored_columns = fields.List(fields.Str())


class ValueOut(Schema):
    county_code = fields.Str()
    period = fields.Str()
    indicator = fields.Int()
    value = fields.Float()
    unit = fields.Str(allow_none=True)
    source_department = fields.Str()
    imported_at = fields.DateTime()
    imported_by_user_id = fields.Int(allow_none=True)


class IndicatorDef(Schema):
    number = fields.Int()
    name = fields.Str()
    name_en = fields.Str(allow_none=True, metadata={"description": "an English name (ours; the Chinese name rules)"})
    weight = fields.Float()
    data_source = fields.Str()
    direction = fields.Str(metadata={"description": "higher or lower is better"})
    scoring = fields.Str()
    quarterly = fields.Str(metadata={"description": "same_period, previous_year or cumulative_year (备注)"})
    unit = fields.Str(allow_none=True)
    source = fields.Str(metadata={"description": "import, or computed (indicator 25)"})
    computation = fields.Str(allow_none=True)
    note = fields.Str(allow_none=True)


class SecondLevelDef(Schema):
    number = fields.Int()
    name = fields.Str()
    name_en = fields.Str(allow_none=True)
    weight = fields.Float()
    indicators = fields.List(fields.Nested(IndicatorDef))


class FirstLevelDef(Schema):
    id = fields.Str()
    name = fields.Str()
    name_en = fields.Str(allow_none=True)
    weight = fields.Float()
    content = fields.Str(metadata={"description": "评价内容"})
    second_level = fields.List(fields.Nested(SecondLevelDef))


class DefinitionOut(Schema):
    version = fields.Str()
    source = fields.Str()
    total_weight = fields.Float()
    max_score = fields.Float(metadata={"description": "sum of the third-level weights as printed"})
    counts = fields.Dict(keys=fields.Str(), values=fields.Int())
    first_level = fields.List(fields.Nested(FirstLevelDef))
    quarterly_rules = fields.Dict(keys=fields.Str(), values=fields.Str())
    remarks = fields.Str()
    target = fields.Dict()
    counties = fields.List(fields.Dict())
    problems = fields.List(fields.Str(), metadata={"description": "weight mismatches found when loading"})


class IndicatorScore(Schema):
    number = fields.Int()
    name = fields.Str()
    name_en = fields.Str(allow_none=True)
    unit = fields.Str(allow_none=True, metadata={"description": "the unit of value"})
    weight = fields.Float()
    direction = fields.Str()
    value = fields.Float(allow_none=True)
    score = fields.Float()
    missing = fields.Bool()
    basis = fields.Str(metadata={"description": "the period(s) whose data were used"})
    note = fields.Str(allow_none=True)


class LevelScore(Schema):
    id = fields.Str()
    number = fields.Int()
    name = fields.Str()
    name_en = fields.Str(allow_none=True)
    weight = fields.Float()
    score = fields.Float()


class CountyScore(Schema):
    county_code = fields.Str()
    county_name = fields.Str()
    county_name_en = fields.Str()
    total = fields.Float()
    rank = fields.Int(metadata={"description": "equal totals share a rank"})
    missing = fields.List(fields.Int(), metadata={"description": "indicators without data (scored 0)"})
    has_data = fields.Bool()
    indicators = fields.List(fields.Nested(IndicatorScore))
    second_level = fields.List(fields.Nested(LevelScore))
    first_level = fields.List(fields.Nested(LevelScore))
    base_total = fields.Float(allow_none=True)
    base_missing = fields.List(fields.Int(), allow_none=True)
    change_vs_base_share = fields.Float(allow_none=True, metadata={"description": "(total − base) ÷ base"})
    meets_target = fields.Bool(allow_none=True)


class ScoresOut(Schema):
    period = fields.Str()
    base_period = fields.Str()
    base_year = fields.Int()
    target_change_share = fields.Float()
    definition_version = fields.Str()
    max_score = fields.Float()
    scoring = fields.Str()
    problems = fields.List(fields.Str())
    counties = fields.List(fields.Nested(CountyScore))
