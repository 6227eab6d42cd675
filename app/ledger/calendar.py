"""Working days in China: weekends and public holidays off, make-up working days (调休) on.

Deadlines in 危险废物转移管理办法 count working days (receipt within 5, paper entry within 10),
so a calendar file (``holidays.yaml``) lists each year's holidays and make-up days. A year that
is not in the file falls back to plain weekends; :meth:`WorkCalendar.covers` tells which years
are known so operations can add the next year in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from app.rules import RulesError, load_rule_file, rules_path

CALENDAR_FILE = "holidays.yaml"


@dataclass(frozen=True)
class WorkCalendar:
    version: str
    holidays: frozenset[date]
    workdays: frozenset[date]  # make-up working days on weekends
    years: frozenset[int]

    def covers(self, day: date) -> bool:
        return day.year in self.years

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th working day after ``start`` (``start`` itself does not count)."""
        day = start
        counted = 0
        while counted < n:
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in (start, end]: how many working days after ``start`` ``end`` is."""
        if end <= start:
            return 0
        count, day = 0, start
        while day < end:
            day += timedelta(days=1)
            if self.is_working_day(day):
                count += 1
        return count


def _as_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def parse_calendar(data: dict[str, Any], where: str = "holidays.yaml") -> WorkCalendar:
    problems: list[str] = []
    holidays: set[date] = set()
    workdays: set[date] = set()
    years_raw = data.get("years")
    if not isinstance(years_raw, dict) or not years_raw:
        raise RulesError.listing(where, ["years: a mapping year → {holidays, workdays} is required"])
    years: set[int] = set()
    for year_key, spec in years_raw.items():
        try:
            year = int(year_key)
        except (TypeError, ValueError):
            problems.append(f"years.{year_key}: not a year")
            continue
        years.add(year)
        if not isinstance(spec, dict):
            problems.append(f"years.{year}: expected a mapping")
            continue
        ranges = spec.get("holidays")
        if not isinstance(ranges, list) or not ranges:
            problems.append(f"years.{year}.holidays: a non-empty list is required")
            ranges = []
        for i, item in enumerate(ranges):
            place = f"years.{year}.holidays[{i}]"
            if not isinstance(item, dict) or not item.get("name"):
                problems.append(f"{place}: expected {{name, from, to}}")
                continue
            start, end = _as_date(item.get("from")), _as_date(item.get("to"))
            if start is None or end is None:
                problems.append(f"{place}: from/to must be dates (YYYY-MM-DD)")
                continue
            if end < start or (end - start).days > 14:
                problems.append(f"{place}: {start}..{end} is not a plausible holiday range")
                continue
            if start.year != year or end.year != year:
                problems.append(f"{place}: {start}..{end} is outside {year}")
            day = start
            while day <= end:
                if day in holidays:
                    problems.append(f"{place}: {day} is listed twice")
                holidays.add(day)
                day += timedelta(days=1)
        extra = spec.get("workdays") or []
        if not isinstance(extra, list):
            problems.append(f"years.{year}.workdays: a list of dates is required")
            extra = []
        for i, raw in enumerate(extra):
            place = f"years.{year}.workdays[{i}]"
            workday = _as_date(raw)
            if workday is None:
                problems.append(f"{place}: {raw!r} is not a date")
                continue
            if workday.year != year:
                problems.append(f"{place}: {workday} is outside {year}")
            if workday.weekday() < 5:
                problems.append(f"{place}: {workday} is a weekday; a make-up working day (调休) falls on a weekend")
            workdays.add(workday)
    for day in sorted(holidays & workdays):
        problems.append(f"{day} is both a holiday and a make-up working day")
    if problems:
        raise RulesError.listing(where, problems)
    return WorkCalendar(
        version=str(data.get("version") or ""),
        holidays=frozenset(holidays),
        workdays=frozenset(workdays),
        years=frozenset(years),
    )


@lru_cache(maxsize=4)
def _calendar_cached(path: str, mtime: float, override_dir: str | None) -> WorkCalendar:
    # load_rule_file validates against app/rules/schemas/holidays.schema.yaml and parse_calendar.
    return parse_calendar(load_rule_file(CALENDAR_FILE, override_dir), path)


def load_calendar(override_dir: str | None = None) -> WorkCalendar:
    path = rules_path(CALENDAR_FILE, override_dir)
    return _calendar_cached(str(path), path.stat().st_mtime, override_dir)
