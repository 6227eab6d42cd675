"""Ingest of sensor readings, the per-box integration state, roll-ups and dead letters.

No Flask here: callers pass the session, the acting :class:`Principal` and the settings.

One batch costs a fixed number of statements however many readings it carries: boxes in one
query, states in one (locked) query, readings in one INSERT … ON CONFLICT DO NOTHING RETURNING,
roll-ups in one upsert, states flushed together, then one colour refresh of the touched boxes.
Only late readings (older than a box's newest) cost two index look-ups each.
"""
from __future__ import annotations

import fcntl
import math
import re
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.accounts.services import Principal
from app.boxes import codes
from app.boxes.models import Box, Fill
from app.boxes.services import latest_fills, refresh_colours
from app.common.errors import DomainError, Forbidden
from app.common.timeutil import SHANGHAI, as_utc, utcnow
from app.telemetry import DEFAULTS
from app.telemetry.integration import Point, hold_kg, hour_of, merge, rate_kg_h, update_load
from app.telemetry.models import MEASURES, ROLLUP_MEASURES, BoxSensorState, DeadLetter, ReadingHour, SensorReading

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
        except ValueError:
            return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        # Unix epoch seconds, as many gateways send them.
        try:
            return datetime.fromtimestamp(value, timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    return None


_SPECS = tuple((name, lo, hi, required) for name, (_, lo, hi, required) in MEASURES.items())


def parse_item(item: Any, latest_allowed: datetime) -> tuple[dict[str, Any] | None, dict[str, list[str]] | None]:
    """One reading → a row for the readings table, or None and its errors by field.

    Written for speed (this runs for every reading): the common, valid case allocates only the row.
    """
    if type(item) is not dict:
        return None, {"_item": ["expected an object"]}
    code = item.get("box_code")
    ts = _parse_ts(item.get("ts"))
    row: dict[str, Any] = {"box_code": code, "ts": ts}
    ok = FIELDS.issuperset(item) and type(code) is str and ts is not None and EARLIEST <= ts <= latest_allowed
    for name, lo, hi, required in _SPECS:
        value = item.get(name)
        kind = type(value)
        if kind is float or kind is int:  # bool is neither
            if lo <= value <= hi:  # NaN fails this too
                row[name] = value
                continue
        elif value is None and not required:
            row[name] = None
            continue
        ok = False
    running = item.get("running", True)
    if running is True or running is False:
        row["running"] = running
    elif type(running) is int and running in (0, 1):
        row["running"] = bool(running)
    else:
        ok = False
    if ok and code.strip():
        return row, None
    return None, _item_errors(item, ts, latest_allowed)


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
    latest_allowed = now + timedelta(seconds=settings.max_future_s)
    parsed: list[tuple[int, dict[str, Any]]] = []
    wanted: dict[str, str | None] = {}
    for index, item in enumerate(items):
        row, errors = parse_item(item, latest_allowed)
        if row is None:
            result.rejected_items.append({"index": index, "box_code": item.get("box_code") if isinstance(item, dict) else None,
                                          "errors": errors})
            continue
        raw = row.pop("box_code")
        if raw not in wanted:
            wanted[raw] = codes.normalise(raw)
        row["_code"] = wanted[raw]
        parsed.append((index, row))
    found = {c for c in wanted.values() if c}
    boxes = {b.code: b for b in session.scalars(select(Box).where(Box.code.in_(found)))} if found else {}
    rows: list[dict[str, Any]] = []
    seen: set[tuple[int, datetime]] = set()
    for index, row in parsed:
        box = boxes.get(row.pop("_code"))
        if box is None or (enterprise_id is not None and box.enterprise_id != enterprise_id):
            # Another organisation's box is "unknown" too: existence is not disclosed.
            result.rejected_items.append({"index": index, "box_code": items[index].get("box_code"),
                                          "errors": {"box_code": [UNKNOWN_BOX]}})
            continue
        key = (box.id, row["ts"])
        if key in seen:
            result.duplicates += 1
            continue
        seen.add(key)
        row["box_id"] = box.id
        rows.append(row)
    result.rejected_items.sort(key=lambda r: r["index"])
    if not rows:
        return result
    touched = sorted({r["box_id"] for r in rows})
    if held is not None:
        held.enter_context(sqlite_writer_lock(session))
    by_id = {b.id: b for b in boxes.values()}
    states = lock_states(session, touched, now)
    fills = latest_fills(session, touched, now)
    for box_id in touched:
        sync_state_to_fill(session, states[box_id], fills.get(box_id), settings)
    new_rows = insert_readings(session, rows)
    result.accepted = len(new_rows)
    result.duplicates += len(rows) - len(new_rows)
    new_rows.sort(key=lambda r: (r["box_id"], r["ts"]))
    per_box: dict[int, list[dict[str, Any]]] = {}
    for row in new_rows:
        per_box.setdefault(row["box_id"], []).append(row)
    rollups = _Rollups()
    for box_id, box_rows in per_box.items():
        _apply(session, by_id[box_id], states[box_id], box_rows, rollups, settings, now)
    rollups.upsert(session)
    session.flush()
    result.boxes = [by_id[b] for b in sorted(per_box)]
    if result.boxes:
        # Once per touched box per batch: alarms and saturation enter the colour history.
        refresh_colours(session, result.boxes, now)
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


def _dialect_insert(session: Session, table):
    name = session.get_bind().dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)


