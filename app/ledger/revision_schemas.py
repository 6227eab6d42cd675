"""The API's input and output of revisions (更正申请) and versions."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.common.schemas import MAX_ID, Id, PageArgs, Plausible, StrictSchema
from app.ledger.models import PHYSICAL_FORMS
from app.ledger.revision_models import RevisionState, RevisionTarget
from app.ledger.schemas import PLATE

REASON = fields.Str(
    required=True,
    validate=validate.Length(min=1, max=2000),
    metadata={"description": "why the record is wrong (required)"},
)


class LineChangeIn(StrictSchema):
    line_no = fields.Int(required=True, validate=validate.Range(min=1, max=1000))
    quantity_kg = Plausible("waste_kg", metadata={"description": "the corrected shipped quantity"})
    received_kg = Plausible("received_kg", metadata={"description": "received manifests: the corrected weighing"})
    accepted_kg = Plausible("received_kg", metadata={"description": "received manifests: the corrected acceptance"})
    refusal_reason = fields.Str(validate=validate.Length(max=2000))
    packaging = fields.Str(validate=validate.Length(max=60))
    physical_form = fields.Str(validate=validate.OneOf(tuple(PHYSICAL_FORMS)))


class ManifestChangesIn(StrictSchema):
    carrier_id = Id()
    receiver_id = Id()
    route = fields.Str(validate=validate.Length(max=300))
    note = fields.Str(validate=validate.Length(max=2000))
    vehicle_plate = fields.Str(validate=PLATE)
    driver_name = fields.Str(validate=validate.Length(min=1, max=60))
    driver_phone = fields.Str(validate=validate.Length(max=30))
    lines = fields.List(fields.Nested(LineChangeIn), validate=validate.Length(max=50))


class ManifestRevisionIn(StrictSchema):
    reason = REASON
    changes = fields.Nested(ManifestChangesIn, required=True, metadata={"description": "only the fields that change"})


class RecordChangesIn(StrictSchema):
    quantity_kg = Plausible("waste_kg")
    waste_name = fields.Str(validate=validate.Length(min=1, max=300))
    facility_code = fields.Str(validate=validate.Length(max=40))
    container_type = fields.Str(validate=validate.Length(max=40))
    container_count = fields.Int(allow_none=True, validate=validate.Range(min=1, max=MAX_ID))
    handler = fields.Str(validate=validate.Length(max=120))
    note = fields.Str(validate=validate.Length(max=2000))


class RecordRevisionIn(StrictSchema):
    reason = REASON
    changes = fields.Nested(RecordChangesIn, required=True, metadata={"description": "only the fields that change"})


class DecisionIn(StrictSchema):
    note = fields.Str(
        load_default="", validate=validate.Length(max=2000), metadata={"description": "required when refusing"}
    )


class RevisionQuery(PageArgs):
    state = fields.Str(validate=validate.OneOf(tuple(RevisionState)))
    target = fields.Str(validate=validate.OneOf(tuple(RevisionTarget)))
    enterprise = Id(metadata={"description": "the enterprise whose waste it is (a manifest's consignor)"})


class ApprovalOut(Schema):
    party = fields.Str()
    organization_id = fields.Int()
    organization_name = fields.Str()
    state = fields.Str()
    decided_at = fields.DateTime(allow_none=True)
    decided_by = fields.Str()
    note = fields.Str()


class RevisionOut(Schema):
    id = fields.Int()
    target = fields.Str(metadata={"description": "manifest | ledger_record"})
    manifest_number = fields.Function(lambda r: r.manifest.number if r.manifest else None, allow_none=True)
    record_id = fields.Int(allow_none=True)
    record_batch_code = fields.Function(lambda r: r.record.batch_code if r.record else None, allow_none=True)
    state = fields.Str(metadata={"description": "pending | approved | refused | cancelled"})
    reason = fields.Str()
    changes = fields.Raw(metadata={"description": "the proposed changes; masses as decimal strings"})
    base_version = fields.Int()
    version = fields.Int(allow_none=True, metadata={"description": "the version it became (approved)"})
    requested_by = fields.Str()
    requested_by_org_id = fields.Int(allow_none=True)
    requested_at = fields.DateTime()
    enterprise_id = fields.Int()
    decided_at = fields.DateTime(allow_none=True)
    decided_by = fields.Str()
    approvals = fields.List(fields.Nested(ApprovalOut))
    before = fields.Raw(allow_none=True, metadata={"description": "the replaced version's content"})
    after = fields.Raw(allow_none=True, metadata={"description": "the new version's content"})


class VersionOut(Schema):
    version = fields.Int()
    current = fields.Bool()
    replaced_at = fields.DateTime(allow_none=True)
    replaced_by_revision = fields.Int(allow_none=True)
    content = fields.Raw(metadata={"description": "the manifest or record as it was; masses as decimal strings"})


class VersionsOut(Schema):
    items = fields.List(fields.Nested(VersionOut))
