"""Sensor facts and sensor rules for the four-colour engine (:mod:`app.boxes.colour`).

The provider reads each box's :class:`BoxSensorState` (one query per batch of boxes, none for
the states the session holds already, as after ingest) and gives
the engine the integrated adsorbed mass and the measured load, so saturation and the predicted
replacement date follow the readings. The checks below are switched on, with their thresholds,
by ``app/data/colour_rules.yaml``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType, SimpleNamespace
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import bindparam, select
from sqlalchemy import inspect as sa_inspect

from app.boxes.colour import Check, Finding
from app.common.wiring import wiring_of
from app.telemetry.integration import (
    MeasuredLoad,
    held_seconds,
    load_window_facts,
    rate_kg_h,
    window_load,
    window_start_hour,
)
from app.telemetry.models import MEASURES, BoxSensorState, SensorReading
from app.telemetry.services import Settings, open_interval_kg, sync_state_to_fill
from app.telemetry.services.checks import bind_ts


def _settings() -> Settings:
    return Settings.from_config(current_app.config) if has_app_context() else Settings()


def _min_covered_s(session) -> float:
    """The colour rules' ``measured_load.min_covered_hours``, in seconds: less held time in the
    load window is too little data, and the prediction uses the design load."""
    return wiring_of(session).colour_rules().min_load_covered_h * 3600.0


_STATES = select(BoxSensorState).where(BoxSensorState.box_id.in_(bindparam("ids", expanding=True)))


def _states(session, ids: list[int]) -> dict[int, BoxSensorState]:
    """The boxes' states: those the session holds fully loaded (ingest has just written them)
    as they are, the others in one query. The query would give the same objects, unrefreshed."""
    states: dict[int, BoxSensorState] = {}
    missing: list[int] = []
    identity_map = session.identity_map
    key_of = sa_inspect(BoxSensorState).identity_key_from_primary_key
    deleted = session.deleted
    for box_id in ids:
        state = identity_map.get(key_of((box_id,)))
        if state is None or state in deleted:
            missing.append(box_id)
            continue
        insp = sa_inspect(state)
        if insp.expired or insp.expired_attributes or not insp.persistent:
            missing.append(box_id)
        else:
            states[box_id] = state
    if missing:
        states.update((s.box_id, s) for s in session.scalars(_STATES, {"ids": missing}))
    return states


def sensor_facts(session, boxes, facts_by_box_id, now) -> None:
    ids = [b.id for b in boxes]
    if not ids:
        return
    replay = session.info.get(REPLAY_KEY)
    if replay is None:
        states, settings, min_covered_s = _states(session, ids), _settings(), _min_covered_s(session)
    else:
        # A replay evaluates the same box at hundreds of moments and changes no sensor state:
        # the stored states and the settings are read once.
        memo = replay.setdefault("sensor_states", {})
        key = tuple(ids)
        if key not in memo:
            memo[key] = (_states(session, ids), _settings(), _min_covered_s(session))
        states, settings, min_covered_s = memo[key]
    for box in boxes:
        facts = facts_by_box_id[box.id]
        state = states.get(box.id)
        fill = facts.get("fill")
        load = None
        if state is not None and replay is not None and box.id in replay["since"]:
            # Replaying the box's history: the readings as they stood at ``now``.
            timeline = replay["timelines"].get(box.id)
            if timeline is None:
                timeline = replay["timelines"][box.id] = Timeline(
                    session, box, state, replay["since"][box.id], settings.max_interval_s, min_covered_s
                )
            state, load = timeline.state_at(fill, now)
            if timeline.next_after(now) is not None:
                facts["next_check_candidates"].append(timeline.next_after(now))
        facts["sensor"] = state
        if state is None:
            continue
        if load is None and state.fill_id != (fill.id if fill else None):
            # A fill recorded since the last batch: restart the integral now (locked, once).
            session.refresh(state, with_for_update=True)
            sync_state_to_fill(session, state, fill, settings)
        if state.latest_ts is not None:
            facts["latest_reading"] = {"ts": state.latest_ts.isoformat(), **(state.latest or {})}
        if fill is not None and state.last_integrated_ts is not None:
            facts["adsorbed_kg"] = state.adsorbed_kg + open_interval_kg(state, now, settings.max_interval_s)
            # The newest reading's interval still adsorbs at its rate until the cap: saturation
            # levels it crosses in that time are moments of their own (derive_saturation).
            facts["open_interval"] = (
                state.last_rate_kg_h,
                state.last_integrated_ts + timedelta(seconds=settings.max_interval_s),
            )
            # The measured load of the last 24 h of readings (None: too little data in them).
            if load is None:
                load = window_load(
                    state.load_hours, state.last_integrated_ts, state.fill_started_at, min_covered_s=min_covered_s
                )
            facts["measured_load"] = load
            # What the prediction's load was judged on, for the box's reads (stored with the colour).
            facts["load_window"] = load_window_facts(load, min_covered_s)
            if load.kg_per_day is not None:
                facts["load_kg_per_day"] = load.kg_per_day
            # The open interval stops growing after the cap: look again then.
            facts["next_check_candidates"].append(state.last_integrated_ts + timedelta(seconds=settings.max_interval_s))


# ---------------------------------------------------------------- the past, for history replays

# session.info[REPLAY_KEY] = {"since": {box_id: datetime}, "timelines": {}} while
# app.boxes.services.rebuild_history evaluates boxes at past moments.
REPLAY_KEY = "colour_replay"
_READING_COLUMNS = ("ts", *MEASURES, "running")


class Timeline:
    """A box's readings from a day before a replay's start: what its sensor state was at any
    moment from the start on, as a state-like object (the integral, the newest reading, the
    breakthrough streak) and the measured load, the same values ingest would have kept had the
    readings up to that moment been all there is. The current fill's integral before the loaded
    readings is taken from the stored state; an older or newer fill's is summed here."""

    def __init__(self, session, box, state: BoxSensorState, since: datetime, cap_s: float, min_covered_s: float):
        t = SensorReading
        before = session.scalar(select(t.ts).where(t.box_id == box.id, t.ts < since).order_by(t.ts.desc()).limit(1))
        self.lo = min(since, before or since) - timedelta(hours=25)
        self.state, self.cap_s, self.box, self.session = state, cap_s, box, session
        self.min_covered_s = min_covered_s
        # Every evaluated moment is at or after ``since``: the readings before the newest one
        # before it only feed the integral, the load window and the streak, so they are read
        # lean (a day of them, thousands); whole rows from that newest one on.
        pivot = before or since
        cols = [getattr(t, c) for c in _READING_COLUMNS]
        self.rows = [
            tuple(r) for r in session.execute(select(*cols).where(t.box_id == box.id, t.ts >= pivot).order_by(t.ts))
        ]
        outlet = 1 + list(MEASURES).index("outlet_mg_m3")
        self.lean = _lean_rows(session, box.id, self.lo, pivot) + [
            (r[0], r[1], r[outlet], r[3], r[-1]) for r in self.rows
        ]
        self.offset = len(self.lean) - len(self.rows)  # self.rows[i - offset] is reading i
        self.ts = [r[0] for r in self.lean]
        self.whole_before = session.scalar(select(t.ts).where(t.box_id == box.id, t.ts < self.lo).limit(1)) is None
        # The breakthrough streak ending at each reading: its length and first reading's ts.
        limit = box.emission_limit_mg_m3
        self.streak: list[tuple[int, datetime | None]] = []
        for r in self.lean:
            above = bool(r[-1]) and r[2] > limit
            prev = self.streak[-1] if self.streak else (0, None)
            self.streak.append((prev[0] + 1, prev[1] if prev[0] else r[0]) if above else (0, None))
        self._fills: dict[int, tuple] = {}
        self._states: dict[tuple[int | None, int], tuple[SimpleNamespace, MeasuredLoad]] = {}

    def next_after(self, t: datetime) -> datetime | None:
        i = bisect_right(self.ts, t)
        return self.ts[i] if i < len(self.ts) else None

    def _row(self, i: int) -> tuple:
        """Reading ``i`` whole (one before the whole rows is read when asked for)."""
        if i >= self.offset:
            return self.rows[i - self.offset]
        t = SensorReading
        cols = [getattr(t, c) for c in _READING_COLUMNS]
        return tuple(self.session.execute(select(*cols).where(t.box_id == self.box.id, t.ts == self.ts[i])).one())

    def _fill_sums(self, fill):
        """For ``fill``: its readings' index range, rates, and the cumulative kg and held seconds
        of their intervals; ``base``: the integral before the first loaded reading."""
        cached = self._fills.get(fill.id)
        if cached is None:
            first = bisect_left(self.ts, fill.filled_at)
            rows = self.lean[first:]
            state = self.state
            suffix = fill.filled_at < self.lo and state.fill_id == fill.id and not self.whole_before
            if fill.filled_at < self.lo and not suffix and not self.whole_before:
                # An older fill than the stored state's: its readings before the loaded ones too.
                rows = _lean_rows(self.session, self.box.id, fill.filled_at, self.lo) + rows
            rates = [rate_kg_h(r[1], r[2], r[3], r[-1]) for r in rows]
            ts = [r[0] for r in rows]
            cum_kg, cum_s = [0.0], [0.0]
            for i in range(1, len(ts)):
                held = held_seconds(ts[i - 1], ts[i], self.cap_s)
                cum_kg.append(cum_kg[-1] + rates[i - 1] * held / 3600.0)
                cum_s.append(cum_s[-1] + held)
            # The stored integral less the loaded part, when the part before them is not loaded.
            base = state.adsorbed_kg - cum_kg[-1] if suffix else 0.0
            cached = self._fills[fill.id] = (ts, rates, cum_kg, cum_s, base)
        return cached

    def state_at(self, fill, t: datetime):
        """The state and the measured load at ``t``: those of the newest reading at or before
        ``t`` (the same for every moment until the next reading, so they are made once)."""
        i = bisect_right(self.ts, t) - 1
        key = (fill.id if fill is not None else None, i)
        found = self._states.get(key)
        if found is None:
            found = self._states[key] = self._state_at(fill, t, i)
        return found

    def _state_at(self, fill, t: datetime, i: int):
        values: dict[str, Any] = dict(
            fill_id=fill.id if fill else None,
            fill_started_at=fill.filled_at if fill else None,
            adsorbed_kg=0.0,
            last_integrated_ts=None,
            last_rate_kg_h=0.0,
            load_hours=[],
            latest_ts=None,
            latest={},
            breakthrough_count=0,
            breakthrough_since=None,
        )
        if i >= 0:
            row = self._row(i)
            values["latest_ts"] = row[0]
            values["latest"] = dict(zip(_READING_COLUMNS[1:], row[1:], strict=True))
            values["breakthrough_count"], values["breakthrough_since"] = self.streak[i]
        load = MeasuredLoad(None, 0.0, 0.0, 0.0)
        if fill is not None:
            ts, rates, cum_kg, cum_s, base = self._fill_sums(fill)
            k = bisect_right(ts, t) - 1
            if k >= 0:
                values.update(adsorbed_kg=max(base + cum_kg[k], 0.0), last_integrated_ts=ts[k], last_rate_kg_h=rates[k])
                start_hour = window_start_hour(ts[k])
                j = bisect_left(ts, start_hour)
                kg, covered = cum_kg[k] - cum_kg[j], cum_s[k] - cum_s[j]
                load = _load(kg, covered, ts[k], max(start_hour, fill.filled_at), self.min_covered_s)
        return SimpleNamespace(**values), load


