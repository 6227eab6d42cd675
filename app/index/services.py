"""The county synergy index: imports of indicator values and the scores.

No Flask here: callers pass the session, the acting :class:`Principal` and ``now``.

Decisions (documented in ``synergy_index.yaml`` too):

- Who may import: platform operators and the city regulator (a regulator organisation without a
  county). County regulators may not: the index ranks the counties against each other and the
  table names city departments (市生态环境局, 市统计局 …) as the sources, so a county must not
  supply the numbers it is ranked on.
- Who may read the scores and values: operators and every regulator, county regulators included,
  for all nine counties: the index is a comparison, and a county cannot understand its rank
  without the others. Enterprises, carbon services and park administrations get 403. The
  definition itself (the published table) is readable by every signed-in user.
- An import is all or nothing: every row is validated first; one bad row → 422 listing each bad
  row and field, and nothing is stored. A re-import of the same (county, period, indicator)
  updates the value and keeps the replaced one in ``index_indicator_value_revisions``.
  Imports run one at a time (PostgreSQL: an advisory lock), so two at once never fail on the
  unique key: the later one updates what the first inserted.
- Scores: min–max per indicator across the counties that have a value (best = full weight,
  worst = 0, all equal = full weight); missing data scores 0 and is listed, never guessed.
  Subtotals are sums of the third-level scores, so with the table as printed the best total is 99.
- Quarterly periods follow the 备注: previous year's annual value for the indicators marked
  ``previous_year``; for ``cumulative_year`` (27–30) the sum of the year's quarters up to and
  including this one, missing when any of those quarters has no value. The year of a
  ``cumulative_year`` indicator is its imported annual value, else the sum of its four quarters.
- Values as departments type them: "1,234.5", "12%" (a percentage: 12, in %), full-width digits,
  a cell formatted as a percentage (0.923 shown as 92.3 % is 92.3); units compared loosely
  ("％" is "%", "ug/m3" is "μg/m³") and stored as the definition writes them.
- Indicator 25 is 100 × (1 − landfill share) of the county's hazardous waste utilised or disposed in
  the period, from :func:`app.statistics.services.county_landfill`; no processed waste → missing.
- Change against the base year: the county's total in the same kind of period of the base year
  (2024 for 2025, 2024-Q2 for 2025-Q2), each scored among the counties of its own period; none
  when either period has no data for the county, or the base total is 0.
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.reference import TAIZHOU_COUNTIES
from app.accounts.services import Principal
from app.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.common.timeutil import utcnow
from app.common.wiring import wiring_of
from app.index.definition import Definition, Indicator
from app.index.importing import Formula, Percent, RawRows
from app.index.models import IndicatorValue, IndicatorValueRevision
from app.ledger.locking import acquire_write_lock

COUNTY_NAMES: dict[str, str] = {code: name for code, name, _en in TAIZHOU_COUNTIES}
COUNTY_NAMES_EN: dict[str, str] = {code: en for code, _name, en in TAIZHOU_COUNTIES}
COUNTY_BY_NAME: dict[str, str] = {name: code for code, name, _en in TAIZHOU_COUNTIES}
PERIOD_RE = re.compile(r"^(\d{4})(?:-Q([1-4]))?$")
MIN_YEAR, MAX_YEAR = 2000, 2100
SOURCE_MAX = 120
UNIT_MAX = 30
IMPORT_LOCK_KEY = 0x1D3C5A27  # the pg_advisory_xact_lock key of index imports (any constant unused elsewhere)
FIELDS_WITH_FORMULAS = ("county_code", "period", "indicator", "value", "source_department", "unit")
# Computed indicators: computation name (synergy_index.yaml) → function name in this module, looked
# up at call time so that tests can replace the function.
COMPUTED = {"hazardous_waste_non_landfill_share": "indicator_25_value"}


def definition(session: Session) -> Definition:
    """The index definition of the app that made ``session`` (its RULES_DIR): app.common.wiring."""
    return wiring_of(session).index_definition()


# ---------------------------------------------------------------- periods

@dataclass(frozen=True, order=True)
class Period:
    """A year (``2025``) or a quarter of it (``2025-Q2``)."""

    year: int
    quarter: int | None = None

    @property
    def label(self) -> str:
        return f"{self.year}" if self.quarter is None else f"{self.year}-Q{self.quarter}"

    @property
    def is_quarter(self) -> bool:
        return self.quarter is not None

    def in_year(self, year: int) -> "Period":
        return Period(year, self.quarter)


def period_of(text: Any) -> Period | None:
    """``2025`` or ``2025-Q1`` … ``2025-Q4`` (case and surrounding spaces ignored), else None."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int) or (isinstance(text, float) and text.is_integer()):
        text = str(int(text))
    if not isinstance(text, str):
        return None
    match = PERIOD_RE.match(text.strip().upper())
    if not match:
        return None
    year = int(match.group(1))
    if not MIN_YEAR <= year <= MAX_YEAR:
        return None
    return Period(year, int(match.group(2)) if match.group(2) else None)


