"""The per-box sensor state: locked and read with the active fills, the batch's readings
integrated into it (the one-pass integral and load, the late readings, the alarms' streak),
written back in one UPDATE, and rebuilt when a new fill starts.

:func:`_apply` and :func:`integrate_in_order` are the hot loop of ingest: the names they use
are this module's globals (imported by name), never looked up through another module.

Over ~400 lines because the state is read, integrated and written here as one unit: the locked
Core read (states with their fills, no ORM objects), the integration and the one-statement write
share the state's column lists and value types.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any, TypeVar

import orjson
from sqlalchemy import ARRAY, Integer, Text, and_, any_, bindparam, cast, func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from app.boxes.models import Box, Fill
from app.telemetry.integration import (
    _EPOCH,
    HOUR_US,
    Point,
    epoch_us,
    held_seconds,
    hold_kg,
    hour_of,
    merge,
    rate_kg_h,
    ring_add,
)
from app.telemetry.models import MEASURES, BoxSensorState, SensorReading
from app.telemetry.services.bulk import stage
from app.telemetry.services.checks import R_MEASURE, R_RUNNING, R_TS, bind_ts
from app.telemetry.services.rollups import _Rollups
from app.telemetry.services.settings import Settings


# The per-batch query of the states, built once (building a statement costs more than running it
# here), as Core rows: a batch's thousand states and fills as ORM objects cost more than the
# rest of its work (identity map, instance states, change tracking), and nothing writes them
# through the ORM. On PostgreSQL the ids are one array (``= ANY``): a thousand placeholders are
# parsed by the driver on every batch.
def _ids_in(column, sqlite: bool):
    if sqlite:
        return column.in_(bindparam("ids", expanding=True))
    return column == any_(bindparam("ids", type_=ARRAY(Integer)))


# The JSON columns are read as text and parsed with orjson (the driver's json.loads costs ten times as much).
_STATE_COLUMNS = [
    cast(c, Text).label(c.name) if c.name in ("load_hours", "latest") else c for c in BoxSensorState.__table__.columns
]
_FILL_COLUMNS = ("id", "box_id", "kind", "filled_at", "mass_kg", "carbon_type", "iodine_mg_g")


def _states_with_fills(sqlite: bool, locked: bool):
    # The states, locked (only they: FOR UPDATE OF their table), with the active fill of each box
    # (as app.boxes.services.latest_fills; the colour refresh is given them), in one query.
    newest_fill = (
        select(Fill.box_id, func.max(Fill.filled_at).label("filled_at"))
        .where(_ids_in(Fill.box_id, sqlite), Fill.filled_at <= bindparam("at"))
        .group_by(Fill.box_id)
        .subquery()
    )
    query = (
        select(*_STATE_COLUMNS, *(getattr(Fill, c).label(f"f_{c}") for c in _FILL_COLUMNS))
        .outerjoin(newest_fill, newest_fill.c.box_id == BoxSensorState.box_id)
        .outerjoin(Fill, and_(Fill.box_id == newest_fill.c.box_id, Fill.filled_at == newest_fill.c.filled_at))
        .where(_ids_in(BoxSensorState.box_id, sqlite))
        .order_by(BoxSensorState.box_id)
    )
    return query.with_for_update(of=BoxSensorState.__table__) if locked else query


_STATES_WITH_FILLS = {
    (sqlite, locked): _states_with_fills(sqlite, locked) for sqlite in (True, False) for locked in (True, False)
}

# What tells that a state changed since it was read: every batch that integrates readings into
# it counts them and stamps it, a new fill sets its fill.
_VERSION_COLUMNS = (
    BoxSensorState.box_id,
    BoxSensorState.updated_at,
    BoxSensorState.reading_count,
    BoxSensorState.fill_id,
)
_LOCK_VERSIONS = (
    select(*_VERSION_COLUMNS)
    .where(_ids_in(BoxSensorState.box_id, False))
    .order_by(BoxSensorState.box_id)
    .with_for_update()
)


class FillRow:
    """A box's active fill as ingest reads it (the columns the colour evaluation uses of a
    :class:`Fill`), without the ORM."""

    __slots__ = _FILL_COLUMNS
    id: int
    box_id: int
    kind: Any
    filled_at: datetime
    mass_kg: Any
    carbon_type: str
    iodine_mg_g: float

    def __init__(self, row: tuple) -> None:  # a row of the locked read, as a tuple
        for name, at in _FILL_AT:
            setattr(self, name, row[at])


def _marks(session_or_conn) -> str:
    return "?" if session_or_conn.dialect.name == "sqlite" else "%s"


_NEW_STATE_SQL = (
    "INSERT INTO box_sensor_states (box_id, adsorbed_kg, integrated_count, last_rate_kg_h, load_hours, "
    "breakthrough_count, latest, reading_count, updated_at) "
    "VALUES ({m}, 0.0, 0, 0.0, '[]', 0, '{{}}', 0, {m}) ON CONFLICT (box_id) DO NOTHING"
)


def lock_states(
    session: Session, box_ids: list[int], now: datetime, locked: bool = True
) -> tuple[dict[int, _StateValues], dict[int, FillRow]]:
    """The boxes' states (as :class:`_StateValues`), created when missing, locked (PostgreSQL:
    FOR UPDATE, in box order so two batches never deadlock; SQLite: the insert takes the
    database's write lock first) so that concurrent batches for one box integrate one after the
    other; and, read with them, the boxes' active fills at ``now`` (a box without one is not in
    them). ``locked=False`` (PostgreSQL): read only; the caller locks them later with
    :func:`lock_changed`, which tells those another batch changed meanwhile."""
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    stamp = bind_ts(now, sqlite)
    states: dict[int, _StateValues] = {}
    fills: dict[int, FillRow] = {}
    if sqlite:
        # (The insert takes SQLite's write lock before the read, as FOR UPDATE would.)
        conn.exec_driver_sql(_NEW_STATE_SQL.format(m=_marks(conn)), [(b, stamp) for b in box_ids])
    query = _STATES_WITH_FILLS[(sqlite, locked or sqlite)]
    for _ in range(2):
        # (By position: a Row's attribute access costs more than the rest of the read.)
        for row in conn.execute(query, {"ids": box_ids, "at": now}).all():  # (fetchall: not row by row)
            box_id = row[_BOX_ID_AT]
            states[box_id] = _StateValues.from_row(row)
            if row[_FILL_ID_AT] is not None:
                fills[box_id] = FillRow(row)
        missing = [b for b in box_ids if b not in states]
        if not missing:
            break
        # Boxes registered before their states were made at registration (or made by a bulk
        # path) get theirs here, once; on PostgreSQL the locked read comes first, as the states
        # nearly always exist.
        conn.exec_driver_sql(_NEW_STATE_SQL.format(m=_marks(conn)), [(b, stamp) for b in missing])
        box_ids = missing
    return states, fills


def state_version(state: _StateValues) -> tuple:
    """What :func:`lock_changed` compares: the state as read, before a batch integrates into it."""
    return (state.updated_at, state.reading_count, state.fill_id)


def lock_changed(session: Session, box_ids: list[int], versions: dict[int, tuple]) -> list[int]:
    """PostgreSQL: lock the states of ``box_ids`` (sorted; FOR UPDATE in box order, so two
    batches never deadlock) and return those no longer as read (``versions``, by
    :func:`state_version`): another batch integrated into them, or a fill was synced, since."""
    rows = session.connection().execute(_LOCK_VERSIONS, {"ids": box_ids}).all()
    return [row[0] for row in rows if tuple(row[1:]) != versions[row[0]]]


def create_sensor_state(session: Session, box: Box) -> None:
    """The wiring's ``box_registered`` hook: a new box's (empty) sensor state, so that its first
    reading finds it as every later one does (and a fill before it syncs it, without readings)."""
    session.add(
        BoxSensorState(
            box_id=box.id,
            adsorbed_kg=0.0,
            integrated_count=0,
            last_rate_kg_h=0.0,
            load_hours=[],
            breakthrough_count=0,
            latest={},
            reading_count=0,
            updated_at=box.created_at,
        )
    )


class _DbNeighbours:
    """Stored readings of one fill around a timestamp, by index look-ups on (box_id, ts)."""

    def __init__(self, session: Session, box_id: int, since: datetime):
        self.session, self.box_id, self.since = session, box_id, since

    def _one(self, condition, order) -> Point | None:
        t = SensorReading
        row = self.session.execute(
            select(t.ts, t.inlet_mg_m3, t.outlet_mg_m3, t.airflow_m3_h, t.running)
            .where(t.box_id == self.box_id, t.ts >= self.since, condition)
            .order_by(order)
            .limit(1)
        ).first()
        return (
            Point(row.ts, rate_kg_h(row.inlet_mg_m3, row.outlet_mg_m3, row.airflow_m3_h, row.running)) if row else None
        )

    def before(self, ts: datetime) -> Point | None:
        return self._one(SensorReading.ts < ts, SensorReading.ts.desc())

    def after(self, ts: datetime) -> Point | None:
        return self._one(SensorReading.ts > ts, SensorReading.ts.asc())


LATEST_FIELDS = ("running", *MEASURES)
_R_OUTLET = R_MEASURE + list(MEASURES).index("outlet_mg_m3")
_LATEST_OF = tuple((k, R_RUNNING if k == "running" else R_MEASURE + list(MEASURES).index(k)) for k in LATEST_FIELDS)


# What ingest writes into a state (``fill_id`` and ``fill_started_at``: a new fill's, by
# :func:`sync_state_to_fill`; the rest by :func:`_apply`).
_STATE_WRITTEN = (
    "fill_id",
    "fill_started_at",
    "adsorbed_kg",
    "integrated_count",
    "last_integrated_ts",
    "last_rate_kg_h",
    "load_hours",
    "breakthrough_since",
    "breakthrough_count",
    "latest_ts",
    "latest",
    "reading_count",
    "updated_at",
)
_STATE_TIMES = frozenset({"fill_started_at", "last_integrated_ts", "breakthrough_since", "latest_ts", "updated_at"})
_STATE_JSON = frozenset({"latest", "load_hours"})


@lru_cache(maxsize=4)
def _update_state_sql(mark: str) -> str:
    """One UPDATE by primary key, executed for all of a batch's states, as driver SQL (the values
    bound as the column types would: timestamps by :func:`bind_ts`, ``latest`` as JSON text)."""
    columns = ", ".join(f"{name} = {mark}" for name in _STATE_WRITTEN)
    return f"UPDATE {BoxSensorState.__tablename__} SET {columns} WHERE box_id = {mark}"


# PostgreSQL: the same UPDATE as one statement from a COPYed stage (app.telemetry.services.bulk).
_STATE_STAGE = "ingest_states_stage"
_PG_UPDATE_STATES = (
    f"UPDATE {BoxSensorState.__tablename__} AS s SET "
    + ", ".join(f"{n} = v.{n}" for n in _STATE_WRITTEN)
    + f" FROM {_STATE_STAGE} AS v WHERE s.box_id = v.box_id"
)


_S = TypeVar("_S", BoxSensorState, "_StateValues")


class _StateValues:
    """A state's values while a batch is integrated into it: plain attributes, without the
    ORM's change tracking, read by :func:`lock_states` and stored by :func:`store_states`."""

    __slots__ = ("box_id", *_STATE_WRITTEN)
    # The columns' types (app.telemetry.models.BoxSensorState).
    box_id: int
    fill_id: int | None
    fill_started_at: datetime | None
    adsorbed_kg: float
    integrated_count: int
    last_integrated_ts: datetime | None
    last_rate_kg_h: float
    load_hours: list[list[float]]
    breakthrough_since: datetime | None
    breakthrough_count: int
    latest_ts: datetime | None
    latest: dict[str, Any]
    reading_count: int
    updated_at: datetime | None

    def __init__(self, state: Any) -> None:  # a row of the states' columns, or a BoxSensorState
        for name in self.__slots__:
            setattr(self, name, getattr(state, name))

    @classmethod
    def from_row(cls, row: tuple) -> _StateValues:
        """From a row of the locked read as a tuple (the JSON columns as text)."""
        values = cls.__new__(cls)
        for name, at in _STATE_AT:
            setattr(values, name, row[at])
        values.load_hours = _parsed(values.load_hours)
        values.latest = _parsed(values.latest)
        return values


