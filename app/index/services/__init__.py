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

from app.common.periods import Period
from app.index.services.access import (
    can_import,
    can_read_scores,
    is_city_regulator,
    require_importer,
    require_score_reader,
)
from app.index.services.document import definition_document
from app.index.services.quarters import COMPUTED, Resolved, indicator_25_value, resolve_values
from app.index.services.reference import COUNTY_BY_NAME, COUNTY_NAMES, COUNTY_NAMES_EN, MAX_YEAR, MIN_YEAR, parse_period
from app.index.services.rules import definition
from app.index.services.scoring import compute_scores, minmax_scores, scores
from app.index.services.validation import FIELDS_WITH_FORMULAS, SOURCE_MAX, UNIT_MAX, ImportRow, Number, validate_rows
from app.index.services.values import IMPORT_LOCK_KEY, import_values, list_values

__all__ = [
    "COMPUTED",
    "COUNTY_BY_NAME",
    "COUNTY_NAMES",
    "COUNTY_NAMES_EN",
    "FIELDS_WITH_FORMULAS",
    "IMPORT_LOCK_KEY",
    "MAX_YEAR",
    "MIN_YEAR",
    "SOURCE_MAX",
    "UNIT_MAX",
    "ImportRow",
    "Number",
    "Period",
    "Resolved",
    "can_import",
    "can_read_scores",
    "compute_scores",
    "definition",
    "definition_document",
    "import_values",
    "indicator_25_value",
    "is_city_regulator",
    "list_values",
    "minmax_scores",
    "parse_period",
    "require_importer",
    "require_score_reader",
    "resolve_values",
    "scores",
    "validate_rows",
]
