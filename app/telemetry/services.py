"""Ingest of sensor readings, the per-box integration state, roll-ups and dead letters.

No Flask here: callers pass the session, the acting :class:`Principal` and the settings.

One batch costs a fixed number of statements however many readings it carries: boxes in one
query, states in one (locked) query, readings in one multi-row INSERT … ON CONFLICT DO NOTHING
per 1,000, roll-ups in one upsert, states in one UPDATE executed for all, then one colour
refresh of the touched boxes (given the fills and states just read). The work per reading is
constant: its checks (in C for a well-typed batch, see :mod:`app.telemetry.wire`), its row, its
roll-up sums and its term of the integral, in one pass with the load when the readings are newer
than those integrated; nothing re-reads a box's history. Only late readings (older than a box's
newest) cost two index look-ups each, and a batch that carries already stored readings inserts
twice (see :func:`insert_readings`).
"""
from __future__ import annotations

import fcntl
import math
import re
from bisect import bisect_left, bisect_right
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from itertools import chain, groupby
from operator import itemgetter
from typing import Any, Iterable

import orjson
from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.orm import Session, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from app.accounts.services import Principal
from app.boxes import codes
from app.boxes.models import Box, Fill
from app.boxes.services import refresh_colours
from app.common.errors import DomainError, Forbidden
from app.common.timeutil import SHANGHAI, as_utc, utcnow
from app.telemetry import DEFAULTS, wire
from app.telemetry.integration import HOUR_US, Point, epoch_us, hold_kg, hour_of, merge, rate_kg_h
from app.telemetry.models import MEASURES, ROLLUP_MEASURES, BoxSensorState, DeadLetter, ReadingHour, SensorReading
from app.telemetry.wire import TypedReadings

FIELDS = frozenset({"box_code", "ts", "running", *MEASURES})
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
UNKNOWN_BOX = "unknown box"


class BatchTooLarge(DomainError):
    status = 413
    title = "Payload too large"


class BadBatch(DomainError):
    """The top level is not a list of readings (nor {"readings": [...]})."""

    status = 422
    title = "Invalid input"


@dataclass(frozen=True)
class Settings:
    max_interval_s: float = DEFAULTS["TELEMETRY_MAX_INTERVAL_S"]
    max_batch: int = DEFAULTS["TELEMETRY_MAX_BATCH"]
    max_future_s: float = DEFAULTS["TELEMETRY_MAX_FUTURE_S"]
    load_tau_h: float = DEFAULTS["TELEMETRY_LOAD_TAU_H"]

    @classmethod
    def from_config(cls, config) -> "Settings":
        return cls(
            max_interval_s=float(config.get("TELEMETRY_MAX_INTERVAL_S", cls.max_interval_s)),
            max_batch=int(config.get("TELEMETRY_MAX_BATCH", cls.max_batch)),
            max_future_s=float(config.get("TELEMETRY_MAX_FUTURE_S", cls.max_future_s)),
            load_tau_h=float(config.get("TELEMETRY_LOAD_TAU_H", cls.load_tau_h)),
        )


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected_items: list[dict[str, Any]] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.rejected_items)


# ---------------------------------------------------------------- parsing