# Positions of the values in a row of the read (_STATES_WITH_FILLS).
_READ_NAMES = [c.name for c in _STATE_COLUMNS] + [f"f_{c}" for c in _FILL_COLUMNS]
_STATE_AT = tuple((name, _READ_NAMES.index(name)) for name in _StateValues.__slots__)
_FILL_AT = tuple((name, _READ_NAMES.index(f"f_{name}")) for name in _FILL_COLUMNS)
_BOX_ID_AT, _FILL_ID_AT = _READ_NAMES.index("box_id"), _READ_NAMES.index("f_id")


def _parsed(text: Any) -> Any:
    return orjson.loads(text) if text is not None else None


def store_states(session: Session, written: list[_StateValues]) -> None:
    """Write the integrated values into the states' rows, one UPDATE by primary key executed for
    all of them (PostgreSQL: from a COPYed stage). States the session holds as ORM objects take
    the values as stored (unchanged to the ORM, which need not flush them)."""
    if not written:
        return
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    times, as_json = _STATE_TIMES, _STATE_JSON
    params = []
    for values in written:
        row = []
        for name in _STATE_WRITTEN:
            value = getattr(values, name)
            if name in as_json:
                value = orjson.dumps(value).decode()
            elif value is not None and name in times:
                value = bind_ts(value, sqlite)
            row.append(value)
        row.append(values.box_id)
        params.append(tuple(row))
    if sqlite:
        conn.exec_driver_sql(_update_state_sql(_marks(conn)), params)
    else:
        stage(conn, _STATE_STAGE, BoxSensorState.__tablename__, (*_STATE_WRITTEN, "box_id"), params)
        conn.exec_driver_sql(_PG_UPDATE_STATES)
    if session.identity_map:
        key_of = sa_inspect(BoxSensorState).identity_key_from_primary_key
        for values in written:
            held = session.identity_map.get(key_of((values.box_id,)))
            if held is not None:
                _set_stored(held, values)


