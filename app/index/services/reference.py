"""The nine counties the index ranks and the periods it is assessed in (years and quarters of the shared Period)."""

from __future__ import annotations

from typing import Any

from app.accounts.reference import TAIZHOU_COUNTIES
from app.common.errors import InvalidInput
from app.common.periods import FIRST_YEAR, LAST_YEAR, Period, invalid_message

COUNTY_NAMES: dict[str, str] = {code: name for code, name, _en in TAIZHOU_COUNTIES}
COUNTY_NAMES_EN: dict[str, str] = {code: en for code, _name, en in TAIZHOU_COUNTIES}
COUNTY_BY_NAME: dict[str, str] = {name: code for code, name, _en in TAIZHOU_COUNTIES}
MIN_YEAR, MAX_YEAR = FIRST_YEAR, LAST_YEAR


def parse_period(text: Any, field: str = "period") -> Period:
    """A year (``2025``) or a quarter (``2025-Q2``) as :meth:`Period.parse` reads it, a spreadsheet cell's
    number (2025) being the year; anything else, a month included, is :class:`InvalidInput` on ``field``."""
    cell = text
    if (isinstance(text, int) and not isinstance(text, bool)) or (isinstance(text, float) and text.is_integer()):
        cell = str(int(text))
    try:
        period = Period.parse(cell, field)
    except InvalidInput:
        raise InvalidInput.field(field, invalid_message(text)) from None
    if period.kind == "month":
        raise InvalidInput.field(
            field,
            f"期间 {text!r} 是月份：协同指数按年度或季度考核（如 2025、2025-Q2） "
            f"({text!r} is a month: the index is assessed by year or quarter, e.g. 2025 "
            f"or 2025-Q2)",
        )
    return period
