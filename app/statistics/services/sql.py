"""SQL building blocks of the statistics: sums, period bounds, epoch seconds per dialect, treatment of a method code."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func
from sqlalchemy.orm import Session

from app.common.epoch import EpochSeconds  # noqa: F401 (the statistics' name for it, re-exported)
from app.common.periods import Period
from app.ledger.services import kg, methods


def sum_or_zero(expr):
    return func.coalesce(func.sum(expr), 0)


def count_if(condition):
    return sum_or_zero(case((condition, 1), else_=0))


def within(column, period: Period):
    return and_(column >= period.start_utc, column < period.end_utc)


def as_kg(value: Any) -> Decimal:
    """A SQL sum of masses as exact kg (NUMERIC on PostgreSQL; on SQLite it came through a float)."""
    return kg(value or 0)


def ratio(part: Any, whole: Any) -> float | None:
    """A share: exact sums divided, then a float (shares are not masses)."""
    return round(float(Decimal(part) / Decimal(whole)), 6) if whole else None


def treatment_of(session: Session, code: str) -> str:
    method = methods(session).get(code)
    if method is None:
        return "other"
    if method.landfill:
        return "landfilled"
    if method.kind == "utilisation":
        return "utilised"
    return {"D10": "incinerated", "C1": "cement_kiln"}.get(code, "other")


def landfill_codes(session: Session) -> list[str]:
    return sorted(code for code, m in methods(session).items() if m.landfill)
