"""Schema pieces shared across domains."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from app.common.timeutil import as_utc


class StrictSchema(Schema):
    """Unknown fields are an error: a typo in a field name must not be silently dropped."""


class LocalDateTime(fields.DateTime):
    """ISO 8601; a timestamp without an offset means Asia/Shanghai; stored as UTC."""

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        return as_utc(parsed)

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return super()._serialize(as_utc(value), attr, obj, **kwargs)


class PositiveFloat(fields.Float):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_nan", False)
        super().__init__(*args, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("Not a valid number.")
        number = super()._deserialize(value, attr, data, **kwargs)
        if number <= 0:
            raise ValidationError("Must be greater than 0.")
        return number


MAX_ID = 2**31 - 1  # PostgreSQL integer


def Id(**kwargs) -> fields.Int:
    """A row id: a positive integer the databases can hold."""
    return fields.Int(strict=False, validate=validate.Range(min=1, max=MAX_ID), **kwargs)


class PageArgs(Schema):
    page = fields.Int(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Int(load_default=50, validate=validate.Range(min=1, max=500))


def paginate(session, query, page: int, per_page: int):
    from sqlalchemy import func, select

    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    items = list(session.scalars(query.limit(per_page).offset((page - 1) * per_page)))
    return items, total


def listing(query, args):
    from app.extensions import db

    items, total = paginate(db.session, query, args["page"], args["per_page"])
    return {"items": items, "total": total, "page": args["page"], "per_page": args["per_page"]}


_PAGE_SCHEMAS: dict[str, type] = {}


def page_schema(item_schema):
    """A page of ``item_schema`` items: {items, total, page, per_page}."""
    name = f"{item_schema.__name__}Page"
    if name not in _PAGE_SCHEMAS:
        _PAGE_SCHEMAS[name] = type(name, (Schema,), {
            "items": fields.List(fields.Nested(item_schema)), "total": fields.Int(),
            "page": fields.Int(), "per_page": fields.Int(),
        })
    return _PAGE_SCHEMAS[name]
