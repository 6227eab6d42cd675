"""A batch's items checked into reading tuples (``R_*``), or rejected with their errors.

:func:`check_items` runs for every reading of every batch (the hot path of ingest): it is
written for speed, and the names it uses are this module's globals.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from app.common.errors import DomainError
from app.common.timeutil import as_utc
from app.telemetry import wire
from app.telemetry.integration import epoch_us, hour_of
from app.telemetry.models import MEASURES
from app.telemetry.wire import TypedReadings

FIELDS = frozenset({"box_code", "ts", "running", *MEASURES})
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


class BatchTooLarge(DomainError):
    status = 413
    title = "Payload too large"


class BadBatch(DomainError):
    """The top level is not a list of readings (nor {"readings": [...]})."""

    status = 422
    title = "Invalid input"


# ---------------------------------------------------------------- parsing


def readings_of(body: Any, max_batch: int) -> list:
    """The items of a batch body: a list, or an object with a "readings" list."""
    items = body.get("readings") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise BadBatch(
            'expected a list of readings or {"readings": [...]}',
            errors={"readings": ["a list of readings is required"]},
        )
    if len(items) > max_batch:
        raise BatchTooLarge(
            f"a batch holds at most {max_batch} readings, this one {len(items)}; split it",
            errors={"readings": [f"at most {max_batch} items"]},
            max_items=max_batch,
        )
    return items


def _parse_ts(value: Any) -> datetime | None:
    if isinstance(value, str) and len(value) >= 16:
        try:
            return as_utc(datetime.fromisoformat(value))
        except (ValueError, OverflowError):  # OverflowError: e.g. year 1 with a positive offset
            return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        # Unix epoch seconds, as many gateways send them.
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


# A checked reading is a tuple (one is made per reading, so it must be cheap), with these fields.
# BOUND is the timestamp as bound to the database, HOUR its hour for the roll-ups: on SQLite the
# text that SQLAlchemy's DATETIME stores (so that rows written here and through the ORM compare
# and sort alike), on PostgreSQL the aware UTC datetime.
R_INDEX, R_CODE, R_TS, R_BOUND, R_HOUR = range(5)
R_MEASURE = 5  # MEASURES follow, in their order, then ``running``
R_RUNNING = R_MEASURE + len(MEASURES)
R_US = R_RUNNING + 1  # the timestamp as whole microseconds since the epoch (for the integral)
_MEASURE_ORDER = (
    "inlet_mg_m3",
    "outlet_mg_m3",
    "airflow_m3_h",  # required
    "pressure_drop_pa",
    "inlet_temp_c",
    "bed_temp_c",
    "rh_pct",
)  # optional
if tuple(MEASURES) != _MEASURE_ORDER or [MEASURES[m][3] for m in _MEASURE_ORDER] != [True] * 3 + [False] * 4:
    raise RuntimeError("check_items() spells out each measure of MEASURES: update it with the model")
_UNSEEN = object()
_GET_ALL = itemgetter("box_code", "ts", *_MEASURE_ORDER, "running")


def _ts_entry(value: Any, latest_allowed: datetime, sqlite: bool) -> tuple[datetime, Any, Any, int] | None:
    """(UTC ts, bound ts, bound hour, epoch microseconds) of an acceptable timestamp, else None."""
    ts = _parse_ts(value)
    if ts is None or not EARLIEST <= ts <= latest_allowed:
        return None
    if sqlite:
        bound = ts.isoformat(" ", "microseconds")[:26]  # SQLAlchemy's "YYYY-MM-DD HH:MM:SS.ffffff"
        return ts, bound, bound[:13] + ":00:00.000000", epoch_us(ts)
    return ts, ts, hour_of(ts), epoch_us(ts)


def bind_ts(ts: datetime, sqlite: bool) -> Any:
    """An aware datetime as :func:`check_items` binds it (and as UTCDateTime stores it)."""
    ts = ts.astimezone(UTC)
    return ts.isoformat(" ", "microseconds")[:26] if sqlite else ts


def check_items(items: list, latest_allowed: datetime, sqlite: bool) -> tuple[list[tuple], list[dict[str, Any]]]:
    """The valid readings of a batch as tuples (see ``R_*``), and the rejected items with their errors.

    Written for speed, because it runs for every reading: one pass, the fields read once into
    locals, numbers checked by exact type (``bool`` is neither ``int`` nor ``float`` here) and
    range, each distinct timestamp string parsed and converted once per batch (gateways send
    many boxes' readings of one instant). Only a rejected item goes through :func:`_item_errors`,
    which says what is wrong with it.
    """
    if type(items) is TypedReadings:
        return _check_typed(items, latest_allowed, sqlite)
    rows: list[tuple] = []
    append = rows.append
    rejected: list[dict[str, Any]] = []
    memo: dict[str, Any] = {}
    memo_get = memo.get
    known_fields = FIELDS.issuperset
    ts_entry = _ts_entry
    (
        (_, in_lo, in_hi, _),
        (_, out_lo, out_hi, _),
        (_, air_lo, air_hi, _),
        (_, pd_lo, pd_hi, _),
        (_, it_lo, it_hi, _),
        (_, bt_lo, bt_hi, _),
        (_, rh_lo, rh_hi, _),
    ) = MEASURES.values()
    get_all = _GET_ALL
    n_fields = len(FIELDS)
    for index, item in enumerate(items):
        if type(item) is dict and known_fields(item):
            if len(item) == n_fields:  # every field present: one C call reads them all
                code, raw_ts, inlet, outlet, airflow, pdrop, in_temp, bed_temp, rh, running = get_all(item)
            else:
                get = item.get
                code, raw_ts, running = get("box_code"), get("ts"), get("running", True)
                inlet, outlet, airflow = get("inlet_mg_m3"), get("outlet_mg_m3"), get("airflow_m3_h")
                pdrop, in_temp, bed_temp, rh = (
                    get("pressure_drop_pa"),
                    get("inlet_temp_c"),
                    get("bed_temp_c"),
                    get("rh_pct"),
                )
            if type(raw_ts) is str:
                entry = memo_get(raw_ts, _UNSEEN)
                if entry is _UNSEEN:
                    entry = memo[raw_ts] = ts_entry(raw_ts, latest_allowed, sqlite)
            else:
                entry = ts_entry(raw_ts, latest_allowed, sqlite)
            if running is not True and running is not False:
                running = (running == 1) if type(running) is int and (running == 0 or running == 1) else None
            if (
                entry is not None
                and running is not None
                and type(code) is str
                and code
                and not code.isspace()
                # NaN fails every range test
                and (type(inlet) is float or type(inlet) is int)
                and in_lo <= inlet <= in_hi
                and (type(outlet) is float or type(outlet) is int)
                and out_lo <= outlet <= out_hi
                and (type(airflow) is float or type(airflow) is int)
                and air_lo <= airflow <= air_hi
                and (pdrop is None or ((type(pdrop) is float or type(pdrop) is int) and pd_lo <= pdrop <= pd_hi))
                and (
                    in_temp is None or ((type(in_temp) is float or type(in_temp) is int) and it_lo <= in_temp <= it_hi)
                )
                and (
                    bed_temp is None
                    or ((type(bed_temp) is float or type(bed_temp) is int) and bt_lo <= bed_temp <= bt_hi)
                )
                and (rh is None or ((type(rh) is float or type(rh) is int) and rh_lo <= rh <= rh_hi))
            ):
                ts, bound, hour, us = entry
                append(
                    (index, code, ts, bound, hour, inlet, outlet, airflow, pdrop, in_temp, bed_temp, rh, running, us)
                )
                continue
            rejected.append(
                {
                    "index": index,
                    "box_code": item.get("box_code"),
                    "errors": _item_errors(item, _parse_ts(raw_ts), latest_allowed),
                }
            )
        elif type(item) is dict:
            rejected.append(
                {
                    "index": index,
                    "box_code": item.get("box_code"),
                    "errors": _item_errors(item, _parse_ts(item.get("ts")), latest_allowed),
                }
            )
        else:
            rejected.append({"index": index, "box_code": None, "errors": {"_item": ["expected an object"]}})
    return rows, rejected


def _check_typed(
    items: TypedReadings, latest_allowed: datetime, sqlite: bool
) -> tuple[list[tuple], list[dict[str, Any]]]:
    """:func:`check_items` for readings that msgspec has typed and range-checked already
    (:mod:`app.telemetry.wire`): what is left is the box code's presence and the timestamp."""
    rows: list[tuple] = []
    append = rows.append
    rejected: list[dict[str, Any]] = []
    memo: dict[Any, Any] = {}
    memo_get = memo.get
    ts_entry = _ts_entry
    for index, r in enumerate(items):
        code, raw_ts = r.box_code, r.ts
        entry = memo_get(raw_ts, _UNSEEN)
        if entry is _UNSEEN:
            entry = memo[raw_ts] = ts_entry(raw_ts, latest_allowed, sqlite)
        if entry is not None and code and not code.isspace():
            ts, bound, hour, us = entry
            append(
                (
                    index,
                    code,
                    ts,
                    bound,
                    hour,
                    r.inlet_mg_m3,
                    r.outlet_mg_m3,
                    r.airflow_m3_h,
                    r.pressure_drop_pa,
                    r.inlet_temp_c,
                    r.bed_temp_c,
                    r.rh_pct,
                    r.running,
                    us,
                )
            )
        else:
            item = wire.as_item(r)
            rejected.append(
                {"index": index, "box_code": code, "errors": _item_errors(item, _parse_ts(raw_ts), latest_allowed)}
            )
    return rows, rejected


def _item_errors(item: dict[str, Any], ts: datetime | None, latest_allowed: datetime) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for name in item.keys() - FIELDS:
        errors[name] = ["unknown field"]
    code = item.get("box_code")
    if not isinstance(code, str) or not code.strip():
        errors["box_code"] = ["required"]
    if item.get("ts") is None:
        errors["ts"] = ["required"]
    elif ts is None:
        errors["ts"] = ["not an ISO 8601 date-time (no offset means Asia/Shanghai) or epoch seconds"]
    elif ts > latest_allowed:
        errors["ts"] = ["in the future"]
    elif ts < EARLIEST:
        errors["ts"] = ["before 2000-01-01"]
    for name, (unit, lo, hi, required) in MEASURES.items():
        value = item.get(name)
        if value is None:
            if required:
                errors[name] = ["required"]
        elif type(value) not in (int, float):
            errors[name] = ["not a number"]
        elif not lo <= value <= hi:
            errors[name] = [
                "must not be negative" if lo == 0 and value < 0 else f"outside the sensor range {lo:g}–{hi:g} {unit}"
            ]
    running = item.get("running", True)
    if not (running in (0, 1) and type(running) in (bool, int)):
        errors["running"] = ["true or false"]
    return errors
