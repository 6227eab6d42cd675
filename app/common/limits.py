"""Plausible ranges of the numbers and dates the service accepts (``app/data/plausibility.yaml``).

Read and validated like every rule file by :func:`app.rules.load_rule_file` (its schema is
``app/rules/schemas/plausibility.schema.yaml``; ``RULES_DIR`` may replace it); :func:`parse` adds
what a schema cannot say (each min below its max) and builds the typed limits. The schemas use
:func:`app.common.schemas.Plausible`, pages can read :func:`limit` for their own hints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache

from app.rules import RulesError, load_rule_file

FILE = "plausibility.yaml"


@dataclass(frozen=True)
class Limit:
    name: str
    min: float
    max: float
    unit: str
    zh: str
    en: str
    source: str
    min_exclusive: bool = False

    def check(self, value: float) -> str | None:
        """The English message for an out-of-range value, None when the value is fine."""
        if not math.isfinite(value):
            return "must be a finite number"
        # The messages below the minimum are marshmallow's own wording, which the pages translate.
        if self.min_exclusive and value <= self.min:
            return f"must be greater than {self.min:g}"
        if not self.min_exclusive and value < self.min:
            return f"must be greater than or equal to {self.min:g}"
        if value > self.max:
            unit = f" {self.unit}" if self.unit else ""
            return f"must be at most {self.max:g}{unit} (plausible {self.en})"
        return None

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        left = "(" if self.min_exclusive else "["
        return f"{left}{self.min:g}, {self.max:g}]{unit}"


@dataclass(frozen=True)
class Limits:
    fields: dict[str, Limit]
    min_date: date
    # Days before a box's or enterprise's registration that its first records may lie.
    backfill_days: int = 1827
    # Possible but unusual values (``unusual:``), as the file gives them (checked by its schema);
    # app/common/confirmations.py reads them.
    unusual: dict | None = None

    @property
    def min_datetime(self) -> datetime:
        return datetime(self.min_date.year, self.min_date.month, self.min_date.day, tzinfo=UTC)


def _number(problems: list[str], where: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        problems.append(f"{where}: expected a finite number, got {value!r}")
        return 0.0
    return float(value)


def parse(data: dict, where: str = FILE) -> Limits:
    """Check the document's shape; every problem is listed in one :class:`RulesError`."""
    problems: list[str] = []
    raw_fields = data.get("fields")
    limits: dict[str, Limit] = {}
    if not isinstance(raw_fields, dict) or not raw_fields:
        problems.append(f"{where}: 'fields' must be a non-empty mapping")
        raw_fields = {}
    for name, entry in raw_fields.items():
        here = f"{where}: fields.{name}"
        if not isinstance(entry, dict):
            problems.append(f"{here}: expected a mapping")
            continue
        low = _number(problems, f"{here}.min", entry.get("min"))
        high = _number(problems, f"{here}.max", entry.get("max"))
        if low >= high:
            problems.append(f"{here}: min must be below max")
        texts = {}
        for key in ("zh", "en", "source"):
            text = entry.get(key)
            if not isinstance(text, str) or not text.strip():
                problems.append(f"{here}.{key}: a text is required")
            texts[key] = str(text or "")
        unit = entry.get("unit", "")
        if not isinstance(unit, str):
            problems.append(f"{here}.unit: expected a text")
        limits[str(name)] = Limit(
            str(name),
            low,
            high,
            str(unit),
            texts["zh"],
            texts["en"],
            texts["source"],
            bool(entry.get("min_exclusive", False)),
        )
    dates = data.get("dates") or {}
    min_date = dates.get("min") if isinstance(dates, dict) else None
    if isinstance(min_date, datetime):
        min_date = min_date.date()
    if isinstance(min_date, str):  # the rule loader keeps dates as text
        try:
            min_date = date.fromisoformat(min_date)
        except ValueError:
            min_date = None
    if not isinstance(min_date, date):
        problems.append(f"{where}: dates.min must be a date (YYYY-MM-DD)")
        min_date = date(2000, 1, 1)
    backfill = dates.get("backfill_days", 1827) if isinstance(dates, dict) else 1827
    if isinstance(backfill, bool) or not isinstance(backfill, int) or backfill < 0:
        problems.append(f"{where}: dates.backfill_days must be a whole number of days >= 0")
        backfill = 1827
    if problems:
        raise RulesError("\n".join(problems))
    unusual = data.get("unusual") or {}
    iodine = unusual.get("iodine_mg_g") if isinstance(unusual, dict) else None
    if isinstance(iodine, dict) and _number(problems, "unusual.iodine_mg_g.min", iodine.get("min")) >= _number(
        problems, "unusual.iodine_mg_g.max", iodine.get("max")
    ):
        problems.append(f"{where}: unusual.iodine_mg_g: min must be below max")
    if problems:
        raise RulesError("\n".join(problems))
    return Limits(limits, min_date, backfill, dict(unusual) if isinstance(unusual, dict) else {})


def check_plausibility(data: dict, where: str) -> None:
    """The rule loader's semantic check: problems named by key path, without the file name."""
    try:
        parse(data, where="")
    except RulesError as exc:
        raise RulesError(str(exc), [p.removeprefix(": ").removeprefix(" ") for p in str(exc).splitlines()]) from None


@lru_cache(maxsize=4)
def load(override_dir: str | None = None) -> Limits:
    return parse(load_rule_file(FILE, override_dir), FILE)


def limits() -> Limits:
    """The limits in force for the schemas of a request: those of the current app's wiring (its
    rules folder), the shipped file outside an app. Services take theirs from
    ``wiring_of(session).plausibility()`` instead, and need no app context."""
    from app.common.wiring import current_wiring

    return current_wiring().plausibility()


def limit(name: str, within: Limits | None = None) -> Limit:
    """The limit ``name`` of ``within`` (a service passes its wiring's), else of :func:`limits`."""
    try:
        return (within if within is not None else limits()).fields[name]
    except KeyError:
        raise KeyError(f"{FILE} has no field {name!r}") from None
