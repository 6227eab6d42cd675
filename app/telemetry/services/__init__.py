"""Telemetry services: ingest of sensor readings, the per-box integration state, roll-ups,
reading back and dead letters. No Flask here: callers pass the session, the acting
:class:`Principal` and the settings.

One module per concern (each imports only those before it, no cycles):

- :mod:`.settings` — :class:`Settings`, from the Flask config or the defaults;
- :mod:`.checks` — a batch's items checked into reading tuples (``R_*``) or rejected with errors;
- :mod:`.rollups` — a batch's hourly sums, written with one upsert;
- :mod:`.states` — the per-box sensor state: locked, integrated, stored, rebuilt per fill;
- :mod:`.readings` — a batch's readings stored (COPY on PostgreSQL), already stored ones told apart;
- :mod:`.changes` — colour changes dated at a batch's one reading without a history replay;
- :mod:`.ingestion` — a batch stored: scope, boxes, readings, states, roll-ups, colour refresh;
- :mod:`.readback` — a box's raw readings and its hourly or daily roll-ups;
- :mod:`.dead_letter_store` — messages that could not be ingested, for operators.

(No module is named after a function it holds, e.g. ``ingest`` or ``dead_letters``: the function,
re-exported here, would hide the module on this package.)

The names below are those code outside the package uses (``services.ingest`` …). A test that
replaces one of them must patch the module that looks it up, not this package: e.g.
``app.telemetry.services.ingestion.refresh_colours`` for the colour refresh of a batch.
"""

from __future__ import annotations

from app.common.errors import DomainError
from app.telemetry.services.checks import (
    EARLIEST,
    FIELDS,
    R_BOUND,
    R_CODE,
    R_HOUR,
    R_INDEX,
    R_MEASURE,
    R_RUNNING,
    R_TS,
    R_US,
    BadBatch,
    BatchTooLarge,
    _item_errors,
    _parse_ts,
    bind_ts,
    check_items,
    readings_of,
)
from app.telemetry.services.dead_letter_store import PAYLOAD_KEEP, dead_letters, record_dead_letter, redact
from app.telemetry.services.ingestion import (
    READING_COLUMNS,
    UNKNOWN_BOX,
    IngestResult,
    ingest,
    insert_readings,
    sqlite_writer_lock,
)
from app.telemetry.services.readback import RAW_LIMIT, raw_readings, rollup_readings
from app.telemetry.services.settings import Settings
from app.telemetry.services.states import (
    LATEST_FIELDS,
    integrate_in_order,
    lock_states,
    open_interval_kg,
    store_states,
    sync_state_to_fill,
)

__all__ = [
    "EARLIEST",
    "FIELDS",
    "LATEST_FIELDS",
    "PAYLOAD_KEEP",
    "RAW_LIMIT",
    "READING_COLUMNS",
    "R_BOUND",
    "R_CODE",
    "R_HOUR",
    "R_INDEX",
    "R_MEASURE",
    "R_RUNNING",
    "R_TS",
    "R_US",
    "UNKNOWN_BOX",
    "BadBatch",
    "BatchTooLarge",
    "DomainError",
    "IngestResult",
    "Settings",
    "_item_errors",
    "_parse_ts",
    "bind_ts",
    "check_items",
    "dead_letters",
    "ingest",
    "insert_readings",
    "integrate_in_order",
    "lock_states",
    "open_interval_kg",
    "raw_readings",
    "readings_of",
    "record_dead_letter",
    "redact",
    "rollup_readings",
    "sqlite_writer_lock",
    "store_states",
    "sync_state_to_fill",
]