def readings_of(body: Any, max_batch: int) -> list:
    """The items of a batch body: a list, or an object with a "readings" list."""
    items = body.get("readings") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise BadBatch('expected a list of readings or {"readings": [...]}',
                       errors={"readings": ["a list of readings is required"]})
    if len(items) > max_batch:
        raise BatchTooLarge(f"a batch holds at most {max_batch} readings, this one {len(items)}; split it",
                            errors={"readings": [f"at most {max_batch} items"]}, max_items=max_batch)
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
            return datetime.fromtimestamp(value, timezone.utc)
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
_MEASURE_ORDER = ("inlet_mg_m3", "outlet_mg_m3", "airflow_m3_h",  # required
                  "pressure_drop_pa", "inlet_temp_c", "bed_temp_c", "rh_pct")  # optional
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
    ts = ts.astimezone(timezone.utc)
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
    (_, in_lo, in_hi, _), (_, out_lo, out_hi, _), (_, air_lo, air_hi, _), (_, pd_lo, pd_hi, _), \
        (_, it_lo, it_hi, _), (_, bt_lo, bt_hi, _), (_, rh_lo, rh_hi, _) = MEASURES.values()
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
                pdrop, in_temp, bed_temp, rh = get("pressure_drop_pa"), get("inlet_temp_c"), get("bed_temp_c"), get("rh_pct")
            if type(raw_ts) is str:
                entry = memo_get(raw_ts, _UNSEEN)
                if entry is _UNSEEN:
                    entry = memo[raw_ts] = ts_entry(raw_ts, latest_allowed, sqlite)
            else:
                entry = ts_entry(raw_ts, latest_allowed, sqlite)
            if running is not True and running is not False:
                running = (running == 1) if type(running) is int and (running == 0 or running == 1) else None
            if (entry is not None and running is not None and type(code) is str and code and not code.isspace()
                    # NaN fails every range test
                    and (type(inlet) is float or type(inlet) is int) and in_lo <= inlet <= in_hi
                    and (type(outlet) is float or type(outlet) is int) and out_lo <= outlet <= out_hi
                    and (type(airflow) is float or type(airflow) is int) and air_lo <= airflow <= air_hi
                    and (pdrop is None or (type(pdrop) is float or type(pdrop) is int) and pd_lo <= pdrop <= pd_hi)
                    and (in_temp is None or (type(in_temp) is float or type(in_temp) is int) and it_lo <= in_temp <= it_hi)
                    and (bed_temp is None or (type(bed_temp) is float or type(bed_temp) is int) and bt_lo <= bed_temp <= bt_hi)
                    and (rh is None or (type(rh) is float or type(rh) is int) and rh_lo <= rh <= rh_hi)):
                ts, bound, hour, us = entry
                append((index, code, ts, bound, hour, inlet, outlet, airflow, pdrop, in_temp, bed_temp, rh, running, us))
                continue
            rejected.append({"index": index, "box_code": item.get("box_code"),
                             "errors": _item_errors(item, _parse_ts(raw_ts), latest_allowed)})
        elif type(item) is dict:
            rejected.append({"index": index, "box_code": item.get("box_code"),
                             "errors": _item_errors(item, _parse_ts(item.get("ts")), latest_allowed)})
        else:
            rejected.append({"index": index, "box_code": None, "errors": {"_item": ["expected an object"]}})
    return rows, rejected