def _set_stored(state: BoxSensorState, values: _StateValues) -> None:
    for name in _STATE_WRITTEN:
        set_committed_value(state, name, getattr(values, name))


def states_into_session(session: Session, written: list[_StateValues]) -> list[BoxSensorState]:
    """Put the stored states into the session as ORM objects, without a query (the colour
    refresh reads them from there: app.telemetry.colour.sensor_facts). The caller holds the
    list returned while it needs them: the identity map holds unchanged objects weakly."""
    key_of = sa_inspect(BoxSensorState).identity_key_from_primary_key
    held: list[BoxSensorState] = []
    for values in written:
        state = session.identity_map.get(key_of((values.box_id,)))
        if state is None:
            state = BoxSensorState(box_id=values.box_id, **{name: getattr(values, name) for name in _STATE_WRITTEN})
            make_transient_to_detached(state)  # as if loaded: no history, nothing to flush
            session.add(state)
        held.append(state)  # (one the session held already has the stored values: store_states)
    return held


def _apply(
    session: Session,
    box: Any,  # a Box, or a row with its id and emission_limit_mg_m3
    state: _StateValues,
    rows: list[tuple],
    rollups: _Rollups,
    settings: Settings,
    now: datetime,
) -> None:
    """Integrate a box's new readings (checked tuples, sorted by ts) into its state and the
    hourly roll-ups. Per reading: its roll-up sums and its term of the integral; the rest is
    per box and batch."""
    rollups.add_readings(box.id, rows)
    if state.fill_id is not None:
        # The rows are sorted by ts: those of the fill are a suffix; of these, the late ones
        # (not newer than the newest integrated) come first, then the tail that extends the chain.
        assert state.fill_started_at is not None  # set together with fill_id (sync_state_to_fill)
        first = bisect_left(rows, state.fill_started_at, key=itemgetter(R_TS))
        fill_rows = rows[first:] if first else rows
        last_ts = state.last_integrated_ts
        last = Point(last_ts, state.last_rate_kg_h) if last_ts else None
        split = bisect_right(fill_rows, last_ts, key=itemgetter(R_TS)) if last_ts else 0
        delta_kg = 0.0
        covered: dict = {}
        kg_by_hour: dict = {}
        if split:
            # Each run of late readings between two stored ones replaces that one interval.
            late = [
                Point(ts, (inlet - outlet) * airflow * 1e-6 if running and inlet - outlet > 0 else 0.0)
                for _, _, ts, _, _, inlet, outlet, airflow, _, _, _, _, running, _ in fill_rows[:split]
            ]
            result = merge(last, late, _DbNeighbours(session, box.id, state.fill_started_at), settings.max_interval_s)
            delta_kg = result.delta_kg
            kg_by_hour, covered = result.by_hour, result.covered_by_hour
            for hour, kg in result.by_hour.items():
                rollups.add_adsorbed(box.id, hour, kg)
        tail = fill_rows[split:] if split else fill_rows
        if tail:
            tail_kg, by_hour, tail_covered, newest = integrate_in_order(last, tail, settings.max_interval_s)
            delta_kg += tail_kg
            state.last_integrated_ts, state.last_rate_kg_h = newest
            for hour, kg in by_hour.items():
                rollups.add_adsorbed(box.id, hour, kg)
            if kg_by_hour:
                for hour, kg in by_hour.items():
                    kg_by_hour[hour] = kg_by_hour.get(hour, 0.0) + kg
                for hour, sec in tail_covered.items():
                    covered[hour] = covered.get(hour, 0.0) + sec
            else:
                kg_by_hour, covered = by_hour, tail_covered
        if fill_rows:
            state.load_hours = ring_add(state.load_hours, kg_by_hour, covered, state.last_integrated_ts)
        state.adsorbed_kg = max(state.adsorbed_kg + delta_kg, 0.0)
        state.integrated_count += len(fill_rows)
    # The newest readings drive the alarms: latest values and the breakthrough streak. Late
    # readings (older than the newest stored) change neither. The streak is the run of
    # readings above the limit at the end, so it is read backwards from the newest.
    latest_ts = state.latest_ts
    newer = rows if latest_ts is None else rows[bisect_right(rows, latest_ts, key=itemgetter(R_TS)) :]
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
        newest_row = newer[-1]
        state.latest_ts = newest_row[R_TS]
        state.latest = {k: newest_row[i] for k, i in _LATEST_OF}
        state.breakthrough_since, state.breakthrough_count = since, count
    state.reading_count = (state.reading_count or 0) + len(rows)
    state.updated_at = now


