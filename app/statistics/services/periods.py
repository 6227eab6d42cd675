"""Statistics periods: the shared :class:`~app.common.periods.Period`, and no statistics for a future one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.common.errors import InvalidInput
from app.common.periods import FIRST_YEAR, Period, month_of, months_until

__all__ = ["FIRST_YEAR", "Period", "check_not_future", "month_of", "months_until", "parse_period"]


def parse_period(text: Any) -> Period:
    """``2025`` (year), ``2025-Q3`` (quarter) or ``2025-07`` (month); anything else → 422 on ``period``."""
    return Period.parse(text)


def check_not_future(period: Period, now: datetime) -> None:
    """A period that has not begun has no statistics (the current one has: up to now)."""
    if period.start_utc > now:
        raise InvalidInput.field("period", f"{period.label} is in the future")
