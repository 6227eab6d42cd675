"""The ledger's API schemas (records, stock, manifests and their steps, anomalies).

A little over ~400 lines because every manifest step's input sits beside the manifest it
changes, so one file shows what a manifest accepts at each step.
"""

from __future__ import annotations

import re

from flask import current_app
from marshmallow import Schema, fields, validate

from app.common.schemas import MAX_ID, Id, PageArgs, Plausible, PlausibleDateTime, StrictSchema
from app.ledger.models import MANIFEST_STATES, ORIGINS, PHYSICAL_FORMS, STAGE_ZH, STAGES, STATE_ZH
from app.ledger.services import FLAGS

WASTE_CODE = validate.Regexp(r"^\d{3}-\d{3}-\d{2}$", error="a waste code NNN-NNN-NN, e.g. 900-039-49")
# 机动车号牌: province character, letter, 5 (ordinary) or 6 (new-energy) letters/digits; 挂/学/警 suffixes.
PLATE_RE = re.compile(r"^[\u4e00-\u9fa5][A-Z][A-Z0-9]{4,6}[\u4e00-\u9fa5]?$")
PLATE = validate.Regexp(PLATE_RE, error="a Chinese vehicle plate, e.g. 浙J12345 or 浙JD12345")


class NonNegativeFloat(fields.Float):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_nan", False)
        kwargs.setdefault("validate", validate.Range(min=0))
        super().__init__(*args, **kwargs)


# ---------------------------------------------------------------- ledger


class LedgerQuery(PageArgs):
    enterprise = Id()
    from_ = fields.Date(data_key="from", metadata={"description": "first local date, inclusive"})
    to = fields.Date(metadata={"description": "last local date, inclusive"})
    stage = fields.Str(validate=validate.OneOf(STAGES))
    waste_code = fields.Str(validate=WASTE_CODE)


class LedgerIn(StrictSchema):
    enterprise_id = Id(metadata={"description": "defaults to the caller's organisation"})
    waste_code = fields.Str(required=True, validate=WASTE_CODE)
    waste_name = fields.Str(validate=validate.Length(max=300), metadata={"description": "defaults to the catalogue's"})
    quantity_kg = Plausible("waste_kg", required=True)
    generated_at = PlausibleDateTime(metadata={"description": "default now"})
    facility_code = fields.Str(
        load_default="", validate=validate.Length(max=40), metadata={"description": "产生设施编码"}
    )
    storage_facility_code = fields.Str(
        load_default="", validate=validate.Length(max=40), metadata={"description": "贮存设施编码"}
    )
    container_type = fields.Str(load_default="", validate=validate.Length(max=40))
    container_count = fields.Int(allow_none=True, validate=validate.Range(min=1, max=MAX_ID))
    handler = fields.Str(load_default="", validate=validate.Length(max=120))
    note = fields.Str(load_default="", validate=validate.Length(max=2000))
    confirm_unusual = fields.Bool(
        load_default=False,
        metadata={
            "description": "confirms a quantity plausibility.yaml calls unusual (else 422 confirmation_required)"
        },
    )


class LedgerRecordOut(Schema):
    id = fields.Int(metadata={"description": "for /ledger/{id}/revisions"})
    version = fields.Function(lambda r: r.version or 1, metadata={"description": "raised by each approved revision"})
    batch_code = fields.Str()
    confirmed_unusual = fields.Bool()
    stage = fields.Str()
    stage_zh = fields.Function(lambda r: STAGE_ZH[r.stage])
    enterprise_id = fields.Int()
    waste_code = fields.Str()
    waste_name = fields.Str()
    category = fields.Str()
    catalogue_edition = fields.Str()
    quantity_kg = fields.Float()
    quantity_t = fields.Function(lambda r: round(r.quantity_kg / 1000, 6))
    occurred_at = fields.DateTime()
    source_batch_code = fields.Str(allow_none=True)
    origin = fields.Str()
    box_id = fields.Int(allow_none=True)
    facility_code = fields.Str()
    container_type = fields.Str()
    container_count = fields.Int(allow_none=True)
    handler = fields.Str()
    destination = fields.Str()
    manifest_number = fields.Str(allow_none=True)
    receiver_name = fields.Str()
    licence_number = fields.Str()
    method_code = fields.Str(allow_none=True)
    on_site_kg = fields.Float(allow_none=True, metadata={"description": "generation batches: still on site"})
    available_kg = fields.Float(allow_none=True, metadata={"description": "generation batches: not yet on a manifest"})
    note = fields.Str()