def integrate_in_order(
    last: Point | None, rows: list[tuple], cap_s: float
) -> tuple[float, dict[datetime, float], dict[datetime, float], Point]:
    """Extend the integral whose newest reading is ``last`` by checked readings (sorted, distinct,
    all newer than ``last``: the tail of every batch, nearly always all of it), in one pass: the
    adsorbed kg, kg and held seconds per hour of the interval start (the load ring's sums) and
    the new newest point. The same sums, to the bit, as :func:`merge` (a test holds it to that),
    with the rates computed inline and the timestamps taken in epoch microseconds (the hot loop
    of ingest: no call and no datetime arithmetic per reading)."""
    if last is not None:
        prev_ts, prev_rate, prev_us = last.ts, last.rate_kg_h, epoch_us(last.ts)
    else:
        prev_ts, prev_rate, prev_us = None, 0.0, None
    delta_kg = 0.0
    by_hour: dict[datetime, float] = {}
    covered: dict[datetime, float] = {}
    # No hour yet: the empty interval [0, -1) is left at the first reading.
    hour, hour_lo, hour_hi, hour_kg, hour_s = _EPOCH, 0, -1, 0.0, 0.0
    for _, _, ts, _, _, inlet, outlet, airflow, _, _, _, _, running, us in rows:
        if prev_us is not None:
            held = (us - prev_us) / 1e6
            if held > cap_s:
                held = cap_s
            if not hour_lo <= prev_us < hour_hi:
                if hour_kg:
                    by_hour[hour] = by_hour.get(hour, 0.0) + hour_kg
                    delta_kg += hour_kg
                if hour_s:
                    covered[hour] = covered.get(hour, 0.0) + hour_s
                assert prev_ts is not None  # set together with prev_us
                hour = hour_of(prev_ts)
                hour_lo = epoch_us(hour)
                hour_hi, hour_kg, hour_s = hour_lo + HOUR_US, 0.0, 0.0
            hour_kg += prev_rate * held / 3600.0
            hour_s += held
        prev_ts, prev_us = ts, us
        prev_rate = (inlet - outlet) * airflow * 1e-6 if running and inlet - outlet > 0 else 0.0
    if hour_kg:
        by_hour[hour] = by_hour.get(hour, 0.0) + hour_kg
        delta_kg += hour_kg
    if hour_s:
        covered[hour] = covered.get(hour, 0.0) + hour_s
    assert prev_ts is not None  # the rows are not empty
    return delta_kg, by_hour, covered, Point(prev_ts, prev_rate)


