"""Demo extension: indicator values of the county synergy index for the last two full years, so
that the index page ranks the nine counties and shows the change against the base year.

The figures are invented (a deterministic generator of its own, so the other extensions' random
sequences do not change) within plausible ranges for each kind of indicator, and their source
department says so ("…（示例数据）"). Indicator 25 is not imported: it is computed from the
demo's own manifests.
"""

from __future__ import annotations

import random
from datetime import datetime

from sqlalchemy.orm import Session

from app.accounts.reference import TAIZHOU_COUNTIES
from app.demo.data import DemoContext
from app.index.definition import Indicator
from app.index.models import IndicatorValue
from app.index.services import definition

SEED = 20251104

# (low, high) of an invented annual value, by unit; indicators without a unit are scores out of
# their weight (e.g. 生物多样性保护, 协同创新能力).
_RANGES = {"μg/m³": (18.0, 32.0), "%": (55.0, 98.0)}
_RATES = (-3.0, 12.0)  # improvement, decline and growth rates, %


def _invented(rng: random.Random, indicator: Indicator) -> float:
    if (
        indicator.unit == "%"
        and any(word in indicator.name for word in ("率", "增长"))
        and not indicator.name.endswith(("比例", "利用率"))
    ):
        low, high = _RATES
    elif indicator.unit in _RANGES:
        low, high = _RANGES[indicator.unit]
    elif indicator.unit is None:
        low, high = 0.4 * indicator.weight, indicator.weight
    else:  # intensities and other measured quantities: a relative scale
        low, high = 0.5, 1.5
    return round(rng.uniform(low, high), 2)


def synergy_index_values(session: Session, ctx: DemoContext, now: datetime) -> None:
    rng = random.Random(SEED)
    defn = definition(session)
    for year in (now.year - 2, now.year - 1):
        for code, _name, _en in TAIZHOU_COUNTIES:
            for indicator in defn.indicators.values():
                if indicator.computed:
                    continue
                session.add(
                    IndicatorValue(
                        county_code=code,
                        period=str(year),
                        indicator=indicator.number,
                        value=_invented(rng, indicator),
                        unit=indicator.unit,
                        source_department=f"{indicator.data_source}（示例数据）"[:120],
                        imported_at=now,
                    )
                )
    session.flush()
