"""The manifest registry's API schemas (:mod:`app.ledger.registry_views`)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate, validates_schema
from marshmallow.exceptions import ValidationError

from app.common.pagination import MAX_PER_PAGE
from app.common.schemas import LocalDateTime, PlausibleDate
from app.ledger.models import MANIFEST_STATES

WASTE_CODE = validate.Regexp(r"^\d{3}-\d{3}-\d{2}$", error="a waste code NNN-NNN-NN, e.g. 900-039-49")


class RegistryFilterArgs(Schema):
    status = fields.Str(validate=validate.OneOf([s for s in MANIFEST_STATES if s != "draft"]))
    waste_code = fields.Str(validate=WASTE_CODE)
    from_ = PlausibleDate(data_key="from", metadata={"description": "first local date of creation, inclusive"})
    to = PlausibleDate(metadata={"description": "last local date of creation, inclusive"})

    @validates_schema
    def _ordered(self, data, **kwargs):
        if data.get("from_") and data.get("to") and data["from_"] > data["to"]:
            raise ValidationError("must not be before `from`", "to")


class RegistryExportArgs(RegistryFilterArgs):
    lang = fields.Str(
        load_default="zh", validate=validate.OneOf(("zh", "en")), metadata={"description": "the headers' language"}
    )


class RegistryQuery(RegistryFilterArgs):
    per_page = fields.Int(load_default=100, validate=validate.Range(min=1, max=MAX_PER_PAGE))
    cursor = fields.Str(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "keyset: the `next_cursor` of the previous page"},
    )


def _kg():
    return fields.Decimal(as_string=True, allow_none=True, metadata={"description": "kg, exact (text)"})


class RegistryRowOut(Schema):
    line_id = fields.Int()
    number = fields.Str()
    origin = fields.Str()
    status = fields.Str()
    created_at = LocalDateTime()
    submitted_at = LocalDateTime(allow_none=True)
    picked_up_at = LocalDateTime(allow_none=True)
    received_at = LocalDateTime(allow_none=True)
    processed_at = LocalDateTime(allow_none=True)
    consignor_name = fields.Str()
    consignor_uscc = fields.Str(allow_none=True)
    carrier_name = fields.Str()
    carrier_uscc = fields.Str(allow_none=True)
    vehicle_plate = fields.Str()
    receiver_name = fields.Str()
    receiver_uscc = fields.Str(allow_none=True)
    receiver_licence = fields.Str()
    line_no = fields.Int()
    waste_code = fields.Str()
    waste_name = fields.Str()
    category = fields.Str()
    hazard = fields.Str()
    physical_form = fields.Str()
    quantity_kg = _kg()
    received_kg = _kg()
    accepted_kg = _kg()
    method_code = fields.Str(allow_none=True, metadata={"description": "利用/处置方式 (treatment)"})
    acceptance = fields.Str(allow_none=True, metadata={"description": "full | partial | refused"})


class RegistryPageOut(Schema):
    items = fields.List(fields.Nested(RegistryRowOut))
    per_page = fields.Int()
    next_cursor = fields.Str(
        allow_none=True, metadata={"description": "pass as `cursor` for the next page; null on the last page"}
    )
    next = fields.Str(allow_none=True, metadata={"description": "the next page's URL (also the `Link` header)"})