class StockQuery(Schema):
    enterprise = Id()


class StockItemOut(Schema):
    waste_code = fields.Str()
    category = fields.Str()
    waste_name = fields.Str()
    on_hand_kg = fields.Float()
    on_hand_t = fields.Float()
    reserved_kg = fields.Float(metadata={"description": "on submitted manifests not yet picked up"})
    available_kg = fields.Float(metadata={"description": "what a new manifest may draw"})
    oldest_on_site_at = fields.DateTime(allow_none=True)
    days_on_site = fields.Float(allow_none=True)


class StockOut(Schema):
    enterprise_id = fields.Int()
    enterprise_name = fields.Str()
    items = fields.List(fields.Nested(StockItemOut))
    total_on_hand_kg = fields.Float()
    generated_last_365d_t = fields.Float()
    management_class = fields.Str(
        metadata={"description": "HJ 1259: key (≥100 t/a), simplified (≥10 t/a), registration"}
    )


class WasteCodeQuery(PageArgs):
    q = fields.Str(metadata={"description": "part of a code or description"})
    category = fields.Str(validate=validate.Regexp(r"^HW\d{2}$"))


class WasteCodeOut(Schema):
    code = fields.Str()
    category = fields.Str()
    category_name = fields.Str()
    industry = fields.Str()
    description = fields.Str()
    hazard = fields.Str()


# ---------------------------------------------------------------- manifests


class SignatureIn(StrictSchema):
    """The signer authenticates at the moment of signing (app.audit.signatures)."""

    password = fields.Str(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "the password of the token's user, checked again (sign-in throttle applies)"},
    )


class HandoverIn(StrictSchema):
    """The consignor's hand-over at pickup: the one-time code its staff issued
    (POST /manifests/{number}/handover-code), or a consignor staff member's username and password."""

    one_time_code = fields.Str(validate=validate.Regexp(r"^\d{6}$"), metadata={"example": "042917"})
    username = fields.Str(validate=validate.Length(min=1, max=80))
    password = fields.Str(validate=validate.Length(min=1, max=200))


SIGNATURE_DOC = {"description": "required: the signer's password (a device token cannot sign)"}


class SubmitIn(StrictSchema):
    signature = fields.Nested(SignatureIn, metadata=SIGNATURE_DOC)


class HandoverCodeOut(Schema):
    code = fields.Str(metadata={"description": "6 digits, for the carrier to type at pickup; shown once"})
    expires_at = fields.DateTime()


class ManifestLineIn(StrictSchema):
    waste_code = fields.Str(required=True, validate=WASTE_CODE)
    waste_name = fields.Str(validate=validate.Length(max=300), metadata={"description": "defaults to the catalogue's"})
    physical_form = fields.Str(load_default="solid", validate=validate.OneOf(tuple(PHYSICAL_FORMS)))
    hazard = fields.Str(metadata={"description": "e.g. T or T/In; defaults to the catalogue's"})
    packaging = fields.Str(load_default="", validate=validate.Length(max=60), metadata={"example": "吨袋"})
    quantity_kg = Plausible("waste_kg", required=True)
    source_batches = fields.List(
        fields.Str(validate=validate.Length(max=40)),
        load_default=list,
        metadata={"description": "generation batch codes to draw from; default oldest first"},
    )