def parse_period(text: Any, field: str = "period") -> Period:
    period = period_of(text)
    if period is None:
        raise InvalidInput.field(field, f"{text!r} is not a period: a year (2025) or a quarter (2025-Q1 … 2025-Q4), "
                                        f"{MIN_YEAR}–{MAX_YEAR}")
    return period


# ---------------------------------------------------------------- who may do what

def is_city_regulator(actor: Principal) -> bool:
    org = actor.organization
    return bool(not actor.is_device and org is not None and org.has_role("regulator") and org.county_code is None)


def can_import(actor: Principal) -> bool:
    return not actor.is_device and (actor.is_operator or is_city_regulator(actor))


def can_read_scores(actor: Principal) -> bool:
    if actor.is_device:
        return False
    return actor.is_operator or actor.has_role("regulator")


def require_importer(actor: Principal) -> None:
    if not can_import(actor):
        raise Forbidden("只有平台运维和市生态环境局可以导入协同指数数据 (only operators and the city regulator may "
                        "import index values)")


def require_score_reader(actor: Principal) -> None:
    if not can_read_scores(actor):
        raise Forbidden("只有监管部门可以查看协同指数 (only regulators may read the synergy index)")


# ---------------------------------------------------------------- import

@dataclass(frozen=True)
class ImportRow:
    place: int
    county_code: str
    period: Period
    indicator: int
    value: float
    unit: str | None
    source_department: str

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.county_code, self.period.label, self.indicator)


def _county(raw: Any) -> str | None:
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    text = str(raw).strip()
    if text in COUNTY_NAMES:
        return text
    return COUNTY_BY_NAME.get(text)


def _integer(raw: Any) -> int | None:
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        return int(raw) if raw.is_integer() else None
    if isinstance(raw, str) and re.fullmatch(r"\s*\d+(\.0+)?\s*", raw):
        return int(float(raw))
    return None


# A number as departments type it: "1234.5", "1,234.5" (thousands grouped by commas), "-1.5"
# or "−1.5", full-width digits, and "12%" / "12 ％" (a percentage: the value is 12, in %).
_GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Number:
    value: float
    percent: bool = False  # written as a percentage ("12%", or a cell formatted as a percentage)


def _number(raw: Any) -> Number | None:
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, Percent):
        return Number(raw.value, True) if math.isfinite(raw.value) else None
    percent = False
    if isinstance(raw, (int, float)):
        try:
            number = float(raw)
        except OverflowError:  # an integer beyond any float
            return None
    elif isinstance(raw, str):
        text = unicodedata.normalize("NFKC", raw).strip().replace("\u2212", "-").replace(" ", "")
        if text.endswith("%"):
            percent, text = True, text[:-1]
        if _GROUPED.match(text):
            text = text.replace(",", "")
        if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
            return None  # not "nan", "inf", "1_000", "1.234,5" or "12元"
        number = float(text)
    else:
        return None
    return Number(number, percent) if math.isfinite(number) else None


