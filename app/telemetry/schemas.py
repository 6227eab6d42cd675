"""Telemetry schemas. The ingest body is decoded and checked by :mod:`app.telemetry.wire` and
the service (a marshmallow pass per reading would cost more than storing it); ``ReadingIn``
documents that contract in OpenAPI."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.common.schemas import LocalDateTime, PageArgs
from app.telemetry.models import MEASURES

_RANGE = {
    name: f"{lo:g}–{hi:g} {unit}" + ("" if required else "; optional")
    for name, (unit, lo, hi, required) in MEASURES.items()
}


class ReadingIn(Schema):
    box_code = fields.Str(required=True, metadata={"example": "23-4K7QXB"})
    ts = fields.Str(
        required=True,
        metadata={
            "description": "ISO 8601 (no offset means Asia/Shanghai) or Unix epoch seconds; at most 5 min in the future",
            "example": "2026-03-01T10:15:00+08:00",
        },
    )
    inlet_mg_m3 = fields.Float(required=True, metadata={"description": "inlet VOCs, " + _RANGE["inlet_mg_m3"]})
    outlet_mg_m3 = fields.Float(required=True, metadata={"description": "outlet VOCs, " + _RANGE["outlet_mg_m3"]})
    airflow_m3_h = fields.Float(required=True, metadata={"description": "airflow, " + _RANGE["airflow_m3_h"]})
    pressure_drop_pa = fields.Float(
        allow_none=True, metadata={"description": "pressure drop, " + _RANGE["pressure_drop_pa"]}
    )
    inlet_temp_c = fields.Float(
        allow_none=True, metadata={"description": "inlet gas temperature, " + _RANGE["inlet_temp_c"]}
    )
    bed_temp_c = fields.Float(
        allow_none=True, metadata={"description": "carbon bed temperature, " + _RANGE["bed_temp_c"]}
    )
    rh_pct = fields.Float(allow_none=True, metadata={"description": "relative humidity, " + _RANGE["rh_pct"]})
    running = fields.Bool(load_default=True, metadata={"description": "fan running; a stopped fan adsorbs nothing"})


class ReadingBatchIn(Schema):
    readings = fields.List(
        fields.Nested(ReadingIn),
        required=True,
        metadata={"description": "at most 5,000 readings (more: 413); a bare JSON list is accepted too"},
    )


class RejectedItemOut(Schema):
    index = fields.Int(metadata={"description": "position of the item in the batch, from 0"})
    box_code = fields.Raw(allow_none=True)
    errors = fields.Dict(keys=fields.Str(), values=fields.List(fields.Str()))


class IngestResultOut(Schema):
    accepted = fields.Int(metadata={"description": "readings stored by this request"})
    duplicates = fields.Int(metadata={"description": "readings already stored (same box and ts): nothing changed"})
    rejected = fields.Int()
    rejected_items = fields.List(fields.Nested(RejectedItemOut))


class ReadingsQuery(Schema):
    start = LocalDateTime(
        data_key="from", metadata={"description": "default: `to` − 24 h (raw), − 7 d (hour), − 90 d (day)"}
    )
    end = LocalDateTime(data_key="to", metadata={"description": "exclusive; default now"})
    resolution = fields.Str(load_default="raw", validate=validate.OneOf(("raw", "hour", "day")))


class ReadingOut(Schema):
    ts = fields.DateTime()
    inlet_mg_m3 = fields.Float()
    outlet_mg_m3 = fields.Float()
    airflow_m3_h = fields.Float()
    pressure_drop_pa = fields.Float(allow_none=True)
    inlet_temp_c = fields.Float(allow_none=True)
    bed_temp_c = fields.Float(allow_none=True)
    rh_pct = fields.Float(allow_none=True)
    running = fields.Bool()


class StatsOut(Schema):
    avg = fields.Float(allow_none=True)
    min = fields.Float(allow_none=True)
    max = fields.Float(allow_none=True)


class RollupOut(Schema):
    start = fields.DateTime(metadata={"description": "start of the hour or of the Asia/Shanghai day (UTC)"})
    date = fields.Str(metadata={"description": "the local date (day resolution)"})
    count = fields.Int()
    running_share = fields.Float(allow_none=True)
    adsorbed_kg = fields.Float(
        metadata={"description": "integrated adsorption of the intervals starting in this period"}
    )
    removal_efficiency = fields.Float(allow_none=True, metadata={"description": "1 − mean outlet ÷ mean inlet"})
    inlet_mg_m3 = fields.Nested(StatsOut)
    outlet_mg_m3 = fields.Nested(StatsOut)
    airflow_m3_h = fields.Nested(StatsOut)
    pressure_drop_pa = fields.Nested(StatsOut)
    bed_temp_c = fields.Nested(StatsOut)
    inlet_temp_c = fields.Nested(StatsOut)


class ReadingsOut(Schema):
    code = fields.Str()
    resolution = fields.Str()
    start = fields.DateTime(data_key="from")
    end = fields.DateTime(data_key="to")
    truncated = fields.Bool(
        metadata={"description": "raw only: more readings than returned; continue from the last ts"}
    )
    readings = fields.List(fields.Nested(ReadingOut))
    rollups = fields.List(fields.Nested(RollupOut))


class DeadLetterOut(Schema):
    id = fields.Int()
    received_at = fields.DateTime()
    source = fields.Str()
    topic = fields.Str()
    reason = fields.Str()
    detail = fields.Str()
    errors = fields.Raw()
    payload = fields.Str(metadata={"description": "as received (first 64 KiB), device tokens redacted"})
    payload_bytes = fields.Int()


class DeadLetterQuery(PageArgs):
    reason = fields.Str()
