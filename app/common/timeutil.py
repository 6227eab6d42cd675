"""Time handling: stored in UTC, naive input means Asia/Shanghai (product.md, "Times")."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import overload
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    """Aware UTC now. Every 'now' in the services comes through here so tests can pass their own."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Interpret a datetime from the outside world: no offset means Asia/Shanghai."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=SHANGHAI)
    return value.astimezone(UTC)


@overload
def from_db(value: datetime) -> datetime: ...


@overload
def from_db(value: None) -> None: ...


def from_db(value: datetime | None) -> datetime | None:
    """Datetimes come back from SQLite naive; they are UTC by construction."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def local_date(value: datetime) -> date:
    return as_utc(value).astimezone(SHANGHAI).date()


def to_local_str(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    return from_db(value).astimezone(SHANGHAI).strftime(fmt)
