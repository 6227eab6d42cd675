"""Column types for states and masses, shared by the models.

States are :class:`enum.StrEnum` types stored as short strings with a CHECK constraint
(``native_enum=False``): the database refuses an unknown state, and a member compares equal to
its string, so JSON, templates and queries keep the plain values.

Masses are kilograms as ``NUMERIC(14, 3)``: exact to the gram up to 10¹¹ kg (a hundred million
tonnes, far above any sum the city's figures add up). Python sees :class:`decimal.Decimal`
quantized to 0.001; :func:`kg` converts anything (a float from a schema, an int, a string, a SQL
sum) to that.
"""

from __future__ import annotations

import decimal
import enum
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, TypeGuard

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

GRAM = Decimal("0.001")
ZERO_KG = Decimal("0.000")
MASS_PRECISION, MASS_SCALE = 14, 3


def kg(value: Any) -> Decimal:
    """A mass in kilograms quantized to the gram (half-even, like ``round``), as a Decimal.

    Floats go through their shortest repr, so ``kg(0.1 + 0.2) == Decimal("0.300")``."""
    if value is None:
        return ZERO_KG
    if isinstance(value, bool):
        raise TypeError("a mass cannot be a boolean")
    if isinstance(value, float):
        value = repr(value)
    try:
        result = Decimal(value).quantize(GRAM, rounding=ROUND_HALF_EVEN)
    except decimal.InvalidOperation as exc:
        raise ValueError(f"not a mass in kg: {value!r}") from exc
    return result + ZERO_KG  # no negative zero


def kg_or_none(value: Any) -> Decimal | None:
    return None if value is None else kg(value)


def is_number(value: Any) -> TypeGuard[int | float | Decimal]:
    """An input quantity: int, float or Decimal (not a bool, not NaN)."""
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool) and value == value


def kg_float(value: Any) -> float | None:
    """For JSON and charts: the exact mass as the nearest float (``0.300`` → ``0.3``)."""
    return None if value is None else float(kg(value))


class Kilograms(TypeDecorator):
    """NUMERIC(14, 3) kilograms; binds and returns Decimals quantized to the gram.

    SQLite has no decimal type: the value travels as a float and is quantized again on the way
    back, which is exact for every mass below 10¹¹ kg (15 significant digits)."""

    impl = sa.Numeric(MASS_PRECISION, MASS_SCALE, asdecimal=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else kg(value)

    def process_result_value(self, value, dialect):
        return None if value is None else kg(value)

    def coerce_compared_value(self, op, value):
        return self


def state_type(enum_cls: type[enum.StrEnum], name: str, length: int | None = None) -> sa.Enum:
    """A VARCHAR column of ``enum_cls`` values with a CHECK constraint named ``name`` (the
    metadata's naming convention makes it ``ck_<table>_<name>``)."""
    values = [m.value for m in enum_cls]
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=length or max(len(v) for v in values),
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


def json_default(value: Any) -> Any:
    """Masses stay JSON numbers: a Decimal is written as the float nearest to it (``0.3``)."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def json_dumps(value: Any, **kwargs: Any) -> str:
    """The serializer of JSON columns (event details, reasons): Decimals as numbers."""
    import json

    return json.dumps(value, default=json_default, **kwargs)