def _unit_key(unit: str) -> str:
    """Units compared as people write them: "％" is "%", "µg/m3" and "ug/m³" are "μg/m³"."""
    text = unicodedata.normalize("NFKC", unit).strip().lower().replace(" ", "")
    return re.sub(r"^(u|µ)", "μ", text.replace("µ", "μ"))


def _same_unit(a: str, b: str) -> bool:
    return _unit_key(a) == _unit_key(b)


def _blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def validate_rows(defn: Definition, raw: RawRows) -> list[ImportRow]:
    """Every row checked, every problem collected; :class:`InvalidInput` if any row is bad."""
    counties = ", ".join(f"{c} {n}" for c, n in COUNTY_NAMES.items())
    bad: dict[str, dict[str, list[str]]] = {}
    good: list[ImportRow] = []
    seen: dict[tuple[str, str, int], int] = {}
    for place, fields in raw.rows:
        errors: dict[str, list[str]] = {}

        def error(name: str, message: str) -> None:
            errors.setdefault(name, []).append(message)

        if "_row" in fields:
            error("_row", fields["_row"])
            bad[str(place)] = errors
            continue
        for name in fields.get("_unknown", ()):
            error(name, "unknown field")
        for name in FIELDS_WITH_FORMULAS:
            if isinstance(fields.get(name), Formula):
                error(name, f"the cell holds the formula {fields[name].text} without a saved result: open the file "
                            f"in Excel (or WPS) and save it again, or paste the values")
                fields = {**fields, name: ""}  # reported; not "required" as well

        county = _county(fields.get("county_code"))
        if _blank(fields.get("county_code")):
            if "county_code" not in errors:
                error("county_code", "required")
        elif county is None:
            error("county_code", f"{fields.get('county_code')!r} is not a Taizhou county-level division; "
                                 f"one of {counties}")

        period = None
        if _blank(fields.get("period")):
            if "period" not in errors:
                error("period", "required")
        else:
            period = period_of(fields.get("period"))
            if period is None:
                error("period", f"{fields.get('period')!r} is not a period: a year (2025) or a quarter "
                                f"(2025-Q1 … 2025-Q4)")

        indicator: Indicator | None = None
        number = _integer(fields.get("indicator"))
        if _blank(fields.get("indicator")):
            if "indicator" not in errors:
                error("indicator", "required")
        elif number is None or number not in defn.indicators:
            error("indicator", f"{fields.get('indicator')!r} is not an indicator of the index: "
                               f"1–{len(defn.indicators)}")
        else:
            indicator = defn.indicators[number]
            if indicator.computed:
                error("indicator", f"indicator {number} ({indicator.name}) is computed from this system's "
                                   f"statistics and cannot be imported")
            elif period is not None and period.is_quarter and indicator.quarterly == "previous_year":
                error("period", f"indicator {number} ({indicator.name}) is assessed in quarters with the previous "
                                f"year's annual value (备注): import the annual value, e.g. period "
                                f"{period.year - 1}, not {period.label}")

        parsed = _number(fields.get("value"))
        value = parsed.value if parsed is not None else None
        shown = fields.get("value")
        shown = f"{shown.value:g}%" if isinstance(shown, Percent) else repr(shown)  # as the person sees it
        if _blank(fields.get("value")):
            if "value" not in errors:
                error("value", "required")
        elif parsed is None:
            error("value", f"{shown} is not a number (e.g. 92.5, 1,234.5 or 12%)")

        source = fields.get("source_department")
        if isinstance(source, str):
            source = " ".join(source.split())  # a line break inside a spreadsheet cell is a space
        if _blank(source):
            if "source_department" not in errors:
                error("source_department", "required: the department that supplied the value")
        elif not isinstance(source, str):
            error("source_department", f"{source!r} is not a department name")
        elif len(source.strip()) > SOURCE_MAX:
            error("source_department", f"at most {SOURCE_MAX} characters")
        elif _CONTROL.search(source):
            error("source_department", "control characters (e.g. NUL) are not allowed")

        unit = fields.get("unit")
        unit = None if _blank(unit) or isinstance(unit, Formula) else " ".join(str(unit).split())
        if unit is not None and len(unit) > UNIT_MAX:
            error("unit", f"at most {UNIT_MAX} characters")
        elif unit is not None and _CONTROL.search(unit):
            error("unit", "control characters (e.g. NUL) are not allowed")
        elif unit is not None and indicator is not None and indicator.unit and not _same_unit(unit, indicator.unit):
            error("unit", f"indicator {indicator.number} is measured in {indicator.unit}, not {unit}")
        elif unit is not None and parsed is not None and parsed.percent and _unit_key(unit) != "%":
            error("value", f"{shown} is a percentage but the unit column says {unit}")
        if (parsed is not None and parsed.percent and indicator is not None and indicator.unit
                and indicator.unit != "%"):
            error("value", f"{shown} is a percentage, but indicator {indicator.number} "
                           f"({indicator.name}) is measured in {indicator.unit}")
        if indicator is not None and indicator.unit and unit is not None and _same_unit(unit, indicator.unit):
            unit = indicator.unit  # stored as the definition writes it
        elif unit is None and parsed is not None and parsed.percent:
            unit = "%"

        if not errors and county is not None and period is not None and indicator is not None and value is not None:
            row = ImportRow(place=place, county_code=county, period=period, indicator=indicator.number, value=value,
                            unit=unit or indicator.unit, source_department=source.strip())
            if row.key in seen:
                error("indicator", f"the same county, period and indicator as {raw.place_name} {seen[row.key]}")
            else:
                seen[row.key] = place
                good.append(row)
        if errors:
            bad[str(place)] = errors
    if bad:
        where = ("positions in the list, from 0" if raw.place_name == "index"
                 else "lines of the file as a spreadsheet or text editor numbers them")
        raise InvalidInput(
            f"{len(bad)} of {len(raw.rows)} rows are invalid ({where}); nothing was imported.",
            errors={"rows": bad}, place=raw.place_name,
        )
    return good


