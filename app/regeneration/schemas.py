from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.common.schemas import Id, PageArgs, Plausible, PlausibleDate, StrictSchema


class InputIn(StrictSchema):
    manifest_number = fields.Str(required=True, validate=validate.Regexp(r"^\d{14}$"))
    line_no = fields.Int(required=True)
    quantity_kg = Plausible("waste_kg", required=True)


class BatchIn(StrictSchema):
    batch_no = fields.Str(required=True, validate=validate.Length(min=1, max=60))
    produced_on = PlausibleDate(metadata={"description": "local date; default today"})
    method_code = fields.Str(
        load_default="R7", metadata={"description": "利用方式, usually R7 (pollution-abatement agents) or R15"}
    )
    inputs = fields.List(fields.Nested(InputIn), required=True, validate=validate.Length(min=1))
    output_kg = Plausible("waste_kg", required=True, metadata={"description": "regenerated carbon produced, kg"})
    iodine_mg_g = Plausible("iodine_mg_g", required=True, metadata={"description": "碘值 of the regenerated carbon"})
    note = fields.Str(load_default="", validate=validate.Length(max=2000))


class BatchQuery(PageArgs):
    plant = Id()
    available = fields.Bool(load_default=False, metadata={"description": "only batches with carbon left"})


class InputOut(Schema):
    manifest_number = fields.Function(lambda i: i.line.manifest.number)
    line_no = fields.Function(lambda i: i.line.line_no)
    waste_code = fields.Function(lambda i: i.line.waste_code)
    consignor_id = fields.Function(lambda i: i.line.manifest.consignor_id)
    quantity_kg = fields.Float()


class BatchOut(Schema):
    id = fields.Int()
    batch_no = fields.Str()
    plant_id = fields.Int()
    plant_name = fields.Function(lambda b: b.plant.name)
    produced_on = fields.Date()
    method_code = fields.Str()
    inputs = fields.List(fields.Nested(InputOut))
    input_kg = fields.Float()
    output_kg = fields.Float()
    yield_ratio = fields.Float(allow_none=True)
    iodine_mg_g = fields.Float()
    used_kg = fields.Float(metadata={"description": "filled into boxes"})
    remaining_kg = fields.Float()
    note = fields.Str()
    created_at = fields.DateTime()