def _lean_rows(session, box_id: int, lo: datetime, hi: datetime) -> list[tuple]:
    """``(ts, inlet, outlet, airflow, running)`` of the box's readings in [lo, hi), in order:
    driver SQL, so that a day of readings is not passed through SQLAlchemy value by value."""
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"
    # The driver's own cursor (in the session's transaction): plain tuples, no Row per reading.
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(
            f"SELECT ts, inlet_mg_m3, outlet_mg_m3, airflow_m3_h, running FROM {SensorReading.__tablename__} "
            f"WHERE box_id = {mark} AND ts >= {mark} AND ts < {mark} ORDER BY ts",
            (box_id, bind_ts(lo, sqlite), bind_ts(hi, sqlite)),
        )
        rows = cursor.fetchall()
    finally:
        cursor.close()
    if sqlite:  # as UTCDateTime reads them: naive UTC text
        parse = datetime.fromisoformat
        return [(parse(ts).replace(tzinfo=UTC), i, o, a, bool(r)) for ts, i, o, a, r in rows]
    return [(ts.astimezone(UTC), i, o, a, r) for ts, i, o, a, r in rows]


def _load(kg: float, covered: float, newest: datetime, start: datetime, min_covered_s: float) -> MeasuredLoad:
    """window_load's arithmetic, for sums already taken."""
    length = (newest - start).total_seconds()
    if covered < min_covered_s or length <= 0:
        return MeasuredLoad(None, kg, covered, max(length, 0.0))
    return MeasuredLoad(max(kg, 0.0) / length * 86400.0, kg, covered, length)