def sync_state_to_fill(session: Session, state: _S, fill: Fill | Any | None, settings: Settings) -> _S:
    """A new fill (replacement) restarts the integral: only readings at or after its time count.
    (``state``: a :class:`BoxSensorState` or ingest's :class:`_StateValues`; ``fill``: a
    :class:`Fill`, or a row with its ``id`` and ``filled_at``.)

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
    state.load_hours = []
    if fill is None:
        return state
    t = SensorReading
    rows = session.execute(
        select(t.ts, t.inlet_mg_m3, t.outlet_mg_m3, t.airflow_m3_h, t.running)
        .where(t.box_id == state.box_id, t.ts >= fill.filled_at)
        .order_by(t.ts)
        .execution_options(yield_per=5000)
    )
    prev: Point | None = None
    kg_by_hour: dict[datetime, float] = {}
    covered: dict[datetime, float] = {}
    cap_s = settings.max_interval_s
    for row in rows:
        point = Point(row.ts, rate_kg_h(row.inlet_mg_m3, row.outlet_mg_m3, row.airflow_m3_h, row.running))
        if prev is not None:
            kg = hold_kg(prev, point.ts, cap_s)
            state.adsorbed_kg += kg
            hour = hour_of(prev.ts)
            kg_by_hour[hour] = kg_by_hour.get(hour, 0.0) + kg
            covered[hour] = covered.get(hour, 0.0) + held_seconds(prev.ts, point.ts, cap_s)
        state.integrated_count += 1
        prev = point
    if prev is not None:
        state.last_integrated_ts, state.last_rate_kg_h = prev.ts, prev.rate_kg_h
        state.load_hours = ring_add([], kg_by_hour, covered, prev.ts)
    return state


def open_interval_kg(state: BoxSensorState | _StateValues, now: datetime, cap_s: float) -> float:
    """The newest reading's interval is still open: it holds until now, at most ``cap_s``."""
    if state.last_integrated_ts is None:
        return 0.0
    return hold_kg(Point(state.last_integrated_ts, state.last_rate_kg_h), now, cap_s)
