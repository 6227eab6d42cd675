"""Ledger rules, methods, work calendar and catalogue access, and the small helpers (kg, EPS, day starts)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from app.common.columns import GRAM, ZERO_KG, is_number, kg, kg_or_none  # noqa: F401  (re-exported)
from app.common.timeutil import SHANGHAI
from app.common.wiring import wiring_of
from app.ledger.calendar import WorkCalendar
from app.ledger.catalogue import LedgerRules, Method, WasteEntry, load_catalogue

# Half a gram. Masses are exact Decimals quantized to the gram (``kg``: "quantize to 0.001"),
# so comparisons with EPS are comparisons with zero; it stays for readability of "> nothing".
EPS = Decimal("0.0005")


# The rule files of the app that made ``session`` (its RULES_DIR): app.common.wiring.
def rules(session: Session) -> LedgerRules:
    return wiring_of(session).ledger_rules()


def methods(session: Session) -> dict[str, Method]:
    return wiring_of(session).methods()


def calendar(session: Session) -> WorkCalendar:
    return wiring_of(session).calendar()


def catalogue_entry(code: str | None) -> WasteEntry | None:
    return load_catalogue().get(code or "")


def _unknown_code(code: Any) -> str:
    return f"{code!r} is not in the national catalogue of hazardous wastes ({load_catalogue().title})"


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=SHANGHAI).astimezone(UTC)