def import_values(session: Session, actor: Principal, raw: RawRows, now: datetime | None = None) -> dict[str, Any]:
    """Validate every row, then upsert them all (the caller commits). Counts what changed."""
    require_importer(actor)
    now = now or utcnow()
    rows = validate_rows(definition(session), raw)
    user_id = actor.user.id if actor.user else None
    # One index import at a time. SQLite: the write lock. PostgreSQL: a transaction-scoped advisory
    # lock, taken before the existing values are read, so that a concurrent import of the same new
    # keys waits and then updates them (with an audit) instead of failing on the unique key.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": IMPORT_LOCK_KEY})
    else:
        acquire_write_lock(session)
    periods = sorted({r.period.label for r in rows})
    existing = {
        (v.county_code, v.period, v.indicator): v
        for v in session.scalars(select(IndicatorValue).where(IndicatorValue.period.in_(periods)).with_for_update())
    }
    inserted = updated = unchanged = 0
    for row in rows:
        current = existing.get(row.key)
        if current is None:
            session.add(IndicatorValue(
                county_code=row.county_code, period=row.period.label, indicator=row.indicator, value=row.value,
                unit=row.unit, source_department=row.source_department, imported_at=now,
                imported_by_user_id=user_id,
            ))
            inserted += 1
            continue
        if (current.value, current.unit, current.source_department) == (row.value, row.unit, row.source_department):
            unchanged += 1
            continue
        session.add(IndicatorValueRevision(
            value_id=current.id, value=current.value, unit=current.unit, source_department=current.source_department,
            imported_at=current.imported_at, imported_by_user_id=current.imported_by_user_id, replaced_at=now,
            replaced_by_user_id=user_id,
        ))
        current.value, current.unit, current.source_department = row.value, row.unit, row.source_department
        current.imported_at, current.imported_by_user_id = now, user_id
        updated += 1
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent import inserted one of the same keys first
        raise Conflict("另一个导入同时写入了相同的指标，请重试 (a concurrent import wrote the same values; retry)") from exc
    return {"rows": len(rows), "inserted": inserted, "updated": updated, "unchanged": unchanged,
            "ignored_columns": raw.ignored_columns}


