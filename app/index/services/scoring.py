"""The scores: min–max per indicator, subtotals, totals, ranks and the change against the base year."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.orm import Session

from app.accounts.services import Principal
from app.common.errors import InvalidInput
from app.common.periods import Period
from app.index.definition import Definition
from app.index.services.access import require_score_reader
from app.index.services.quarters import resolve_values
from app.index.services.reference import COUNTY_NAMES, COUNTY_NAMES_EN, MIN_YEAR, parse_period
from app.index.services.rules import definition


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
                {
                    "number": n,
                    "name": defn.indicators[n].name,
                    "name_en": defn.indicators[n].name_en,
                    "unit": defn.indicators[n].unit,
                    "weight": defn.indicators[n].weight,
                    "direction": defn.indicators[n].direction,
                    "value": r.value,
                    "score": by_indicator[n][county],
                    "missing": r.value is None,
                    "basis": r.basis,
                    "note": r.note,
                }
                for n, r in values.items()
            ],
            "second_level": [
                {"number": n, "name": s.name, "name_en": s.name_en, "weight": s.weight, "score": second[n]}
                for n, s in defn.second_level.items()
            ],
            "first_level": [
                {
                    "id": f.id,
                    "name": f.name,
                    "name_en": f.name_en,
                    "weight": f.weight,
                    "score": sum(second[n] for n in f.second_level),
                }
                for f in defn.first_level
            ],
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
    base_period = period.same_period_in(base)
    current = compute_scores(session, defn, period)
    previous = compute_scores(session, defn, base_period)
    rows = []
    for county, result in current.items():
        before = previous[county]
        base_total = before["total"] if before["has_data"] else None
        # No change without data on both sides: a county whose figures for the period have not
        # arrived yet is not "−100 %"; a base total of 0 gives no share either.
        change = ((result["total"] - base_total) / base_total) if base_total and result["has_data"] else None
        rows.append(
            {
                **result,
                "total": _r(result["total"]),
                "indicators": [{**i, "score": _r(i["score"])} for i in result["indicators"]],
                "second_level": [{**s, "score": _r(s["score"])} for s in result["second_level"]],
                "first_level": [{**f, "score": _r(f["score"])} for f in result["first_level"]],
                "base_total": _r(base_total),
                "base_missing": before["missing"] if before["has_data"] else None,
                "change_vs_base_share": _r(change),
                "meets_target": None if change is None else change >= defn.target_change_share - 1e-9,
            }
        )
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
