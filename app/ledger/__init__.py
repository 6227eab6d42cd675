"""The hazardous-waste ledger (台账), stock on hand, transfer manifests (联单) and mass-balance anomalies.

Design (issue 4):

- Ledger (HJ 1259-2022): one ``generation`` record per batch (a replacement's waste carbon, or a
  waste recorded by hand) with its ``storage`` record; ``out_of_storage`` and ``sent_out`` records
  per source batch at pickup; ``returned`` records when a receiver refuses waste. Kept in kg,
  reported in t. Waste codes come from the catalogue edition in :mod:`app.ledger.catalogue`.
- Stock per (enterprise, waste code) = generated − shipped + returned; a row in ``waste_stock``
  holds on-hand and reserved kg and is the lock taken while stock moves (SELECT … FOR UPDATE on
  PostgreSQL, the single writer lock on SQLite: :mod:`app.ledger.locking`).
- Manifest states: draft → submitted (reserves stock) → in_transit (carrier pickup: stock leaves)
  → received (per-line weighed/accepted kg; a refused part returns to stock) → processed → closed;
  rejected (everything returns to stock); cancelled (before pickup only). ``process`` is the last
  action, so it records ``processed`` and closes in the same step: both events are in the history,
  the state ends at ``closed``.
- Numbers: year + province/prefecture (from the consignor's county code, 3310 for Taizhou) + a
  6-digit serial per (year, prefecture) from ``manifest_counters`` (UPDATE … RETURNING), unique.
- Flags: discrepant when a line's received kg differs from the shipped kg by more than the
  tolerance in ``ledger_rules.yaml``; overdue when received after N working days from pickup
  (``holidays.yaml``), or still in transit past that; late when a paper manifest is entered more
  than M working days after the transfer.
"""