def list_values(session: Session, actor: Principal, period: Period | None = None, county_code: str | None = None):
    """The imported values (a query), for checking what a score was computed from."""
    require_score_reader(actor)
    query = select(IndicatorValue).order_by(IndicatorValue.period, IndicatorValue.county_code, IndicatorValue.indicator)
    if period is not None:
        query = query.where(IndicatorValue.period == period.label)
    if county_code is not None:
        query = query.where(IndicatorValue.county_code == county_code)
    return query


# ---------------------------------------------------------------- indicator 25

def indicator_25_value(session: Session, county_code: str, period: str) -> float | None:
    """工业危险废物综合管理 = 100 × (1 − landfill share), in %; None when nothing was processed.

    The landfill share (D1 kg ÷ all kg utilised or disposed, domain-reference §6) comes from the
    park statistics; its complement is the share kept out of landfill, higher is better ("趋零填埋").
    """
    from app.statistics.services import county_landfill  # lazily: statistics is a separate domain

    share = county_landfill(session, county_code, period)["landfill_share"]
    if share is None:
        return None
    return 100.0 * (1.0 - float(share))


def _computed_value(session: Session, indicator: Indicator, county_code: str, period: Period) -> Resolved:
    function = globals()[COMPUTED[indicator.computation]]
    try:
        value = function(session, county_code, period.label)
    except ModuleNotFoundError as exc:  # the statistics domain is not installed: missing, never guessed
        if not (exc.name or "").startswith("app.statistics"):
            raise
        return Resolved(None, period.label, "统计模块不可用 (the statistics module is not available)")
    except NotFound:  # the county is not in this database's reference data (counties table)
        return Resolved(None, period.label, "本库没有该县（市、区）的基础数据 (the county is not in the counties table)")
    if value is None:
        return Resolved(None, period.label, "本期没有利用或处置的工业危险废物 (no hazardous waste processed)")
    return Resolved(float(value), period.label)


# ---------------------------------------------------------------- scores

@dataclass(frozen=True)
class Resolved:
    """The value an indicator is scored on, and where it came from."""

    value: float | None
    basis: str  # the period(s) whose data were used
    note: str | None = None


def minmax_scores(values: dict[str, float | None], weight: float, direction: str) -> dict[str, float]:
    """Min–max across the counties that have a value; a county without one scores 0.

    Best value → ``weight``, worst → 0, linear in between; all equal (or a single value) → ``weight``.
    """
    present = {c: v for c, v in values.items() if v is not None}
    scores = {c: 0.0 for c in values}
    if not present:
        return scores
    low, high = min(present.values()), max(present.values())
    for county, value in present.items():
        if math.isclose(high, low, rel_tol=1e-12, abs_tol=1e-12):
            scores[county] = weight
        elif direction == "lower":
            scores[county] = weight * (high - value) / (high - low)
        else:
            scores[county] = weight * (value - low) / (high - low)
    return scores


def _stored_values(session: Session, period: Period) -> dict[tuple[str, str, int], float]:
    labels = [str(period.year), str(period.year - 1)] + [f"{period.year}-Q{q}" for q in range(1, 5)]
    rows = session.execute(select(IndicatorValue.county_code, IndicatorValue.period, IndicatorValue.indicator,
                                  IndicatorValue.value).where(IndicatorValue.period.in_(labels)))
    return {(c, p, n): v for c, p, n, v in rows}


def _cumulative(stored: dict, county: str, year: int, last_quarter: int, number: int) -> Resolved:
    """年度累计得分: the sum of the year's quarters up to ``last_quarter``; missing if one lacks a value."""
    quarters = [f"{year}-Q{q}" for q in range(1, last_quarter + 1)]
    found = [stored.get((county, q, number)) for q in quarters]
    lacking = [q for q, v in zip(quarters, found) if v is None]
    basis = quarters[0] if len(quarters) == 1 else f"{quarters[0]}..{quarters[-1]}"
    if lacking:
        note = ("备注：年度累计得分，缺少 " + ", ".join(lacking) + " (year-to-date cumulative; missing quarters)"
                if any(v is not None for v in found) else "备注：年度累计得分 (year-to-date cumulative)")
        return Resolved(None, basis, note)
    return Resolved(sum(found), basis, "备注：年度累计得分 (year-to-date cumulative)")