def _latest(facts, name):
    state = facts.get("sensor")
    if state is None or state.latest_ts is None:
        return None
    return (state.latest or {}).get(name)


def _r(value: float) -> float:
    return round(value, 1)


def _breakthrough(facts, params):
    """Outlet above the box's emission limit for ≥ min_readings consecutive readings spanning
    ≥ min_minutes: sustained breakthrough, not a single spike."""
    state = facts.get("sensor")
    if state is None or not state.breakthrough_count or state.breakthrough_since is None:
        return None
    span = (state.latest_ts - state.breakthrough_since).total_seconds() / 60
    if state.breakthrough_count >= params.get("min_readings", 3) and span >= params.get("min_minutes", 2):
        return Finding(_r(_latest(facts, "outlet_mg_m3")), facts["box"].emission_limit_mg_m3, state.breakthrough_since)
    return None


def _bed_temperature(facts, params):
    value, threshold = _latest(facts, "bed_temp_c"), params.get("threshold", 83)
    if value is not None and value >= threshold:
        return Finding(_r(value), threshold, facts["sensor"].latest_ts)
    return None


def _inlet_temperature(facts, params):
    value, threshold = _latest(facts, "inlet_temp_c"), params.get("threshold", 40)
    if value is not None and value > threshold:
        return Finding(_r(value), threshold, facts["sensor"].latest_ts)
    return None