class ManifestIn(StrictSchema):
    origin = fields.Str(
        load_default="electronic",
        validate=validate.OneOf(ORIGINS),
        metadata={
            "description": "electronic (numbered here), paper (entered afterwards), national (the national system's number)"
        },
    )
    number = fields.Str(metadata={"description": "paper or national manifests: the 14-digit number they carry"})
    consignor_id = Id(metadata={"description": "defaults to the caller's organisation"})
    carrier_id = Id(required=True)
    receiver_id = Id(required=True)
    lines = fields.List(fields.Nested(ManifestLineIn), required=True, validate=validate.Length(min=1, max=50))
    route = fields.Str(load_default="", validate=validate.Length(max=300))
    note = fields.Str(load_default="", validate=validate.Length(max=2000))
    transferred_at = PlausibleDateTime(
        metadata={"description": "paper/national manifests: when the carrier took the waste"}
    )
    vehicle_plate = fields.Str(validate=PLATE)
    driver_name = fields.Str(validate=validate.Length(min=1, max=60))
    driver_phone = fields.Str(validate=validate.Length(max=30))
    submit = fields.Bool(load_default=False, metadata={"description": "submit at once"})
    signature = fields.Nested(SignatureIn, metadata={"description": "required with submit: the signer's password"})
    confirm_unusual = fields.Bool(
        load_default=False,
        metadata={
            "description": "confirms line quantities plausibility.yaml calls unusual (else 422 confirmation_required)"
        },
    )


class ManifestQuery(PageArgs):
    status = fields.Str(validate=validate.OneOf(MANIFEST_STATES))
    flag = fields.Str(validate=validate.OneOf(FLAGS))
    enterprise = Id(metadata={"description": "the consignor"})
    party = fields.Str(
        validate=validate.OneOf(("consignor", "carrier", "receiver")),
        metadata={"description": "only manifests where the caller is this party"},
    )


class EmptyIn(StrictSchema):
    pass


class CancelIn(StrictSchema):
    reason = fields.Str(load_default="", validate=validate.Length(max=2000))


class PickupIn(StrictSchema):
    vehicle_plate = fields.Str(required=True, validate=PLATE)
    driver_name = fields.Str(required=True, validate=validate.Length(min=1, max=60))
    driver_phone = fields.Str(validate=validate.Length(max=30))
    picked_up_at = PlausibleDateTime(metadata={"description": "default now"})
    signature = fields.Nested(SignatureIn, metadata=SIGNATURE_DOC)
    handover = fields.Nested(HandoverIn, metadata={"description": "required: the consignor's hand-over"})


class ReceiveLineIn(StrictSchema):
    line_no = fields.Int(required=True)
    received_kg = Plausible("received_kg", required=True, metadata={"description": "weighed on arrival"})
    accepted_kg = Plausible(
        "received_kg", metadata={"description": "default: all received; less means accepted in part"}
    )
    refusal_reason = fields.Str(load_default="", validate=validate.Length(max=2000))


class ReceiveIn(StrictSchema):
    received_at = PlausibleDateTime(metadata={"description": "default now"})
    lines = fields.List(fields.Nested(ReceiveLineIn), required=True, validate=validate.Length(min=1))
    note = fields.Str(load_default="", validate=validate.Length(max=2000))
    signature = fields.Nested(SignatureIn, metadata=SIGNATURE_DOC)
    confirm_unusual = fields.Bool(
        load_default=False,
        metadata={
            "description": "confirms weighed quantities far above the shipped ones (else 422 confirmation_required)"
        },
    )


class RejectIn(StrictSchema):
    reason = fields.Str(required=True, validate=validate.Length(min=1, max=2000))
    rejected_at = PlausibleDateTime(metadata={"description": "default now"})
    signature = fields.Nested(SignatureIn, metadata=SIGNATURE_DOC)


class ProcessLineIn(StrictSchema):
    line_no = fields.Int(required=True)
    method_code = fields.Str(
        required=True, metadata={"description": "利用/处置方式: R1–R9, R15, C1–C3, D1, D9, D10, D16"}
    )


class ProcessIn(StrictSchema):
    processed_at = PlausibleDateTime(metadata={"description": "default now"})
    lines = fields.List(fields.Nested(ProcessLineIn), required=True, validate=validate.Length(min=1))
    signature = fields.Nested(SignatureIn, metadata=SIGNATURE_DOC)


class PartyOut(Schema):
    id = fields.Int()
    name = fields.Str()
    uscc = fields.Str(allow_none=True)
    county_code = fields.Str(allow_none=True)


class LineSourceOut(Schema):
    batch_code = fields.Function(lambda s: s.record.batch_code)
    quantity_kg = fields.Float()
    returned_kg = fields.Float()