def _annual(stored: dict, county: str, period: Period, indicator: Indicator) -> Resolved:
    """A year's value; for the 年度累计得分 indicators without an imported annual value, the sum of
    the year's four quarters (the year's cumulative score), when all four have one."""
    value = stored.get((county, period.label, indicator.number))
    if value is not None or indicator.quarterly != "cumulative_year":
        return Resolved(value, period.label)
    found = _cumulative(stored, county, period.year, 4, indicator.number)
    if found.value is None and not any(stored.get((county, f"{period.year}-Q{q}", indicator.number)) is not None
                                       for q in range(1, 5)):
        return Resolved(None, period.label)
    return found


def resolve_values(session: Session, defn: Definition, period: Period) -> dict[str, dict[int, Resolved]]:
    """Per county and indicator, the value the period is scored on, with the 备注 rules applied."""
    stored = _stored_values(session, period)
    result: dict[str, dict[int, Resolved]] = {}
    for county in COUNTY_NAMES:
        per_indicator: dict[int, Resolved] = {}
        for number, indicator in defn.indicators.items():
            if indicator.computed:
                per_indicator[number] = _computed_value(session, indicator, county, period)
            elif not period.is_quarter:
                per_indicator[number] = _annual(stored, county, period, indicator)
            elif indicator.quarterly == "previous_year":
                basis = str(period.year - 1)
                per_indicator[number] = Resolved(stored.get((county, basis, number)), basis,
                                                 "备注：季度考核采用前一年度数据 (previous year's annual value)")
            elif indicator.quarterly == "cumulative_year":
                per_indicator[number] = _cumulative(stored, county, period.year, period.quarter, number)
            else:
                per_indicator[number] = Resolved(stored.get((county, period.label, number)), period.label)
        result[county] = per_indicator
    return result


def _rank(totals: dict[str, float]) -> dict[str, int]:
    """Competition ranking: equal totals share a rank, the next rank skips (1, 1, 3)."""
    rounded = {c: round(t, 6) for c, t in totals.items()}
    return {c: 1 + sum(1 for other in rounded.values() if other > mine) for c, mine in rounded.items()}


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def compute_scores(session: Session, defn: Definition, period: Period) -> dict[str, dict[str, Any]]:
    """Scores of every county for one period (no permission check: the callers check)."""
    resolved = resolve_values(session, defn, period)
    by_indicator: dict[int, dict[str, float]] = {
        number: minmax_scores({c: resolved[c][number].value for c in resolved}, ind.weight, ind.direction)
        for number, ind in defn.indicators.items()
    }
    totals = {c: sum(by_indicator[n][c] for n in defn.indicators) for c in resolved}
    ranks = _rank(totals)
    counties: dict[str, dict[str, Any]] = {}
    for county, values in resolved.items():
        second = {n: sum(by_indicator[i][county] for i in s.indicators) for n, s in defn.second_level.items()}
        counties[county] = {
            "county_code": county,
            "county_name": COUNTY_NAMES[county],
            "county_name_en": COUNTY_NAMES_EN[county],
            "total": totals[county],
            "rank": ranks[county],
            "missing": [n for n, r in values.items() if r.value is None],
            "has_data": any(r.value is not None for r in values.values()),
            "indicators": [
                {"number": n, "name": defn.indicators[n].name, "name_en": defn.indicators[n].name_en,
                 "unit": defn.indicators[n].unit, "weight": defn.indicators[n].weight,
                 "direction": defn.indicators[n].direction, "value": r.value, "score": by_indicator[n][county],
                 "missing": r.value is None, "basis": r.basis, "note": r.note}
                for n, r in values.items()
            ],
            "second_level": [{"number": n, "name": s.name, "name_en": s.name_en, "weight": s.weight,
                              "score": second[n]} for n, s in defn.second_level.items()],
            "first_level": [{"id": f.id, "name": f.name, "name_en": f.name_en, "weight": f.weight,
                             "score": sum(second[n] for n in f.second_level)} for f in defn.first_level],
        }
    return counties