def _check_typed(items: TypedReadings, latest_allowed: datetime, sqlite: bool
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
            append((index, code, ts, bound, hour, r.inlet_mg_m3, r.outlet_mg_m3, r.airflow_m3_h, r.pressure_drop_pa,
                    r.inlet_temp_c, r.bed_temp_c, r.rh_pct, r.running, us))
        else:
            item = wire.as_item(r)
            rejected.append({"index": index, "box_code": code,
                             "errors": _item_errors(item, _parse_ts(raw_ts), latest_allowed)})
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
            errors[name] = ["must not be negative" if lo == 0 and value < 0
                            else f"outside the sensor range {lo:g}–{hi:g} {unit}"]
    running = item.get("running", True)
    if not (running in (0, 1) and type(running) in (bool, int)):
        errors["running"] = ["true or false"]
    return errors


# ---------------------------------------------------------------- who may write where

def _ingest_scope(actor: Principal):
    """None: any box; else the enterprise whose boxes ``actor`` may write readings for."""
    if actor.is_operator:
        return None
    org = actor.organization
    if org is None or not (actor.is_device or org.has_role("generator")):
        raise Forbidden("只有设备令牌、产废单位或平台运维可以上传监测数据 "
                        "(only gateways, the box's enterprise or operators ingest readings)")
    return org.id


# ---------------------------------------------------------------- ingest

# The per-batch queries, built once (building a statement costs more than running it here).
# A box's organisations are not needed: the caller's is in the session already.
_BOXES_BY_CODE = (select(Box).where(Box.code.in_(bindparam("codes", expanding=True)))
                  .options(lazyload(Box.enterprise), lazyload(Box.service_org)))
_newest_fill = (select(Fill.box_id, func.max(Fill.filled_at).label("filled_at"))
                .where(Fill.box_id.in_(bindparam("ids", expanding=True)), Fill.filled_at <= bindparam("at"))
                .group_by(Fill.box_id).subquery())
# The states, locked (only they: FOR UPDATE OF their table), with the active fill of each box
# (as app.boxes.services.latest_fills; the colour refresh is given them), in one query.
_STATES_FOR_UPDATE = (
    select(BoxSensorState, Fill)
    .outerjoin(_newest_fill, _newest_fill.c.box_id == BoxSensorState.box_id)
    .outerjoin(Fill, and_(Fill.box_id == _newest_fill.c.box_id, Fill.filled_at == _newest_fill.c.filled_at))
    .where(BoxSensorState.box_id.in_(bindparam("ids", expanding=True)))
    .order_by(BoxSensorState.box_id).with_for_update(of=BoxSensorState.__table__)
    .execution_options(populate_existing=True))


def ingest(session: Session, actor: Principal, items: list, settings: Settings = Settings(),
           now: datetime | None = None, held: ExitStack | None = None) -> IngestResult:
    """Validate and store a batch; integrate it into the boxes' states; refresh their colours.

    One bad item never loses the good ones: it is reported with its index and errors. Readings
    already stored (same box and ts) count as duplicates and change nothing. With ``held``, the
    SQLite writer lock is taken just before the first write and kept until the caller closes
    ``held`` after its commit.
    """
    now = now or utcnow()
    enterprise_id = _ingest_scope(actor)
    result = IngestResult()
    sqlite = session.get_bind().dialect.name == "sqlite"
    checked, rejected = check_items(items, now + timedelta(seconds=settings.max_future_s), sqlite)
    # Each distinct code is looked up once; the rows of one box gather in one dict by bound ts,
    # which also finds the batch's own repeats.
    wanted = {raw: codes.normalise(raw) for raw in {row[R_CODE] for row in checked}}
    found = {c for c in wanted.values() if c}
    boxes = {b.code: b for b in session.scalars(_BOXES_BY_CODE, {"codes": list(found)})} if found else {}
    by_box: dict[int, dict[Any, tuple]] = {}
    bucket_of: dict[str, tuple[int, dict[Any, tuple]] | None] = {}
    for raw, code in wanted.items():
        box = boxes.get(code)
        # Another organisation's box is "unknown" too: existence is not disclosed.
        allowed = box is not None and (enterprise_id is None or box.enterprise_id == enterprise_id)
        bucket_of[raw] = (box.id, by_box.setdefault(box.id, {})) if allowed else None
    duplicates = 0
    inserts: list[tuple] = []  # (box_id, bound ts, *measures, running): the readings table's columns
    add_insert = inserts.append
    for row in checked:
        target = bucket_of[row[R_CODE]]
        if target is None:
            rejected.append({"index": row[R_INDEX], "box_code": row[R_CODE], "errors": {"box_code": [UNKNOWN_BOX]}})
            continue
        box_id, bucket = target
        bound = row[R_BOUND]
        if bound in bucket:
            duplicates += 1
        else:
            bucket[bound] = row
            add_insert((box_id, bound) + row[R_MEASURE:R_US])
    if rejected:
        rejected.sort(key=itemgetter("index"))
    result.rejected_items, result.duplicates = rejected, duplicates
    touched = sorted(b for b, bucket in by_box.items() if bucket)
    if not touched:
        return result
    if held is not None:
        held.enter_context(sqlite_writer_lock(session))
    by_id = {b.id: b for b in boxes.values()}
    states, fills = lock_states(session, touched, now)
    for box_id in touched:
        sync_state_to_fill(session, states[box_id], fills.get(box_id), settings)
    per_box = {box_id: sorted(by_box[box_id].values(), key=itemgetter(R_TS)) for box_id in touched}
    fresh = insert_readings(session, inserts)
    if fresh is not None:  # some were stored already
        per_box = {box_id: kept for box_id, rows in per_box.items()
                   if (kept := [r for r in rows if (box_id, r[R_BOUND]) in fresh])}
    result.accepted = sum(len(rows) for rows in per_box.values())
    result.duplicates += sum(len(by_box[b]) for b in touched) - result.accepted
    rollups = _Rollups(sqlite)
    values = {box_id: _StateValues(states[box_id]) for box_id in per_box}
    for box_id, box_rows in per_box.items():
        _apply(session, by_id[box_id], values[box_id], box_rows, rollups, settings, now)
    rollups.upsert(session)
    store_states(session, [(states[box_id], v) for box_id, v in values.items()])
    session.flush()
    result.boxes = [by_id[b] for b in sorted(per_box)]
    if result.boxes:
        # Once per touched box per batch: alarms and saturation enter the colour history. The
        # active fills are those just read (a box without one is not in ``fills``).
        refresh_colours(session, result.boxes, now, fills=fills)
    return result


@contextmanager
def sqlite_writer_lock(session: Session):
    """Serialise SQLite ingest writers (gunicorn workers, the MQTT subscriber) on a file lock.

    SQLite has one writer at a time, and a writer that finds the database locked polls with
    sleeps of up to 100 ms: with two workers most of the time went into those sleeps. A blocking
    ``flock`` wakes the next writer as soon as the previous one commits. PostgreSQL needs none.
    """
    url = session.get_bind().url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        yield
        return
    with open(url.database + ".ingest-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _marks(session_or_conn) -> str:
    return "?" if session_or_conn.dialect.name == "sqlite" else "%s"


_NEW_STATE_SQL = (
    "INSERT INTO box_sensor_states (box_id, adsorbed_kg, integrated_count, last_rate_kg_h, load_ewma_kg_per_day, "
    "load_weight, breakthrough_count, latest, reading_count, updated_at) "
    "VALUES ({m}, 0.0, 0, 0.0, 0.0, 0.0, 0, '{{}}', 0, {m}) ON CONFLICT (box_id) DO NOTHING"
)


def lock_states(session: Session, box_ids: list[int], now: datetime
                ) -> tuple[dict[int, BoxSensorState], dict[int, Fill]]:
    """The boxes' states, created when missing, locked (PostgreSQL: FOR UPDATE, in box order so
    two batches never deadlock; SQLite: the insert takes the database's write lock first) so that
    concurrent batches for one box integrate one after the other; and, read with them, the
    boxes' active fills at ``now`` (a box without one is not in them)."""
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    stamp = bind_ts(now, sqlite)
    conn.exec_driver_sql(_NEW_STATE_SQL.format(m=_marks(conn)), [(b, stamp) for b in box_ids])
    states: dict[int, BoxSensorState] = {}
    fills: dict[int, Fill] = {}
    for state, fill in session.execute(_STATES_FOR_UPDATE, {"ids": box_ids, "at": now}):
        states[state.box_id] = state
        if fill is not None:
            fills[state.box_id] = fill
    return states, fills


READING_COLUMNS = ("box_id", "ts", *MEASURES, "running")
_INSERT_CHUNK = 1000  # rows per statement: 10 columns × 1000 stays under both databases' parameter limits


@lru_cache(maxsize=16)
def _insert_sql(mark: str, n_rows: int, returning: bool) -> str:
    row = "(" + ", ".join([mark] * len(READING_COLUMNS)) + ")"
    return (f"INSERT INTO {SensorReading.__tablename__} ({', '.join(READING_COLUMNS)}) VALUES "
            f"{', '.join([row] * n_rows)} ON CONFLICT (box_id, ts) DO NOTHING"
            + (" RETURNING box_id, ts" if returning else ""))


def insert_readings(session: Session, rows: list[tuple]) -> set[tuple[int, Any]] | None:
    """Store rows ``(box_id, bound ts, *measures, running)`` unless already stored: None when all
    were new, else the keys ``(box_id, ts)`` of the new ones.

    Multi-row ``INSERT … ON CONFLICT (box_id, ts) DO NOTHING`` statements of up to 1,000 rows,
    as driver SQL (SQLAlchemy's per-value bind processing would cost more than the insert), in a
    savepoint. The common case, every row new, is told by the row count alone. Otherwise the
    savepoint is rolled back and the rows are inserted again with ``RETURNING box_id, ts`` to
    learn which were new: RETURNING makes SQLite's insert about a third slower and the result
    has to be matched to the rows, so it is paid only by batches that carry stored readings.
    """
    conn = session.connection()
    mark = _marks(conn)
    if conn.dialect.name != "sqlite" or conn.connection.dbapi_connection.in_transaction:
        # (On SQLite a savepoint outside a transaction would start one, and its release commit.)
        conn.exec_driver_sql("SAVEPOINT insert_readings")
        inserted = 0
        for begin in range(0, len(rows), _INSERT_CHUNK):
            chunk = rows[begin:begin + _INSERT_CHUNK]
            inserted += conn.exec_driver_sql(_insert_sql(mark, len(chunk), False), tuple(chain.from_iterable(chunk))).rowcount
        if inserted == len(rows):
            conn.exec_driver_sql("RELEASE SAVEPOINT insert_readings")
            return None
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT insert_readings")
        conn.exec_driver_sql("RELEASE SAVEPOINT insert_readings")
    fresh: set[tuple[int, Any]] = set()
    for begin in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[begin:begin + _INSERT_CHUNK]
        fresh.update(tuple(r) for r in conn.exec_driver_sql(_insert_sql(mark, len(chunk), True),
                                                            tuple(chain.from_iterable(chunk))))
    return None if len(fresh) == len(rows) else fresh


class _DbNeighbours:
    """Stored readings of one fill around a timestamp, by index look-ups on (box_id, ts)."""

    def __init__(self, session: Session, box_id: int, since: datetime):
        self.session, self.box_id, self.since = session, box_id, since

    def _one(self, condition, order) -> Point | None:
        t = SensorReading
        row = self.session.execute(
            select(t.ts, t.inlet_mg_m3, t.outlet_mg_m3, t.airflow_m3_h, t.running)
            .where(t.box_id == self.box_id, t.ts >= self.since, condition).order_by(order).limit(1)
        ).first()
        return Point(row.ts, rate_kg_h(row.inlet_mg_m3, row.outlet_mg_m3, row.airflow_m3_h, row.running)) if row else None

    def before(self, ts: datetime) -> Point | None:
        return self._one(SensorReading.ts < ts, SensorReading.ts.desc())

    def after(self, ts: datetime) -> Point | None:
        return self._one(SensorReading.ts > ts, SensorReading.ts.asc())


LATEST_FIELDS = ("running", *MEASURES)
_R_OUTLET = R_MEASURE + list(MEASURES).index("outlet_mg_m3")
_LATEST_OF = tuple((k, R_RUNNING if k == "running" else R_MEASURE + list(MEASURES).index(k)) for k in LATEST_FIELDS)


# What _apply writes into a state; ``fill_id`` and ``fill_started_at`` it only reads.
_STATE_WRITTEN = ("adsorbed_kg", "integrated_count", "last_integrated_ts", "last_rate_kg_h", "load_ewma_kg_per_day",
                  "load_weight", "breakthrough_since", "breakthrough_count", "latest_ts", "latest", "reading_count",
                  "updated_at")
_STATE_TIMES = frozenset({"last_integrated_ts", "breakthrough_since", "latest_ts", "updated_at"})


@lru_cache(maxsize=4)
def _update_state_sql(mark: str) -> str:
    """One UPDATE by primary key, executed for all of a batch's states, as driver SQL (the values
    bound as the column types would: timestamps by :func:`bind_ts`, ``latest`` as JSON text)."""
    columns = ", ".join(f"{name} = {mark}" for name in _STATE_WRITTEN)
    return f"UPDATE {BoxSensorState.__tablename__} SET {columns} WHERE box_id = {mark}"


class _StateValues:
    """A state's values while a batch is integrated into it: plain attributes, without the
    ORM's change tracking, stored by :func:`store_states`."""

    __slots__ = ("fill_id", "fill_started_at", *_STATE_WRITTEN)

    def __init__(self, state: BoxSensorState) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(state, name))


def store_states(session: Session, written: list[tuple[BoxSensorState, _StateValues]]) -> None:
    """Write the integrated values into the states' rows, one UPDATE by primary key executed for
    all of them, and into the states in the session as their stored values (so that they stay
    unchanged to the ORM, which need not flush them, and the colour refresh reads them)."""
    if not written:
        return
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    times = _STATE_TIMES
    params = []
    for state, values in written:
        row = []
        for name in _STATE_WRITTEN:
            value = getattr(values, name)
            if name == "latest":
                value = orjson.dumps(value).decode()
            elif value is not None and name in times:
                value = bind_ts(value, sqlite)
            row.append(value)
        row.append(state.box_id)
        params.append(tuple(row))
    conn.exec_driver_sql(_update_state_sql(_marks(conn)), params)
    for state, values in written:
        for name in _STATE_WRITTEN:
            set_committed_value(state, name, getattr(values, name))


def _apply(session: Session, box: Box, state: BoxSensorState | _StateValues, rows: list[tuple], rollups: "_Rollups",
           settings: Settings, now: datetime) -> None:
    """Integrate a box's new readings (checked tuples, sorted by ts) into its state and the
    hourly roll-ups. Per reading: its roll-up sums and its term of the integral; the rest is
    per box and batch."""
    rollups.add_readings(box.id, rows)
    if state.fill_id is not None:
        # The rows are sorted by ts: those of the fill are a suffix; of these, the late ones
        # (not newer than the newest integrated) come first, then the tail that extends the chain.
        first = bisect_left(rows, state.fill_started_at, key=itemgetter(R_TS))
        fill_rows = rows[first:] if first else rows
        last_ts = state.last_integrated_ts
        last = Point(last_ts, state.last_rate_kg_h) if last_ts else None
        split = bisect_right(fill_rows, last_ts, key=itemgetter(R_TS)) if last_ts else 0
        delta_kg = 0.0
        if split:
            # Each run of late readings between two stored ones replaces that one interval.
            late = [Point(ts, (inlet - outlet) * airflow * 1e-6 if running and inlet - outlet > 0 else 0.0)
                    for _, _, ts, _, _, inlet, outlet, airflow, _, _, _, _, running, _ in fill_rows[:split]]
            result = merge(last, late, _DbNeighbours(session, box.id, state.fill_started_at), settings.max_interval_s)
            delta_kg = result.delta_kg
            for hour, kg in result.by_hour.items():
                rollups.add_adsorbed(box.id, hour, kg)
        tail = fill_rows[split:] if split else fill_rows
        if tail:
            tail_kg, by_hour, newest, state.load_ewma_kg_per_day, state.load_weight = integrate_in_order(
                last, tail, settings.max_interval_s, state.load_ewma_kg_per_day, state.load_weight,
                settings.load_tau_h)
            delta_kg += tail_kg
            state.last_integrated_ts, state.last_rate_kg_h = newest
            for hour, kg in by_hour.items():
                rollups.add_adsorbed(box.id, hour, kg)
        state.adsorbed_kg = max(state.adsorbed_kg + delta_kg, 0.0)
        state.integrated_count += len(fill_rows)
    # The newest readings drive the alarms: latest values and the breakthrough streak. Late
    # readings (older than the newest stored) change neither. The streak is the run of
    # readings above the limit at the end, so it is read backwards from the newest.
    latest_ts = state.latest_ts
    newer = rows if latest_ts is None else rows[bisect_right(rows, latest_ts, key=itemgetter(R_TS)):]
    if newer:
        limit = box.emission_limit_mg_m3
        streak = 0
        for r in reversed(newer):
            if not (r[R_RUNNING] and r[_R_OUTLET] > limit):
                break
            streak += 1
        count = state.breakthrough_count or 0
        if streak == len(newer):  # the stored streak goes on (or starts with the first of these)
            since = state.breakthrough_since if count else newer[0][R_TS]
            count += streak
        else:
            count = streak
            since = newer[-streak][R_TS] if streak else None
        newest = newer[-1]
        state.latest_ts = newest[R_TS]
        state.latest = {k: newest[i] for k, i in _LATEST_OF}
        state.breakthrough_since, state.breakthrough_count = since, count
    state.reading_count = (state.reading_count or 0) + len(rows)
    state.updated_at = now


def integrate_in_order(last: Point | None, rows: list[tuple], cap_s: float, ewma_kg_d: float, weight: float,
                       tau_h: float) -> tuple[float, dict[datetime, float], Point, float, float]:
    """Extend the integral whose newest reading is ``last`` by checked readings (sorted, distinct,
    all newer than ``last``: the tail of every batch, nearly always all of it), and the measured
    load with it, in one pass: the adsorbed kg, kg per hour of the interval start, the new newest
    point and the new load. The same sums, to the bit, as :func:`merge` and :func:`update_load`
    (a test holds it to that), with the rates computed inline and the timestamps taken in epoch
    microseconds (the hot loop of ingest: no call and no datetime arithmetic per reading)."""
    if last is not None:
        prev_ts, prev_rate, prev_us = last.ts, last.rate_kg_h, epoch_us(last.ts)
    else:
        prev_ts, prev_rate, prev_us = None, 0.0, None
    tau_s = tau_h * 3600.0
    exp = math.exp
    last_held, decay = None, 1.0
    delta_kg = 0.0
    by_hour: dict[datetime, float] = {}
    hour, hour_lo, hour_hi, hour_kg = None, 0, -1, 0.0
    for _, _, ts, _, _, inlet, outlet, airflow, _, _, _, _, running, us in rows:
        if prev_us is not None:
            held = (us - prev_us) / 1e6
            if held > cap_s:
                held = cap_s
            if not hour_lo <= prev_us < hour_hi:
                if hour_kg:
                    by_hour[hour] = by_hour.get(hour, 0.0) + hour_kg
                    delta_kg += hour_kg
                hour = hour_of(prev_ts)
                hour_lo = epoch_us(hour)
                hour_hi, hour_kg = hour_lo + HOUR_US, 0.0
            hour_kg += prev_rate * held / 3600.0
            if held > 0:
                if held != last_held:
                    last_held, decay = held, exp(-held / tau_s)
                new_weight = weight * decay + (1.0 - decay)
                ewma_kg_d = (ewma_kg_d * weight * decay + prev_rate * 24.0 * (1.0 - decay)) / new_weight
                weight = new_weight
        prev_ts, prev_us = ts, us
        prev_rate = (inlet - outlet) * airflow * 1e-6 if running and inlet - outlet > 0 else 0.0
    if hour_kg:
        by_hour[hour] = by_hour.get(hour, 0.0) + hour_kg
        delta_kg += hour_kg
    return delta_kg, by_hour, Point(prev_ts, prev_rate), ewma_kg_d, weight


def sync_state_to_fill(session: Session, state: BoxSensorState, fill: Fill | Any | None,
                       settings: Settings) -> BoxSensorState:
    """A new fill (replacement) restarts the integral: only readings at or after its time count.
    (``fill``: a :class:`Fill`, or a row with its ``id`` and ``filled_at``.)

    Readings may already exist after a back-dated fill, so the fill's integral is rebuilt from
    them: once per fill, never per batch.
    """
    fill_id = fill.id if fill is not None else None
    if state.fill_id == fill_id:
        return state
    state.fill_id = fill_id
    state.fill_started_at = fill.filled_at if fill is not None else None
    state.adsorbed_kg, state.integrated_count = 0.0, 0
    state.last_integrated_ts, state.last_rate_kg_h = None, 0.0
    if fill is None:
        return state
    t = SensorReading
    rows = session.execute(
        select(t.ts, t.inlet_mg_m3, t.outlet_mg_m3, t.airflow_m3_h, t.running)
        .where(t.box_id == state.box_id, t.ts >= fill.filled_at).order_by(t.ts)
        .execution_options(yield_per=5000)
    )
    prev: Point | None = None
    for row in rows:
        point = Point(row.ts, rate_kg_h(row.inlet_mg_m3, row.outlet_mg_m3, row.airflow_m3_h, row.running))
        if prev is not None:
            state.adsorbed_kg += hold_kg(prev, point.ts, settings.max_interval_s)
        state.integrated_count += 1
        prev = point
    if prev is not None:
        state.last_integrated_ts, state.last_rate_kg_h = prev.ts, prev.rate_kg_h
    return state


def open_interval_kg(state: BoxSensorState, now: datetime, cap_s: float) -> float:
    """The newest reading's interval is still open: it holds until now, at most ``cap_s``."""
    if state.last_integrated_ts is None:
        return 0.0
    return hold_kg(Point(state.last_integrated_ts, state.last_rate_kg_h), now, cap_s)


# ---------------------------------------------------------------- roll-ups

# A roll-up row's values after (box_id, hour_start), in this order.
_ROLLUP_COLUMNS = ["count", "running_count", "adsorbed_kg"]
_ROLLUP_SPECS = []  # (reading tuple index, position of the sum in the values, required)
for _m in ROLLUP_MEASURES:
    _ROLLUP_SPECS.append((R_MEASURE + list(MEASURES).index(_m), len(_ROLLUP_COLUMNS), MEASURES[_m][3]))
    _ROLLUP_COLUMNS += [f"{_m}_sum", f"{_m}_min", f"{_m}_max"] + ([] if MEASURES[_m][3] else [f"{_m}_n"])
_ROLLUP_EMPTY = [0, 0, 0.0]
for _m in ROLLUP_MEASURES:
    _ROLLUP_EMPTY += [0.0, None, None] + ([] if MEASURES[_m][3] else [0])


@lru_cache(maxsize=4)
def _rollup_sql(dialect: str) -> str:
    """One upsert that adds a batch's sums to the stored (box, hour) row."""
    table = ReadingHour.__tablename__
    mark = "?" if dialect == "sqlite" else "%s"
    columns = ["box_id", "hour_start", *_ROLLUP_COLUMNS]
    updates = []
    for c in _ROLLUP_COLUMNS:
        old, new = f'{table}."{c}"', f'excluded."{c}"'
        if c.endswith(("_min", "_max")):
            if dialect == "postgresql":  # LEAST and GREATEST skip NULLs
                value = f"{'LEAST' if c.endswith('_min') else 'GREATEST'}({old}, {new})"
            else:  # SQLite's scalar min() and max() return NULL if one is NULL
                value = f"{c[-3:]}(coalesce({old}, {new}), coalesce({new}, {old}))"
        else:
            value = f"{old} + {new}"
        updates.append(f'"{c}" = {value}')
    return (f"INSERT INTO {table} ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in columns)}) "
            f"VALUES ({', '.join([mark] * len(columns))}) "
            f"ON CONFLICT (box_id, hour_start) DO UPDATE SET {', '.join(updates)}")


class _Rollups:
    """Per (box, hour) sums of a batch, written with one upsert that adds them to the stored row."""

    def __init__(self, sqlite: bool) -> None:
        self.sqlite = sqlite
        self.rows: dict[tuple[int, Any], list[Any]] = {}  # (box_id, bound hour) → values

    def _row(self, box_id: int, hour: Any) -> list[Any]:
        row = self.rows.get((box_id, hour))
        if row is None:
            row = self.rows[(box_id, hour)] = _ROLLUP_EMPTY.copy()
        return row

    def add_readings(self, box_id: int, rows: list[tuple]) -> None:
        """Add one box's readings, sorted by ts (so each hour is one contiguous run); the sums,
        minima and maxima of each hour are taken column by column."""
        for hour, run in groupby(rows, key=itemgetter(R_HOUR)):
            columns = list(zip(*run))
            acc = self._row(box_id, hour)
            acc[0] += len(columns[0])
            acc[1] += columns[R_RUNNING].count(True)
            for index, at, required in _ROLLUP_SPECS:
                values = columns[index]
                try:
                    total = sum(values)
                except TypeError:  # an optional measure missing from some readings
                    values = [v for v in values if v is not None]
                    if not values:
                        continue
                    total = sum(values)
                if not required:
                    acc[at + 3] += len(values)
                acc[at] += total
                lo, hi = min(values), max(values)
                if acc[at + 1] is None or lo < acc[at + 1]:
                    acc[at + 1] = lo
                if acc[at + 2] is None or hi > acc[at + 2]:
                    acc[at + 2] = hi

    def add_adsorbed(self, box_id: int, hour: datetime, kg: float) -> None:
        self._row(box_id, bind_ts(hour, self.sqlite))[2] += kg

    def upsert(self, session: Session) -> None:
        if not self.rows:
            return
        conn = session.connection()
        conn.exec_driver_sql(_rollup_sql(conn.dialect.name), [(box_id, hour, *values)
                                                              for (box_id, hour), values in self.rows.items()])


# ---------------------------------------------------------------- reading back

RAW_LIMIT = 10_000


def raw_readings(session: Session, box: Box, start: datetime, end: datetime, limit: int = RAW_LIMIT):
    t = SensorReading
    rows = session.execute(
        select(t).where(t.box_id == box.id, t.ts >= start, t.ts < end).order_by(t.ts).limit(limit + 1)
    ).scalars().all()
    truncated = len(rows) > limit
    return [
        {"ts": r.ts, **{m: getattr(r, m) for m in MEASURES}, "running": r.running} for r in rows[:limit]
    ], truncated


def _finish(agg: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"start": agg["start"], "count": agg["count"],
                           "running_share": agg["running_count"] / agg["count"] if agg["count"] else None,
                           "adsorbed_kg": agg["adsorbed_kg"]}
    for m in ROLLUP_MEASURES:
        n = agg["count"] if MEASURES[m][3] else agg[f"{m}_n"]
        out[m] = {"avg": agg[f"{m}_sum"] / n if n else None, "min": agg[f"{m}_min"], "max": agg[f"{m}_max"]}
    inlet, outlet = out["inlet_mg_m3"]["avg"], out["outlet_mg_m3"]["avg"]
    out["removal_efficiency"] = 1 - outlet / inlet if inlet else None
    if "date" in agg:
        out["date"] = agg["date"]
    return out


def _hour_rows(session: Session, box: Box, start: datetime, end: datetime) -> list[dict[str, Any]]:
    t = ReadingHour.__table__
    rows = session.execute(
        select(t).where(t.c.box_id == box.id, t.c.hour_start >= hour_of(start), t.c.hour_start < end)
        .order_by(t.c.hour_start)
    ).mappings().all()
    return [{**dict(r), "start": r["hour_start"]} for r in rows]


def rollup_readings(session: Session, box: Box, start: datetime, end: datetime, resolution: str) -> list[dict[str, Any]]:
    """Hourly roll-ups as stored, or days (Asia/Shanghai) summed from them."""
    if resolution == "hour":
        return [_finish(r) for r in _hour_rows(session, box, start, end)]
    local_start = start.astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    days: dict[Any, dict[str, Any]] = {}
    for r in _hour_rows(session, box, local_start.astimezone(timezone.utc), end):
        day = r["hour_start"].astimezone(SHANGHAI).date()
        agg = days.get(day)
        if agg is None:
            day_start = datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).astimezone(timezone.utc)
            days[day] = {**r, "start": day_start, "date": day.isoformat()}
            continue
        for k in ("count", "running_count", "adsorbed_kg"):
            agg[k] += r[k]
        for m in ROLLUP_MEASURES:
            agg[f"{m}_sum"] += r[f"{m}_sum"]
            if not MEASURES[m][3]:
                agg[f"{m}_n"] += r[f"{m}_n"]
            for k, pick in ((f"{m}_min", min), (f"{m}_max", max)):
                values = [v for v in (agg[k], r[k]) if v is not None]
                agg[k] = pick(values) if values else None
    return [_finish(a) for a in days.values()]


