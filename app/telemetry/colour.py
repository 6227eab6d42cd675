"""Sensor facts and sensor rules for the four-colour engine (:mod:`app.boxes.colour`).

The provider reads each box's :class:`BoxSensorState` (one query per batch of boxes, none for
the states the session holds already, as after ingest) and gives
the engine the integrated adsorbed mass and the measured load, so saturation and the predicted
replacement date follow the readings. The checks below are switched on, with their thresholds,
by ``app/data/colour_rules.yaml``.
"""
from __future__ import annotations

from datetime import timedelta

from flask import current_app, has_app_context
from sqlalchemy import bindparam, select
from sqlalchemy import inspect as sa_inspect

from app.boxes.colour import Finding, check, fact_provider
from app.telemetry.integration import window_load
from app.telemetry.models import BoxSensorState
from app.telemetry.services import Settings, open_interval_kg, sync_state_to_fill


def _settings() -> Settings:
    return Settings.from_config(current_app.config) if has_app_context() else Settings()


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


@fact_provider
def sensor_facts(session, boxes, facts_by_box_id, now) -> None:
    ids = [b.id for b in boxes]
    if not ids:
        return
    states = _states(session, ids)
    settings = None
    for box in boxes:
        facts = facts_by_box_id[box.id]
        state = states.get(box.id)
        facts["sensor"] = state
        if state is None:
            continue
        settings = settings or _settings()
        fill = facts.get("fill")
        if state.fill_id != (fill.id if fill else None):
            # A fill recorded since the last batch: restart the integral now (locked, once).
            session.refresh(state, with_for_update=True)
            sync_state_to_fill(session, state, fill, settings)
        if state.latest_ts is not None:
            facts["latest_reading"] = {"ts": state.latest_ts.isoformat(), **(state.latest or {})}
        if fill is not None and state.last_integrated_ts is not None:
            facts["adsorbed_kg"] = state.adsorbed_kg + open_interval_kg(state, now, settings.max_interval_s)
            # The measured load of the last 24 h of readings (None: too little data in them).
            load = window_load(state.load_hours, state.last_integrated_ts, state.fill_started_at)
            facts["measured_load"] = load
            if load.kg_per_day is not None:
                facts["load_kg_per_day"] = load.kg_per_day
            # The open interval stops growing after the cap: look again then.
            facts["next_check_candidates"].append(state.last_integrated_ts + timedelta(seconds=settings.max_interval_s))


def _latest(facts, name):
    state = facts.get("sensor")
    if state is None or state.latest_ts is None:
        return None
    return (state.latest or {}).get(name)


def _r(value: float) -> float:
    return round(value, 1)


@check("sensor_breakthrough")
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


@check("bed_temperature_high")
def _bed_temperature(facts, params):
    value, threshold = _latest(facts, "bed_temp_c"), params.get("threshold", 83)
    if value is not None and value >= threshold:
        return Finding(_r(value), threshold, facts["sensor"].latest_ts)
    return None


@check("inlet_temperature_high")
def _inlet_temperature(facts, params):
    value, threshold = _latest(facts, "inlet_temp_c"), params.get("threshold", 40)
    if value is not None and value > threshold:
        return Finding(_r(value), threshold, facts["sensor"].latest_ts)
    return None


@check("pressure_drop_out_of_band")
def _pressure_drop(facts, params):
    box = facts["box"]
    value = _latest(facts, "pressure_drop_pa")
    lo, hi = box.pressure_drop_min_pa, box.pressure_drop_max_pa
    # A stopped fan has no pressure drop: that is not a clogged or broken bed.
    if value is None or not _latest(facts, "running") or (lo is None and hi is None):
        return None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        band = f"{lo:g}–{hi:g}" if lo is not None and hi is not None else (f"≥ {lo:g}" if lo is not None else f"≤ {hi:g}")
        return Finding(_r(value), band, facts["sensor"].latest_ts)
    return None


@check("removal_efficiency_low")
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


check("no_sensor_data")(_silence)
check("no_sensor_data_long")(_silence)
