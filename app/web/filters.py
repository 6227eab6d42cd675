"""Template filters of the pages: ``kg``, ``tonnes`` (masses) and ``isotime`` (Asia/Shanghai).

Registered app-wide by app/web/pages.py (``FILTERS``), so every template may use them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from app.common.timeutil import SHANGHAI, from_db


def kg_filter(value, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def tonnes_filter(value_kg, digits: int = 3) -> str:
    if value_kg is None:
        return "—"
    return f"{value_kg / 1000:,.{digits}f}"


def isotime_filter(value) -> str:
    """An ISO 8601 string or a datetime, shown in Asia/Shanghai."""
    if not value:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return from_db(value).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


FILTERS: dict[str, Callable[..., str]] = {"kg": kg_filter, "tonnes": tonnes_filter, "isotime": isotime_filter}