def scores(session: Session, actor: Principal, period_text: Any, base_year: int | None = None) -> dict[str, Any]:
    """The index for a period: per county the scores, subtotals, total, rank, missing indicators and
    the change against the base year; counties ordered by rank, then code."""
    require_score_reader(actor)
    defn = definition(session)
    period = parse_period(period_text)
    base = base_year if base_year is not None else (defn.target_base_year or period.year - 1)
    if base >= period.year or base < MIN_YEAR:
        raise InvalidInput.field("base_year", f"the base year must be before {period.year} (and from {MIN_YEAR})")
    base_period = period.in_year(base)
    current = compute_scores(session, defn, period)
    previous = compute_scores(session, defn, base_period)
    rows = []
    for county, result in current.items():
        before = previous[county]
        base_total = before["total"] if before["has_data"] else None
        # No change without data on both sides: a county whose figures for the period have not
        # arrived yet is not "−100 %"; a base total of 0 gives no share either.
        change = ((result["total"] - base_total) / base_total) if base_total and result["has_data"] else None
        rows.append({
            **result,
            "total": _r(result["total"]),
            "indicators": [{**i, "score": _r(i["score"])} for i in result["indicators"]],
            "second_level": [{**s, "score": _r(s["score"])} for s in result["second_level"]],
            "first_level": [{**f, "score": _r(f["score"])} for f in result["first_level"]],
            "base_total": _r(base_total),
            "base_missing": before["missing"] if before["has_data"] else None,
            "change_vs_base_share": _r(change),
            "meets_target": None if change is None else change >= defn.target_change_share - 1e-9,
        })
    rows.sort(key=lambda r: (r["rank"], r["county_code"]))
    return {
        "period": period.label,
        "base_period": base_period.label,
        "base_year": base,
        "target_change_share": defn.target_change_share,
        "definition_version": defn.version,
        "max_score": defn.max_score,
        "scoring": "minmax",
        "problems": list(defn.problems),
        "counties": rows,
    }


# ---------------------------------------------------------------- the definition, as served

def definition_document(defn: Definition) -> dict[str, Any]:
    """The tree with weights, directions, the quarterly rules and the problems found when loading."""

    def indicator_doc(ind: Indicator) -> dict[str, Any]:
        return {"number": ind.number, "name": ind.name, "name_en": ind.name_en, "weight": ind.weight,
                "data_source": ind.data_source,
                "direction": ind.direction, "scoring": ind.scoring, "quarterly": ind.quarterly, "unit": ind.unit,
                "source": ind.source, "computation": ind.computation, "note": ind.note}

    return {
        "version": defn.version,
        "source": defn.source,
        "total_weight": defn.total_weight,
        "max_score": defn.max_score,
        "counts": {"first_level": len(defn.first_level), "second_level": len(defn.second_level),
                   "indicators": len(defn.indicators)},
        "first_level": [
            {"id": f.id, "name": f.name, "name_en": f.name_en, "weight": f.weight, "content": f.content,
             "second_level": [
                 {"number": s.number, "name": s.name, "name_en": s.name_en, "weight": s.weight,
                  "indicators": [indicator_doc(defn.indicators[n]) for n in s.indicators]}
                 for s in (defn.second_level[n] for n in f.second_level)]}
            for f in defn.first_level
        ],
        "quarterly_rules": {
            "same_period": "the value imported for that quarter",
            "previous_year": "the previous year's annual value (备注); quarterly imports are refused",
            "cumulative_year": "the sum of the year's quarters up to and including this one (年度累计得分); "
                               "missing when any of them has no value",
        },
        "remarks": defn.remarks,
        "target": {"base_year": defn.target_base_year, "change_share": defn.target_change_share},
        "counties": [{"code": c, "name": n, "name_en": COUNTY_NAMES_EN[c]} for c, n in COUNTY_NAMES.items()],
        "problems": list(defn.problems),
    }
