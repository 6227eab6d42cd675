"""Calendar periods (a year, a quarter or a month, Asia/Shanghai) shared by the statistics and the index.

One parser for both: the text is normalised with NFKC (full-width ``２０２５－Ｑ２`` is ``2025-Q2``,
as a Chinese input method types it) and stripped, then must be ``2025``, ``2025-Q3`` (``q`` in
either case) or ``2025-07``, a year from :data:`FIRST_YEAR` to :data:`LAST_YEAR`. Anything else
is :class:`~app.common.errors.InvalidInput` on the field, with :func:`invalid_message`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from app.common.errors import InvalidInput
from app.common.timeutil import SHANGHAI

FIRST_YEAR, LAST_YEAR = 2000, 2100
KINDS = ("year", "quarter", "month")
# After NFKC: ASCII digits only (``\d`` alone would also take Arabic-Indic and other Unicode digits).
PERIOD_RE = re.compile(r"^(\d{4})(?:-Q([1-4])|-(0[1-9]|1[0-2]))?$", re.ASCII)
_NUMBERS = {"year": 1, "quarter": 4, "month": 12}
_MONTHS = {"year": 12, "quarter": 3, "month": 1}


def invalid_message(text: Any) -> str:
    """The one message for text that is not a period (Chinese first, then English)."""
    return (
        f"期间 {text!r} 无效：请使用 YYYY、YYYY-Qn 或 YYYY-MM（如 2025、2025-Q3、2025-07），"
        f"{FIRST_YEAR}–{LAST_YEAR} 年 ({text!r} is not a period: use YYYY, YYYY-Qn or YYYY-MM, e.g. 2025, "
        f"2025-Q3, 2025-07, years {FIRST_YEAR}–{LAST_YEAR})"
    )


def _local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).astimezone(UTC)


@dataclass(frozen=True)
class Period:
    """An Asia/Shanghai calendar year, quarter or month; a day starts at 00:00 Shanghai."""

    kind: str  # year | quarter | month
    year: int
    number: int = 1  # the quarter (1–4) or month (1–12); 1 for a year

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if not 1 <= self.number <= _NUMBERS[self.kind] or not 1 <= self.year <= 9998:
            raise ValueError(f"no {self.kind} {self.year}/{self.number}")

    # ------------------------------------------------------------ reading one

    @classmethod
    def parse(cls, text: Any, field: str = "period") -> Period:
        """``2025`` (year), ``2025-Q3`` (quarter) or ``2025-07`` (month); else :class:`InvalidInput` on ``field``."""
        if isinstance(text, Period):
            return text
        match = PERIOD_RE.match(unicodedata.normalize("NFKC", text).strip().upper()) if isinstance(text, str) else None
        year = int(match.group(1)) if match else 0
        if not match or not FIRST_YEAR <= year <= LAST_YEAR:
            raise InvalidInput.field(field, invalid_message(text))
        if match.group(2):
            return cls("quarter", year, int(match.group(2)))
        if match.group(3):
            return cls("month", year, int(match.group(3)))
        return cls("year", year)

    # ------------------------------------------------------------ what it is

    @property
    def label(self) -> str:
        if self.kind == "year":
            return f"{self.year}"
        if self.kind == "quarter":
            return f"{self.year}-Q{self.number}"
        return f"{self.year}-{self.number:02d}"

    @property
    def quarter(self) -> int | None:
        """The quarter (1–4) of a quarter, else None."""
        return self.number if self.kind == "quarter" else None

    @property
    def is_quarter(self) -> bool:
        return self.kind == "quarter"

    @property
    def first_month(self) -> int:
        return {"year": 1, "quarter": 3 * self.number - 2, "month": self.number}[self.kind]

    @property
    def months(self) -> int:
        """How many months it spans (12, 3 or 1)."""
        return _MONTHS[self.kind]

    def month_periods(self) -> list[Period]:
        """Its months, in order."""
        return [Period("month", self.year, self.first_month + i) for i in range(self.months)]

    @property
    def start(self) -> date:
        """Its first day."""
        return date(self.year, self.first_month, 1)

    @property
    def end(self) -> date:
        """The first day after it."""
        month = self.first_month + self.months
        return date(self.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)

    @property
    def start_utc(self) -> datetime:
        return _local_midnight(self.start)

    @property
    def end_utc(self) -> datetime:
        return _local_midnight(self.end)

    def contains(self, moment: datetime) -> bool:
        return self.start_utc <= moment < self.end_utc

    # ------------------------------------------------------------ other periods

    def previous(self) -> Period:
        """The period of the same kind just before."""
        if self.number > 1:
            return Period(self.kind, self.year, self.number - 1)
        return Period(self.kind, self.year - 1, _NUMBERS[self.kind])

    def same_period_in(self, year: int) -> Period:
        """The same quarter, month or year in another year (2025-Q2 → 2024-Q2)."""
        return Period(self.kind, year, self.number)

    def __str__(self) -> str:
        return self.label


def month_of(moment: datetime) -> Period:
    """The Shanghai calendar month of an instant."""
    local = moment.astimezone(SHANGHAI)
    return Period("month", local.year, local.month)


def months_until(last: Period, count: int = 12) -> list[Period]:
    """``count`` consecutive months ending with the last month of ``last``."""
    out = [last.month_periods()[-1]]
    while len(out) < count:
        out.append(out[-1].previous())
    return list(reversed(out))
