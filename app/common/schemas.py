"""Schema pieces shared across domains."""

from __future__ import annotations

import math
from datetime import date
from urllib.parse import urlencode

from marshmallow import Schema, ValidationError, fields, validate

from app.common import limits as _limits
from app.common.pagination import MAX_OFFSET as MAX_OFFSET  # re-exported for the domains
from app.common.pagination import PageArgs as PageArgs
from app.common.pagination import keyset_page, page_fields
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


class PlausibleNumber(fields.Float):
    """A finite number inside the plausible range of its kind (``app/data/plausibility.yaml``).

    The range of the shipped file is documented in the OpenAPI (minimum/maximum); the range in
    force (a ``RULES_DIR`` copy may narrow it) is checked when loading. Booleans are no numbers.
    """

    def __init__(self, kind: str, *args, **kwargs):
        self.kind = kind
        shipped = _limits.load().fields[kind]  # a typo in ``kind`` fails at import, not per request
        kwargs.setdefault("allow_nan", False)
        metadata = dict(kwargs.pop("metadata", None) or {})
        hint = f"{shipped.zh} / {shipped.en}: {shipped.describe()}"
        metadata["description"] = f"{metadata['description']}; {hint}" if metadata.get("description") else hint
        validators = kwargs.pop("validate", None)
        validators = [validators] if callable(validators) else list(validators or [])
        validators.insert(
            0,
            validate.Range(
                min=shipped.min,
                max=shipped.max,
                min_inclusive=not shipped.min_exclusive,
                error=f"must be in {shipped.describe()}",
            ),
        )
        super().__init__(*args, validate=validators, metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("Not a valid number.")
        number = super()._deserialize(value, attr, data, **kwargs)
        if not math.isfinite(number):
            raise ValidationError("must be a finite number")
        problem = _limits.limits().fields[self.kind].check(number)
        if problem:
            raise ValidationError(problem)
        return number


def Plausible(kind: str, **kwargs) -> PlausibleNumber:
    """A number field bounded by ``plausibility.yaml``'s entry ``kind`` (e.g. ``waste_kg``)."""
    return PlausibleNumber(kind, **kwargs)


def _not_before_min(value: date) -> None:
    minimum = _limits.limits().min_date
    if value < minimum:
        raise ValidationError(f"cannot be before {minimum.isoformat()}")


class PlausibleDateTime(LocalDateTime):
    """A :class:`LocalDateTime` not before ``plausibility.yaml``'s ``dates.min``. Times in the
    future are the services' to refuse (they hold ``now`` and the clock tolerance)."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            parsed = super()._deserialize(value, attr, data, **kwargs)
        except OverflowError as exc:  # 0001-01-01T00:00+08:00 has no UTC equivalent
            raise ValidationError("Not a valid datetime.") from exc
        _not_before_min(parsed.date())
        return parsed


class PlausibleDate(fields.Date):
    """A date not before ``dates.min`` and before the year 2100 (far-future dates are typing errors)."""

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        _not_before_min(parsed)
        if parsed.year >= 2100:
            raise ValidationError("cannot be after 2099-12-31")
        return parsed


class IsoDate(PlausibleDate):
    """A plausible date kept as its ISO text once loaded (for dates stored inside JSON columns)."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).isoformat()

    def _serialize(self, value, attr, obj, **kwargs):
        if isinstance(value, str):
            return value
        return super()._serialize(value, attr, obj, **kwargs)


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


def listing(query, args):
    """A keyset page of ``query`` (:mod:`app.common.pagination`) with its ``next`` URL and ``Link``."""
    from app.extensions import db

    result = keyset_page(db.session(), query, args)
    return with_next_link(result)


def with_next_link(result: dict) -> dict:
    """Adds ``next`` (this request's URL with ``cursor`` = ``next_cursor``) and the ``Link`` header."""
    from flask import after_this_request, has_request_context, request

    result["next"] = None
    if result.get("next_cursor") and has_request_context():
        query = [(k, v) for k, v in request.args.items(multi=True) if k not in ("cursor", "page")]
        query.append(("cursor", result["next_cursor"]))
        result["next"] = f"{request.base_url}?{urlencode(query)}"
        link = f'<{result["next"]}>; rel="next"'

        @after_this_request
        def _link(response):
            response.headers["Link"] = link
            return response

    return result


_PAGE_SCHEMAS: dict[str, type] = {}


def page_schema(item_schema):
    """A page of ``item_schema`` items: {items, total, page, per_page, next_cursor, next}."""
    name = f"{item_schema.__name__}Page"
    if name not in _PAGE_SCHEMAS:
        _PAGE_SCHEMAS[name] = type(name, (Schema,), page_fields(item_schema))
    return _PAGE_SCHEMAS[name]
