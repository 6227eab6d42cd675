"""Demo extension: imported industrial value added for the demo parks, the counties and the city,
so that the generation intensity and its year-on-year growth show on the statistics page.

Figures are invented (a deterministic generator of its own, so the other extensions' random
sequences do not change): months of the last two years, their quarters and years, from
"台州市统计局" / the county statistics bureaux.
"""

from __future__ import annotations

import random
from datetime import datetime

from sqlalchemy.orm import Session

from app.accounts.reference import TAIZHOU_COUNTIES
from app.demo.data import DemoContext
from app.statistics.models import ValueAdded
from app.statistics.services import Period, month_of

SEED = 20250701


def value_added(session: Session, ctx: DemoContext, now: datetime) -> None:
    rng = random.Random(SEED)
    current = month_of(now)
    months: list[Period] = [current]
    while len(months) < 24:
        months.append(months[-1].previous())
    scopes: list[tuple[str, int | None, str | None, float]] = [("city", None, None, 60000.0)]
    scopes += [("county", None, code, 6000.0) for code, _name, _en in TAIZHOU_COUNTIES]
    scopes += [("park", park.id, None, 1500.0) for park in ctx.parks.values()]
    for kind, park_id, county_code, monthly in scopes:
        key = {"park": f"park:{park_id}", "county": f"county:{county_code}"}.get(kind, "city")
        source = "台州市统计局" if kind != "county" else "区县统计局"
        by_month = {m.label: round(monthly * rng.uniform(0.85, 1.15), 1) for m in months}
        figures = dict(by_month)
        for m in months:  # quarters and years whose months are all present
            for period in (Period("quarter", m.year, (m.number - 1) // 3 + 1), Period("year", m.year)):
                labels = _months_of(period)
                if all(label in by_month for label in labels):
                    figures[period.label] = round(sum(by_month[label] for label in labels), 1)
        for label, value in figures.items():
            session.add(
                ValueAdded(
                    scope=kind,
                    scope_key=key,
                    park_id=park_id,
                    county_code=county_code,
                    period=label,
                    value_added_10k_yuan=value,
                    source_department=source,
                    imported_at=now,
                )
            )
    session.flush()


def _months_of(period: Period) -> list[str]:
    return [Period("month", period.year, period.first_month + i).label for i in range(period.months)]
