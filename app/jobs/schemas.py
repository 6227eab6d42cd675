"""Request and response schemas of the jobs API, and the params of the shipped kinds."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from app.common.schemas import StrictSchema

EXPORT_FORMATS = ("csv", "xlsx")


class JobIn(StrictSchema):
    kind = fields.Str(required=True, validate=validate.Length(min=1, max=40), metadata={"example": "export"})
    params = fields.Dict(
        keys=fields.Str(),
        load_default=dict,
        metadata={"description": "the kind's parameters (validated per kind)"},
    )


class JobOut(Schema):
    id = fields.Int()
    kind = fields.Str()
    params = fields.Dict()
    state = fields.Str(metadata={"description": "queued | running | succeeded | failed"})
    progress_done = fields.Int()
    progress_total = fields.Int(allow_none=True)
    progress_share = fields.Float(allow_none=True, metadata={"description": "0–1, null while the total is unknown"})
    attempts = fields.Int()
    max_attempts = fields.Int()
    error = fields.Str(allow_none=True)
    summary = fields.Dict(allow_none=True)
    result_name = fields.Str(allow_none=True)
    result_url = fields.Method("_result_url", allow_none=True)
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)

    def _result_url(self, job):
        if job.state != "succeeded" or not job.result_path:
            return None
        return f"/api/v1/jobs/{job.id}/result"


class JobListQuery(Schema):
    before = fields.Int(
        validate=validate.Range(min=1, max=2**31 - 1), metadata={"description": "ids below this (next page)"}
    )
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=200))


class JobListOut(Schema):
    items = fields.List(fields.Nested(JobOut))
    next_before = fields.Int(allow_none=True, metadata={"description": "pass as `before` for the next page"})


# ---------------------------------------------------------------- params of the shipped kinds


class ColourSweepParams(StrictSchema):
    chunk = fields.Int(load_default=500, validate=validate.Range(min=1, max=5000))


class RollupRebuildParams(StrictSchema):
    box_chunk = fields.Int(load_default=2000, validate=validate.Range(min=1, max=20000))


class ExportParams(Schema):
    """The ``export`` kind's own params; the rest belong to the export named (its schema)."""

    class Meta:
        unknown = INCLUDE

    export = fields.Str(required=True, validate=validate.Length(min=1, max=60))
    format = fields.Str(load_default="csv", validate=validate.OneOf(EXPORT_FORMATS))


class StatisticsExportParams(StrictSchema):
    scope = fields.Str(required=True, validate=validate.OneOf(("city", "county", "park")))
    park_id = fields.Int(validate=validate.Range(min=1, max=2**31 - 1))
    county_code = fields.Str(validate=validate.Regexp(r"^\d{6}$"))
    period = fields.Str(required=True, validate=validate.Length(min=4, max=7))
    base_year = fields.Int(validate=validate.Range(min=2000, max=2100))

    @validates_schema
    def _scope_named(self, data, **_kwargs):
        if data.get("scope") == "park" and data.get("park_id") is None:
            raise ValidationError("required for a park's statistics", "park_id")
        if data.get("scope") == "county" and not data.get("county_code"):
            raise ValidationError("required for a county's statistics", "county_code")


class ColourBoxesExportParams(StrictSchema):
    """The filters of the regulator's red / yellow box list (``/oversight/boxes/<colour>``)."""

    colour = fields.Str(required=True, validate=validate.OneOf(("red", "yellow")))
    county = fields.Str(validate=validate.Regexp(r"^\d{6}$"))
    park = fields.Int(validate=validate.Range(min=1, max=2**31 - 1))
    enterprise = fields.Int(validate=validate.Range(min=1, max=2**31 - 1))
    q = fields.Str(validate=validate.Length(max=60))
    sort = fields.Str(validate=validate.OneOf(("days", "enterprise", "saturation")))
