"""Audit API: the chain head (digest) and an object's trail. Thin: parse, call a service, render."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.audit import pages, services
from app.common.auth import require_user
from app.common.errors import Forbidden
from app.extensions import db

blp = Blueprint("audit", __name__, description="Audit trail (审计记录): hash-chained history of every change")


class DigestOut(Schema):
    seq = fields.Int()
    hash = fields.Str()
    recorded_at = fields.Str(allow_none=True)


class TrailQuery(Schema):
    table = fields.Str()
    id = fields.Str()
    manifest = fields.Str()
    box = fields.Str()
    after = fields.Int(load_default=0, validate=validate.Range(min=0))
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=500))


class EntryOut(Schema):
    seq = fields.Int()
    recorded_at = fields.Str()
    interface = fields.Str()
    user_id = fields.Int(allow_none=True)
    org_id = fields.Int(allow_none=True)
    actor = fields.Str()
    table = fields.Str()
    key = fields.Raw()
    subject = fields.Str()
    action = fields.Str()
    before = fields.Raw(allow_none=True)
    after = fields.Raw(allow_none=True)
    prev_hash = fields.Str()
    hash = fields.Str()


class TrailOut(Schema):
    items = fields.List(fields.Nested(EntryOut))
    next_after = fields.Int(allow_none=True, metadata={"description": "pass as `after` for the next page"})


@blp.route("/audit/digest")
@blp.response(200, DigestOut)
def digest():
    """The chain head (sequence number, hash, time): record it to prove later that nothing before
    it changed (`flask --app wsgi audit verify --digest SEQ:HASH`). Operators and regulators."""
    actor = require_user()
    if not (actor.is_operator or actor.has_role("regulator")):
        raise Forbidden("只有平台运维和监管部门可以读取审计摘要 (operators and regulators only)")
    return services.chain_head(db.session())


@blp.route("/audit")
@blp.arguments(TrailQuery, location="query")
@blp.response(200, TrailOut)
def trail(args):
    """An object's audit trail, oldest first: `table` and `id`, or `manifest` (number) or `box`
    (code); keyset-paginated with `after`. Operators read everything, others what they may see."""
    return services.trail(
        db.session(),
        require_user(),
        table=args.get("table"),
        row_id=args.get("id"),
        manifest=args.get("manifest"),
        box=args.get("box"),
        after=args["after"],
        limit=args["limit"],
    )


API_BLUEPRINTS = (blp,)
BLUEPRINTS = (pages.bp,)
