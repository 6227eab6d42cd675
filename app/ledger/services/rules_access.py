"""Ledger rules, methods, work calendar and catalogue access, and the small helpers (kg, EPS, day starts)."""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any

from app.common.columns import GRAM, ZERO_KG, is_number, kg, kg_or_none  # noqa: F401  (re-exported)
from app.common.timeutil import SHANGHAI
from app.ledger.calendar import WorkCalendar, load_calendar
from app.ledger.catalogue import LedgerRules, Method, WasteEntry, load_catalogue, load_ledger_rules, load_methods

# Half a gram. Masses are exact Decimals quantized to the gram (``kg``: "quantize to 0.001"),
# so comparisons with EPS are comparisons with zero; it stays for readability of "> nothing".
EPS = Decimal("0.0005")


def _override_dir() -> str | None:
    from app.boxes.services import RULES_DIR_OVERRIDE

    return RULES_DIR_OVERRIDE.get("dir")


def rules() -> LedgerRules:
    return load_ledger_rules(_override_dir())


def methods() -> dict[str, Method]:
    return load_methods(_override_dir())


def calendar() -> WorkCalendar:
    return load_calendar(_override_dir())


def catalogue_entry(code: str | None) -> WasteEntry | None:
    return load_catalogue().get(code or "")


def _unknown_code(code: Any) -> str:
    return f"{code!r} is not in the national catalogue of hazardous wastes ({load_catalogue().title})"


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=SHANGHAI).astimezone(timezone.utc)

