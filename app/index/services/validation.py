"""Validation of imported rows as departments type them: counties, periods, numbers, percentages and units."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from app.common.errors import InvalidInput
from app.common.limits import Limits, limit
from app.common.periods import Period
from app.index.definition import Definition, Indicator
from app.index.importing import Formula, Percent, RawRows
from app.index.services.reference import COUNTY_BY_NAME, COUNTY_NAMES, parse_period

SOURCE_MAX = 120
UNIT_MAX = 30
FIELDS_WITH_FORMULAS = ("county_code", "period", "indicator", "value", "source_department", "unit")


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


def validate_rows(defn: Definition, raw: RawRows, plausibility: Limits | None = None) -> list[ImportRow]:
    """Every row checked, every problem collected; :class:`InvalidInput` if any row is bad.
    ``plausibility``: the limits in force (the caller's wiring's; by default :func:`limits`)."""
    counties = ", ".join(f"{c} {n}" for c, n in COUNTY_NAMES.items())
    bad: dict[str, dict[str, list[str]]] = {}
    good: list[ImportRow] = []
    seen: dict[tuple[str, str, int], int] = {}
    for place, fields in raw.rows:
        errors: dict[str, list[str]] = {}

        def error(name: str, message: str, errors: dict[str, list[str]] = errors) -> None:
            errors.setdefault(name, []).append(message)

        if "_row" in fields:
            error("_row", fields["_row"])
            bad[str(place)] = errors
            continue
        for name in fields.get("_unknown", ()):
            error(name, "unknown field")
        for name in FIELDS_WITH_FORMULAS:
            if isinstance(fields.get(name), Formula):
                error(
                    name,
                    f"the cell holds the formula {fields[name].text} without a saved result: open the file "
                    f"in Excel (or WPS) and save it again, or paste the values",
                )
                fields = {**fields, name: ""}  # reported; not "required" as well

        county = _county(fields.get("county_code"))
        if _blank(fields.get("county_code")):
            if "county_code" not in errors:
                error("county_code", "required")
        elif county is None:
            error(
                "county_code",
                f"{fields.get('county_code')!r} is not a Taizhou county-level division; one of {counties}",
            )

        period = None
        if _blank(fields.get("period")):
            if "period" not in errors:
                error("period", "required")
        else:
            try:
                period = parse_period(fields.get("period"))
            except InvalidInput as exc:
                for message in exc.errors["period"]:
                    error("period", message)

        indicator: Indicator | None = None
        number = _integer(fields.get("indicator"))
        if _blank(fields.get("indicator")):
            if "indicator" not in errors:
                error("indicator", "required")
        elif number is None or number not in defn.indicators:
            error(
                "indicator", f"{fields.get('indicator')!r} is not an indicator of the index: 1–{len(defn.indicators)}"
            )
        else:
            indicator = defn.indicators[number]
            if indicator.computed:
                error(
                    "indicator",
                    f"indicator {number} ({indicator.name}) is computed from this system's "
                    f"statistics and cannot be imported",
                )
            elif period is not None and period.is_quarter and indicator.quarterly == "previous_year":
                error(
                    "period",
                    f"indicator {number} ({indicator.name}) is assessed in quarters with the previous "
                    f"year's annual value (备注): import the annual value, e.g. period "
                    f"{period.year - 1}, not {period.label}",
                )

        parsed = _number(fields.get("value"))
        value = parsed.value if parsed is not None else None
        shown = fields.get("value")
        shown = f"{shown.value:g}%" if isinstance(shown, Percent) else repr(shown)  # as the person sees it
        if _blank(fields.get("value")):
            if "value" not in errors:
                error("value", "required")
        elif parsed is None:
            error("value", f"{shown} is not a number (e.g. 92.5, 1,234.5 or 12%)")
        elif (problem := limit("index_value", plausibility).check(parsed.value)) is not None:
            # Imports bypass the JSON schema: the plausibility rule file bounds them here, so the
            # min–max scoring never meets 1e308 (hardening: every accepted number is bounded).
            error("value", f"{shown} {problem}")

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
        if parsed is not None and parsed.percent and indicator is not None and indicator.unit and indicator.unit != "%":
            error(
                "value",
                f"{shown} is a percentage, but indicator {indicator.number} "
                f"({indicator.name}) is measured in {indicator.unit}",
            )
        if indicator is not None and indicator.unit and unit is not None and _same_unit(unit, indicator.unit):
            unit = indicator.unit  # stored as the definition writes it
        elif unit is None and parsed is not None and parsed.percent:
            unit = "%"

        if (
            not errors
            and county is not None
            and period is not None
            and indicator is not None
            and value is not None
            and isinstance(source, str)
        ):  # (an error was recorded if it is not)
            row = ImportRow(
                place=place,
                county_code=county,
                period=period,
                indicator=indicator.number,
                value=value,
                unit=unit or indicator.unit,
                source_department=source.strip(),
            )
            if row.key in seen:
                error("indicator", f"the same county, period and indicator as {raw.place_name} {seen[row.key]}")
            else:
                seen[row.key] = place
                good.append(row)
        if errors:
            bad[str(place)] = errors
    if bad:
        where = (
            "positions in the list, from 0"
            if raw.place_name == "index"
            else "lines of the file as a spreadsheet or text editor numbers them"
        )
        raise InvalidInput(
            f"{len(bad)} of {len(raw.rows)} rows are invalid ({where}); nothing was imported.",
            errors={"rows": bad},
            place=raw.place_name,
        )
    return good
