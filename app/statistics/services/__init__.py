"""Statistics per park, county and city for a month, quarter or year (product.md "Statistics").

Every figure is aggregated in SQL: the scope (the enterprises of a park, a county or the whole
city) and the period (UTC bounds of Asia/Shanghai calendar periods, computed here in Python)
are in the WHERE clause, and a request runs a fixed number of queries whatever the data size.
No database date functions are used, so SQLite and PostgreSQL give the same answers; the one
duration (red box-days) uses :class:`EpochSeconds`, compiled per dialect.

No Flask here: callers pass the session, the acting :class:`Principal` and ``now``.

Definitions (also returned in every response under ``definitions``):

- The scope's *enterprises* are the organisations whose park (park scope) or county (county scope)
  it is; the city is every organisation. Waste figures follow the waste of those enterprises:
  ledger records they keep, manifests they consign, boxes they run.
- Generated / into storage: ledger records of stage 产生 / 入库 dated in the period;
  in storage at the end: generated + returned − out of storage up to the end of the period.
- Shipped: lines of manifests picked up in the period (rejected ones included: they left).
- Received: weighed kg of manifests received in the period; accepted kg beside it.
- Processed: accepted kg of manifest lines processed in the period, by 利用/处置方式 code:
  utilised = every utilisation code (R1–R9, R15, C2, C3); incinerated = D10; cement kiln = C1;
  landfilled = the landfill codes (D1 only); other = the rest (D9, D16).
- Landfill share = landfilled ÷ processed (None when nothing was processed).
- Regeneration rate = waste carbon (``waste_carbon_codes`` of ledger_rules.yaml, 900-039-49…) of
  the scope's enterprises processed in the period that regeneration batches have consumed
  (``consumed_kg``, so far) ÷ that waste carbon processed.
- Regenerated fills: fills in the period at the scope's boxes naming a regeneration batch,
  by count and by kg, ÷ all fills in the period.
- Manifests (picked up in the period): on time = received and not overdue; overdue = received
  late, refused late, or still in transit past the deadline; discrepant and rejected as flagged.
- Boxes by colour at the end of the period (now for the current period) from the colour history;
  red box-days = days boxes spent red within the period (clipped to its bounds and to now).
- On-time replacement: a replacement in the period is late when the carbon it replaced was spent
  at the time, i.e. saturated (saturation_full) or past its predicted replacement date
  (replacement_overdue), as the replacement recorded it (``Fill.replaced_overdue``; fills recorded
  before that was kept: the box turned red for one of these between the two fills); on-time
  rate = on time ÷ replacements.
- Generation intensity = generated t ÷ imported industrial value added (10⁴ yuan) of the same
  scope and period (a quarter or year not imported as such: the sum of its months when all are
  imported); its year-on-year growth compares with the same period a year earlier.
"""

from __future__ import annotations

from app.statistics.services.definitions import (
    COLOURS,
    DEFAULT_BASE_YEAR,
    DEFINITIONS,
    LATE_REPLACEMENT_RULES,
    RECEIVED_STATES,
    TREATMENTS,
)
from app.statistics.services.figures import landfill_by_period, landfill_series
from app.statistics.services.gaps import empty_months
from app.statistics.services.periods import FIRST_YEAR, Period, check_not_future, month_of, months_until, parse_period
from app.statistics.services.report import compute, county_landfill, county_metrics, metrics
from app.statistics.services.scopes import CITY, Scope, authorise, can_read, readable_scopes, resolve_scope
from app.statistics.services.sql import EpochSeconds
from app.statistics.services.value_added import (
    ValueAddedFigure,
    import_value_added,
    list_value_added,
    value_added_scope,
)

__all__ = [
    "CITY",
    "COLOURS",
    "DEFAULT_BASE_YEAR",
    "DEFINITIONS",
    "FIRST_YEAR",
    "LATE_REPLACEMENT_RULES",
    "RECEIVED_STATES",
    "TREATMENTS",
    "EpochSeconds",
    "Period",
    "Scope",
    "ValueAddedFigure",
    "authorise",
    "can_read",
    "check_not_future",
    "compute",
    "county_landfill",
    "county_metrics",
    "empty_months",
    "import_value_added",
    "landfill_by_period",
    "landfill_series",
    "list_value_added",
    "metrics",
    "month_of",
    "months_until",
    "parse_period",
    "readable_scopes",
    "resolve_scope",
    "value_added_scope",
]