def _pressure_drop(facts, params):
    box = facts["box"]
    value = _latest(facts, "pressure_drop_pa")
    lo, hi = box.pressure_drop_min_pa, box.pressure_drop_max_pa
    # A stopped fan has no pressure drop: that is not a clogged or broken bed.
    if value is None or not _latest(facts, "running") or (lo is None and hi is None):
        return None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        band = (
            f"{lo:g}–{hi:g}" if lo is not None and hi is not None else (f"≥ {lo:g}" if lo is not None else f"≤ {hi:g}")
        )
        return Finding(_r(value), band, facts["sensor"].latest_ts)
    return None


def _efficiency(facts, params):
    inlet, outlet = _latest(facts, "inlet_mg_m3"), _latest(facts, "outlet_mg_m3")
    threshold = params.get("threshold", 0.7)
    # Below min_inlet_mg_m3 the ratio is sensor noise, and a stopped fan removes nothing by design.
    if inlet is None or not _latest(facts, "running") or inlet < max(params.get("min_inlet_mg_m3", 10), 1e-9):
        return None
    efficiency = 1 - outlet / inlet
    if efficiency < threshold:
        return Finding(f"{efficiency * 100:.0f}%", f"{threshold * 100:.0f}%", facts["sensor"].latest_ts)
    return None


def _silence(facts, params):
    """Hours without a reading on a box that has sensors (counted from the fill when none yet)."""
    box = facts["box"]
    if not box.has_sensors:
        return None
    state = facts.get("sensor")
    last = state.latest_ts if state is not None and state.latest_ts is not None else None
    fill = facts.get("fill")
    reference = last or (fill.filled_at if fill is not None else None)
    if reference is None:
        return None
    hours = params.get("hours", 24)
    due = reference + timedelta(hours=hours)
    facts["next_check_candidates"].append(due)
    if facts["now"] >= due:
        silent = (facts["now"] - reference).total_seconds() / 3600
        return Finding(_r(silent), hours, due)
    return None


# The checks of the sensor rules, plugged into the engine by app.common.wiring (colour_checks).
SENSOR_CHECKS: Mapping[str, Check] = MappingProxyType(
    {
        "sensor_breakthrough": _breakthrough,
        "bed_temperature_high": _bed_temperature,
        "inlet_temperature_high": _inlet_temperature,
        "pressure_drop_out_of_band": _pressure_drop,
        "removal_efficiency_low": _efficiency,
        "no_sensor_data": _silence,
        "no_sensor_data_long": _silence,
    }
)