def lock_states(session: Session, box_ids: list[int], now: datetime) -> dict[int, BoxSensorState]:
    """The boxes' states, created when missing, locked (PostgreSQL: FOR UPDATE, in box order so
    two batches never deadlock; SQLite: the insert takes the database's write lock first) so that
    concurrent batches for one box integrate one after the other."""
    table = BoxSensorState.__table__
    session.execute(
        _dialect_insert(session, table).on_conflict_do_nothing(index_elements=["box_id"]),
        [{"box_id": b, "adsorbed_kg": 0.0, "integrated_count": 0, "last_rate_kg_h": 0.0,
          "load_ewma_kg_per_day": 0.0, "load_weight": 0.0, "breakthrough_count": 0, "latest": {},
          "reading_count": 0, "updated_at": now} for b in box_ids],
    )
    query = (select(BoxSensorState).where(BoxSensorState.box_id.in_(box_ids)).order_by(BoxSensorState.box_id)
             .with_for_update().execution_options(populate_existing=True))
    return {s.box_id: s for s in session.scalars(query)}


READING_COLUMNS = ("box_id", "ts", *MEASURES, "running")
_INSERT_CHUNK = 1000  # rows per statement: 10 columns × 1000 stays under both databases' parameter limits


def insert_readings(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Store the rows that are new; return them (the others were already stored).

    One multi-row ``INSERT … ON CONFLICT (box_id, ts) DO NOTHING RETURNING box_id, ts`` per 1,000
    rows, sent as driver SQL: SQLAlchemy's per-value bind processing would cost more than the
    insert itself. Timestamps are bound as the column type stores them (UTC; on SQLite the text
    form of SQLAlchemy's DATETIME), so what comes back can be matched to what was sent.
    """
    conn = session.connection()
    is_sqlite = conn.dialect.name == "sqlite"
    mark = "?" if is_sqlite else "%s"
    table = SensorReading.__tablename__
    fresh: set[tuple[int, Any]] = set()
    out: list[dict[str, Any]] = []
    for begin in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[begin:begin + _INSERT_CHUNK]
        params: list[Any] = []
        keys = []
        for r in chunk:
            ts = r["ts"]
            stored = ts.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds") if is_sqlite else ts
            keys.append((r["box_id"], stored))
            params.extend((r["box_id"], stored, r["inlet_mg_m3"], r["outlet_mg_m3"], r["airflow_m3_h"],
                           r["pressure_drop_pa"], r["inlet_temp_c"], r["bed_temp_c"], r["rh_pct"], r["running"]))
        row_marks = "(" + ", ".join([mark] * len(READING_COLUMNS)) + ")"
        sql = (f"INSERT INTO {table} ({', '.join(READING_COLUMNS)}) VALUES {', '.join([row_marks] * len(chunk))} "
               "ON CONFLICT (box_id, ts) DO NOTHING RETURNING box_id, ts")
        returned = conn.exec_driver_sql(sql, tuple(params)).all()
        if len(returned) == len(chunk):
            out.extend(chunk)
            continue
        fresh = {(b, t) for b, t in returned}
        out.extend(r for r, key in zip(chunk, keys) if key in fresh)
    return out


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


def _apply(session: Session, box: Box, state: BoxSensorState, rows: list[dict[str, Any]], rollups: "_Rollups",
           settings: Settings, now: datetime) -> None:
    """Integrate a box's new readings (sorted by ts) into its state and the hourly roll-ups."""
    rollups.add_readings(box.id, rows)
    if state.fill_id is not None:
        start = state.fill_started_at
        points = [Point(r["ts"], rate_kg_h(r["inlet_mg_m3"], r["outlet_mg_m3"], r["airflow_m3_h"], r["running"]))
                  for r in rows if r["ts"] >= start]
        if points:
            last = Point(state.last_integrated_ts, state.last_rate_kg_h) if state.last_integrated_ts else None
            result = merge(last, points, _DbNeighbours(session, box.id, start), settings.max_interval_s)
            state.adsorbed_kg = max(state.adsorbed_kg + result.delta_kg, 0.0)
            state.integrated_count += len(points)
            if result.last is not None:
                state.last_integrated_ts, state.last_rate_kg_h = result.last.ts, result.last.rate_kg_h
            state.load_ewma_kg_per_day, state.load_weight = update_load(
                state.load_ewma_kg_per_day, state.load_weight, result.intervals, settings.load_tau_h)
            for hour, kg in result.by_hour.items():
                rollups.add_adsorbed(box.id, hour, kg)
    # The newest readings drive the alarms: latest values and the breakthrough streak. Late
    # readings (older than the newest stored) change neither.
    limit = box.emission_limit_mg_m3
    latest_ts, since, count = state.latest_ts, state.breakthrough_since, state.breakthrough_count or 0
    newest = None
    for row in rows:
        if latest_ts is not None and row["ts"] <= latest_ts:
            continue
        if row["running"] and row["outlet_mg_m3"] > limit:
            if not count:
                since = row["ts"]
            count += 1
        else:
            count, since = 0, None
        newest = row
    if newest is not None:
        state.latest_ts = newest["ts"]
        state.latest = {k: newest[k] for k in LATEST_FIELDS}
        state.breakthrough_since, state.breakthrough_count = since, count
    state.reading_count = (state.reading_count or 0) + len(rows)
    state.updated_at = now


def sync_state_to_fill(session: Session, state: BoxSensorState, fill: Fill | None, settings: Settings) -> BoxSensorState:
    """A new fill (replacement) restarts the integral: only readings at or after its time count.

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

class _Rollups:
    """Per (box, hour) sums of a batch, written with one upsert that adds them to the stored row."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, datetime], dict[str, Any]] = {}

    def _row(self, box_id: int, hour: datetime) -> dict[str, Any]:
        key = (box_id, hour)
        row = self.rows.get(key)
        if row is None:
            row = {"box_id": box_id, "hour_start": hour, "count": 0, "running_count": 0, "adsorbed_kg": 0.0}
            for m in ROLLUP_MEASURES:
                row.update({f"{m}_sum": 0.0, f"{m}_min": None, f"{m}_max": None})
                if not MEASURES[m][3]:
                    row[f"{m}_n"] = 0
            self.rows[key] = row
        return row

    def add_readings(self, box_id: int, rows: list[dict[str, Any]]) -> None:
        """Add one box's readings, sorted by ts (so each hour is one contiguous run)."""
        begin = 0
        while begin < len(rows):
            hour = hour_of(rows[begin]["ts"])
            end = begin + 1
            while end < len(rows) and hour_of(rows[end]["ts"]) == hour:
                end += 1
            group = rows[begin:end]
            row = self._row(box_id, hour)
            row["count"] += len(group)
            row["running_count"] += sum(1 for r in group if r["running"])
            for m in ROLLUP_MEASURES:
                values = [v for v in (r[m] for r in group) if v is not None]
                if not values:
                    continue
                row[f"{m}_sum"] += sum(values)
                lo, hi = min(values), max(values)
                row[f"{m}_min"] = lo if row[f"{m}_min"] is None else min(lo, row[f"{m}_min"])
                row[f"{m}_max"] = hi if row[f"{m}_max"] is None else max(hi, row[f"{m}_max"])
                if not MEASURES[m][3]:
                    row[f"{m}_n"] += len(values)
            begin = end

    def add_adsorbed(self, box_id: int, hour: datetime, kg: float) -> None:
        self._row(box_id, hour)["adsorbed_kg"] += kg

    def upsert(self, session: Session) -> None:
        if not self.rows:
            return
        table = ReadingHour.__table__
        stmt = _dialect_insert(session, table)
        pg = session.get_bind().dialect.name == "postgresql"
        ex = stmt.excluded

        def smallest(a, b):
            # PostgreSQL's LEAST skips NULLs; SQLite's scalar min() returns NULL if one is NULL.
            return func.least(a, b) if pg else func.min(func.coalesce(a, b), func.coalesce(b, a))

        def largest(a, b):
            return func.greatest(a, b) if pg else func.max(func.coalesce(a, b), func.coalesce(b, a))

        updates: dict[str, Any] = {c: table.c[c] + ex[c] for c in ("count", "running_count", "adsorbed_kg")}
        for m in ROLLUP_MEASURES:
            updates[f"{m}_sum"] = table.c[f"{m}_sum"] + ex[f"{m}_sum"]
            updates[f"{m}_min"] = smallest(table.c[f"{m}_min"], ex[f"{m}_min"])
            updates[f"{m}_max"] = largest(table.c[f"{m}_max"], ex[f"{m}_max"])
            if not MEASURES[m][3]:
                updates[f"{m}_n"] = table.c[f"{m}_n"] + ex[f"{m}_n"]
        stmt = stmt.on_conflict_do_update(index_elements=["box_id", "hour_start"], set_=updates)
        session.connection().execute(stmt, list(self.rows.values()))


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
