from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.accounts.models import ORG_ROLES, USER_ROLES
from app.common.schemas import Id, IsoDate, PageArgs, StrictSchema


class LicenceSchema(Schema):
    number = fields.Str(required=True, validate=validate.Length(min=1, max=60))
    kind = fields.Str(
        load_default="hw_operation",
        metadata={"description": "hw_operation (危险废物经营许可证), transport (道路运输经营许可证), …"},
    )
    waste_codes = fields.List(
        fields.Str(),
        load_default=list,
        metadata={"description": "waste codes or categories (HW49) it covers; empty = all"},
    )
    valid_until = IsoDate(allow_none=True, load_default=None, metadata={"description": "YYYY-MM-DD"})


class OrganizationIn(StrictSchema):
    name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    uscc = fields.Str(
        allow_none=True, metadata={"description": "统一社会信用代码, GB 32100-2015, check character validated"}
    )
    roles = fields.List(fields.Str(validate=validate.OneOf(ORG_ROLES)), required=True)
    county_code = fields.Str(allow_none=True, validate=validate.Length(equal=6))
    park_id = Id(allow_none=True)
    licences = fields.List(fields.Nested(LicenceSchema), load_default=list)
    contact_phone = fields.Str(allow_none=True)
    address = fields.Str(allow_none=True)


class OrganizationOut(Schema):
    id = fields.Int()
    name = fields.Str()
    uscc = fields.Str(allow_none=True)
    roles = fields.List(fields.Str())
    county_code = fields.Str(allow_none=True)
    county_name = fields.Function(lambda o: o.county.name if o.county else None)
    park_id = Id(allow_none=True)
    park_name = fields.Function(lambda o: o.park.name if o.park else None)
    licences = fields.Raw()
    contact_phone = fields.Str(allow_none=True)
    address = fields.Str(allow_none=True)
    created_at = fields.DateTime()


class OrganizationQuery(PageArgs):
    role = fields.Str(validate=validate.OneOf(ORG_ROLES))
    county = fields.Str()
    park = Id()


class ParkIn(StrictSchema):
    name = fields.Str(required=True, validate=validate.Length(min=1, max=120))
    county_code = fields.Str(required=True, validate=validate.Length(equal=6))


class ParkOut(Schema):
    id = fields.Int()
    name = fields.Str()
    county_code = fields.Str()
    county_name = fields.Function(lambda p: p.county.name if p.county else None)


class UserIn(StrictSchema):
    username = fields.Str(
        required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.@-]{3,80}$", error="3–80 letters, digits or _.@-")
    )
    password = fields.Str(
        required=True,
        load_only=True,
        validate=validate.Length(max=200),
        metadata={
            "description": "app.accounts.passwords: at least 10 characters, not a common password, not the username"
        },
    )
    display_name = fields.Str(load_default="")
    organization_id = Id(allow_none=True)
    role = fields.Str(load_default="staff", validate=validate.OneOf(USER_ROLES))
    is_operator = fields.Bool(load_default=False)


class UserOut(Schema):
    id = fields.Int()
    username = fields.Str()
    display_name = fields.Str()
    organization_id = Id(allow_none=True)
    role = fields.Str()
    is_operator = fields.Bool()
    active = fields.Bool()


class TokenIn(StrictSchema):
    username = fields.Str(required=True)
    password = fields.Str(required=True, load_only=True)


class TokenOut(Schema):
    token = fields.Str()
    token_type = fields.Str(dump_default="Bearer")
    expires_at = fields.DateTime()


class DeviceTokenIn(StrictSchema):
    organization_id = Id(required=True)
    name = fields.Str(load_default="gateway", validate=validate.Length(max=120))
    expires_in_days = fields.Int(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1, max=3650),
        metadata={"description": "validity in days (default 365)"},
    )


class DeviceTokenRow(Schema):
    """A device token as listed: never the token itself (shown once, at creation)."""

    id = fields.Int()
    name = fields.Str()
    organization_id = Id()
    issued_by_user_id = Id(allow_none=True)
    created_at = fields.DateTime()
    expires_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)
    last_used_at = fields.DateTime(allow_none=True, metadata={"description": "recorded at most once a minute"})


class DeviceTokenOut(DeviceTokenRow):
    token = fields.Str(metadata={"description": "shown only in this answer"})


class DeviceTokenQuery(PageArgs):
    organization_id = Id()


class PasswordChangeIn(StrictSchema):
    current_password = fields.Str(required=True, load_only=True)
    new_password = fields.Str(required=True, load_only=True, validate=validate.Length(max=200))


class CountyOut(Schema):
    code = fields.Str()
    name = fields.Str()
    name_en = fields.Str()
