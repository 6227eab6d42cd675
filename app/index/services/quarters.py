"""The value each county is scored on in a period: the 备注 quarterly rules and the computed indicator 25."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.common.errors import NotFound
from app.common.periods import Period
from app.index.definition import Definition, Indicator
from app.index.models import IndicatorValue
from app.index.services.reference import COUNTY_NAMES

# Computed indicators: computation name (synergy_index.yaml) → function name in this module, looked
# up at call time so that tests can replace the function.
COMPUTED = {"hazardous_waste_non_landfill_share": "indicator_25_value"}


@dataclass(frozen=True)
class Resolved:
    """The value an indicator is scored on, and where it came from."""

    value: float | None
    basis: str  # the period(s) whose data were used
    note: str | None = None


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
    assert indicator.computation is not None  # the definition loader requires it of a computed indicator
    function = globals()[COMPUTED[indicator.computation]]
    try:
        value = function(session, county_code, period.label)
    except ModuleNotFoundError as exc:  # the statistics domain is not installed: missing, never guessed
        if not (exc.name or "").startswith("app.statistics"):
            raise
        return Resolved(None, period.label, "统计模块不可用 (the statistics module is not available)")
    except NotFound:  # the county is not in this database's reference data (counties table)
        return Resolved(
            None, period.label, "本库没有该县（市、区）的基础数据 (the county is not in the counties table)"
        )
    if value is None:
        return Resolved(None, period.label, "本期没有利用或处置的工业危险废物 (no hazardous waste processed)")
    return Resolved(float(value), period.label)


def _stored_values(session: Session, period: Period) -> dict[tuple[str, str, int], float]:
    labels = [str(period.year), str(period.year - 1)] + [f"{period.year}-Q{q}" for q in range(1, 5)]
    rows = session.execute(
        select(IndicatorValue.county_code, IndicatorValue.period, IndicatorValue.indicator, IndicatorValue.value).where(
            IndicatorValue.period.in_(labels)
        )
    )
    return {(c, p, n): v for c, p, n, v in rows}


def _cumulative(stored: dict, county: str, year: int, last_quarter: int, number: int) -> Resolved:
    """年度累计得分: the sum of the year's quarters up to ``last_quarter``; missing if one lacks a value."""
    quarters = [f"{year}-Q{q}" for q in range(1, last_quarter + 1)]
    found: list[float | None] = [stored.get((county, q, number)) for q in quarters]
    lacking = [q for q, v in zip(quarters, found, strict=True) if v is None]
    basis = quarters[0] if len(quarters) == 1 else f"{quarters[0]}..{quarters[-1]}"
    if lacking:
        note = (
            "备注：年度累计得分，缺少 " + ", ".join(lacking) + " (year-to-date cumulative; missing quarters)"
            if any(v is not None for v in found)
            else "备注：年度累计得分 (year-to-date cumulative)"
        )
        return Resolved(None, basis, note)
    return Resolved(sum(v for v in found if v is not None), basis, "备注：年度累计得分 (year-to-date cumulative)")


def _annual(stored: dict, county: str, period: Period, indicator: Indicator) -> Resolved:
    """A year's value; for the 年度累计得分 indicators without an imported annual value, the sum of
    the year's four quarters (the year's cumulative score), when all four have one."""
    value = stored.get((county, period.label, indicator.number))
    if value is not None or indicator.quarterly != "cumulative_year":
        return Resolved(value, period.label)
    found = _cumulative(stored, county, period.year, 4, indicator.number)
    if found.value is None and not any(
        stored.get((county, f"{period.year}-Q{q}", indicator.number)) is not None for q in range(1, 5)
    ):
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
                per_indicator[number] = Resolved(
                    stored.get((county, basis, number)),
                    basis,
                    "备注：季度考核采用前一年度数据 (previous year's annual value)",
                )
            elif indicator.quarterly == "cumulative_year":
                per_indicator[number] = _cumulative(stored, county, period.year, period.number, number)
            else:
                per_indicator[number] = Resolved(stored.get((county, period.label, number)), period.label)
        result[county] = per_indicator
    return result
