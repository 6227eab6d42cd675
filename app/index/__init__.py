"""The county synergy index (台州市县（市、区）减污降碳协同指数, 附件2 of the Taizhou plan).

- :mod:`app.index.definition`: the 5/15/32 indicator tree from ``app/data/synergy_index.yaml``
  (or ``$RULES_DIR``), validated when loaded; weight mismatches are reported, never fixed.
- :mod:`app.index.importing`: rows from JSON, CSV or XLSX (Chinese or English headers).
- :mod:`app.index.services`: all-or-nothing imports (upsert, with an audit of replaced values)
  and the scores: min–max per indicator across the nine counties, subtotals per level, rank,
  missing data, the 备注 rules for quarters, and the change against a base year.
- Indicator 25 is computed from this system's statistics (share of hazardous waste kept out of landfill).
"""