# ---------------------------------------------------------------- dead letters

_TOKEN = re.compile(r"txd_[A-Za-z0-9_\-]+")
PAYLOAD_KEEP = 64 * 1024


def redact(text: str) -> str:
    """Device tokens never reach the operators' list."""
    return _TOKEN.sub("txd_[redacted]", text)


def record_dead_letter(session: Session, *, topic: str, payload: bytes, reason: str, detail: str = "",
                       errors: Iterable[dict[str, Any]] = (), now: datetime | None = None,
                       source: str = "mqtt") -> DeadLetter:
    # PostgreSQL text cannot hold NUL: keep it visible as an escape, like other undecodable bytes.
    text = payload.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")
    letter = DeadLetter(
        received_at=now or utcnow(), source=source, topic=topic[:255], reason=reason, detail=redact(detail)[:2000],
        errors=list(errors), payload=redact(text[:PAYLOAD_KEEP]), payload_bytes=len(payload),
    )
    session.add(letter)
    session.flush()
    return letter


def dead_letters(actor: Principal, reason: str | None = None):
    if not actor.is_operator:
        raise Forbidden("需要平台运维权限 (platform operators only)")
    query = select(DeadLetter).order_by(DeadLetter.received_at.desc(), DeadLetter.id.desc())
    return query.where(DeadLetter.reason == reason) if reason else query
