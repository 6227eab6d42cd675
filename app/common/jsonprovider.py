"""Strict JSON in and out (RFC 8259): no NaN or Infinity is ever written, none is read.

Python's ``json`` writes ``Infinity`` and ``NaN`` by default, which no JSON parser outside
Python accepts. The provider writes with ``allow_nan=False``; should a non-finite number still
reach a response (a bug behind the bounded inputs), it is written as ``null`` and logged, never
as invalid JSON and never as a 500. Reading refuses the same literals and unparseable nesting.
Dates and datetimes are written as ISO 8601 (Flask's default is an HTTP date).
"""

from __future__ import annotations

import json
import logging
import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask.json.provider import DefaultJSONProvider

log = logging.getLogger(__name__)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (lists, tuples and dicts walked)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def _default(o: Any) -> Any:
    if isinstance(o, datetime):
        return o.isoformat()
    if isinstance(o, date):
        return o.isoformat()
    if isinstance(o, Decimal):
        number = float(o)
        return number if math.isfinite(number) else None
    return DefaultJSONProvider.default(o)


class StrictJSONProvider(DefaultJSONProvider):
    default = staticmethod(_default)

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("default", self.default)
        kwargs.setdefault("ensure_ascii", self.ensure_ascii)
        kwargs.setdefault("sort_keys", self.sort_keys)
        kwargs["allow_nan"] = False
        try:
            return json.dumps(obj, **kwargs)
        except ValueError as exc:
            if "Out of range float" not in str(exc):
                raise
            log.warning("a non-finite number was written as null: %s", exc)
            return json.dumps(finite(obj), **kwargs)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        kwargs.setdefault("parse_constant", _refuse_constant)
        try:
            return json.loads(s, **kwargs)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc


def install(app, ensure_ascii: bool = True) -> None:
    """Make ``app`` read and write strict JSON (called by :func:`app.create_app`)."""
    app.json_provider_class = StrictJSONProvider
    app.json = provider = StrictJSONProvider(app)
    provider.ensure_ascii = ensure_ascii