class ManifestLineOut(Schema):
    line_no = fields.Int()
    confirmed_unusual = fields.Bool(metadata={"description": "an unusual quantity or receipt was confirmed"})
    waste_code = fields.Str()
    waste_name = fields.Str()
    category = fields.Str()
    physical_form = fields.Str()
    physical_form_zh = fields.Function(lambda line: PHYSICAL_FORMS.get(line.physical_form, line.physical_form))
    hazard = fields.Str()
    packaging = fields.Str()
    quantity_kg = fields.Float()
    requested_batches = fields.List(fields.Str())
    sources = fields.List(fields.Nested(LineSourceOut))
    received_kg = fields.Float(allow_none=True)
    accepted_kg = fields.Float(allow_none=True)
    refusal_reason = fields.Str()
    method_code = fields.Str(allow_none=True)
    consumed_kg = fields.Float(metadata={"description": "consumed by regeneration batches"})


class ManifestEventOut(Schema):
    action = fields.Str()
    from_status = fields.Str(allow_none=True)
    to_status = fields.Str()
    at = fields.DateTime()
    recorded_at = fields.DateTime()
    actor = fields.Str()
    organization_id = fields.Int(allow_none=True)
    organization_name = fields.Str()
    party = fields.Str()
    detail = fields.Raw()


class SignatureOut(Schema):
    step = fields.Str()
    party = fields.Str()
    signer_name = fields.Str()
    user_id = fields.Int(allow_none=True)
    organization_id = fields.Int(allow_none=True)
    organization_name = fields.Str()
    signed_at = fields.DateTime()
    method = fields.Str(metadata={"description": "password | one_time_code"})
    content_sha256 = fields.Str(metadata={"description": "SHA-256 of the manifest's canonical content at that step"})


class ManifestOut(Schema):
    number = fields.Str()
    version = fields.Function(lambda m: m.version or 1, metadata={"description": "raised by each approved revision"})
    origin = fields.Str()
    status = fields.Str()
    status_zh = fields.Function(lambda m: STATE_ZH[m.status])
    consignor = fields.Nested(PartyOut)
    carrier = fields.Nested(PartyOut)
    receiver = fields.Nested(PartyOut)
    receiver_licence = fields.Str()
    route = fields.Str()
    note = fields.Str()
    vehicle_plate = fields.Str()
    driver_name = fields.Str()
    driver_phone = fields.Str()
    lines = fields.List(fields.Nested(ManifestLineOut))
    total_kg = fields.Function(lambda m: round(sum(line.quantity_kg for line in m.lines), 3))
    created_at = fields.DateTime()
    submitted_at = fields.DateTime(allow_none=True)
    picked_up_at = fields.DateTime(allow_none=True)
    receipt_due_at = fields.DateTime(allow_none=True, metadata={"description": "receipt later than this is overdue"})
    received_at = fields.DateTime(allow_none=True)
    processed_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    rejected_at = fields.DateTime(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    reject_reason = fields.Str()
    acceptance = fields.Str(allow_none=True)
    discrepant = fields.Bool()
    overdue = fields.Method("_overdue")
    late_entry = fields.Bool()
    entry_working_days = fields.Int(allow_none=True)
    events = fields.List(fields.Nested(ManifestEventOut))
    signatures = fields.List(fields.Nested(SignatureOut))
    pdf_url = fields.Function(lambda m: f"/api/v1/manifests/{m.number}.pdf")
    verify_url = fields.Function(lambda m: f"{current_app.config['PUBLIC_BASE_URL']}/m/{m.number}")

    def _overdue(self, manifest):
        from app.common.timeutil import utcnow

        return manifest.is_overdue(utcnow())


class AnomalyQuery(Schema):
    enterprise = Id()
    from_ = fields.Date(data_key="from")
    to = fields.Date()


class AnomalyOut(Schema):
    enterprise_id = fields.Int()
    enterprise_name = fields.Str()
    county_code = fields.Str(allow_none=True)
    park_id = fields.Int(allow_none=True)
    code = fields.Str()
    zh = fields.Str()
    en = fields.Str()
    values = fields.Dict()
    thresholds = fields.Dict()


class AnomaliesOut(Schema):
    from_ = fields.DateTime(data_key="from", attribute="from")
    to = fields.DateTime()
    items = fields.List(fields.Nested(AnomalyOut))
