"""Ingest's figures path (issue 12): the figures every read of a box shows (saturation, adsorbed
kg, latest reading, predicted date, load window, next check) brought up to date for the boxes of
a batch whose readings crossed no threshold of the colour rules, set-wise and without the full
colour evaluation; the others are left to it (:func:`app.boxes.services.refresh_colours`).

A box takes this path when its stored evaluation is current (same rules, next check not come),
green without reasons, on the sensor basis of its current fill, and the batch integrated into
that fill (no fill change, no late reading: the caller replays those). For such a box only the
rules whose facts readings move can change its colour: the saturation bands and the predicted
date (the integral) and the sensor alarms and silence (the newest readings); the others (iodine,
the waste's deadlines) depend on facts a reading leaves as they were. So the box's sensor facts
are taken as the full evaluation takes them (the telemetry fact provider, the engine's
:func:`derive_saturation`), the reading-driven rules' own checks are asked, and if none finds
anything the box stays green with no reasons: its figures are what the full evaluation would
store, written in one statement for all (PostgreSQL: COPY into a stage and one UPDATE … FROM;
SQLite: executemany). Any finding sends the box to the full evaluation.

The next check is the first future moment of the evaluation's candidates: the sensor facts' own
(the open interval's end, the silence deadlines, saturation levels the open interval reaches),
made anew, and the others (e.g. a waste deadline), which readings do not move: those are the
stored evaluation's candidates (``colour_detail["next_checks"]``) less the sensor candidates of
the state before the batch. A test (tests/telemetry/test_incremental.py) holds the result equal
to a full evaluation for random sequences of batches, fills and gaps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import ARRAY, String, Text, any_, bindparam, select
from sqlalchemy import cast as cast_
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from app.boxes.colour import Evaluation, RuleSet, derive_saturation
from app.boxes.models import Box
from app.boxes.services.stored import is_stored_current, rules_digest, snapshot
from app.common.columns import json_default
from app.common.wiring import wiring_of
from app.telemetry.integration import load_window_facts, window_load
from app.telemetry.services.bulk import stage
from app.telemetry.services.checks import bind_ts
from app.telemetry.services.settings import Settings
from app.telemetry.services.states import FillRow, _StateValues, open_interval_kg

# The engine's rules whose findings follow the integral (app.boxes.colour); the sensor rules
# (app.telemetry.colour.SENSOR_CHECKS) follow the newest readings.
_INTEGRAL_RULES = frozenset({"saturation_full", "saturation_high", "replacement_overdue", "replacement_due_soon"})
# Relative margin under a saturation level at which the open interval is taken to reach it (the
# box then goes to the full evaluation: rounding never decides the path).
_MARGIN = 1e-9


_BOX_COLUMNS = (
    "id",
    "code",
    "enterprise_id",
    "status",
    "has_sensors",
    "emission_limit_mg_m3",
    "pressure_drop_min_pa",
    "pressure_drop_max_pa",
    "adsorption_capacity",
    "design_removed_mg_m3",
    "design_airflow_m3_h",
    "hours_per_day",
    "colour",
    "colour_reasons",
    "colour_detail",
    "colour_next_check_at",
    "colour_evaluated_at",
    "revision",
)


class BoxRow:
    """A box as ingest reads it: the columns its checks, the integration and the figures use
    (one Core query per batch: a thousand ORM boxes cost more than the batch's other work).
    The full evaluation loads the few boxes it evaluates as ORM objects."""

    __slots__ = _BOX_COLUMNS
    id: int
    code: str
    enterprise_id: int
    status: Any
    has_sensors: bool
    emission_limit_mg_m3: float
    pressure_drop_min_pa: float | None
    pressure_drop_max_pa: float | None
    adsorption_capacity: float
    design_removed_mg_m3: float
    design_airflow_m3_h: float
    hours_per_day: float
    colour: Any
    colour_reasons: list[dict[str, Any]]
    colour_detail: dict[str, Any] | None
    colour_next_check_at: datetime | None
    colour_evaluated_at: datetime | None
    revision: int

    # The engine's formulas, as the box's (derive_saturation calls them).
    design_daily_load_kg = Box.design_daily_load_kg
    capacity_kg = cast(Callable[["BoxRow", Any], float], Box.capacity_kg)

    def __init__(self, row: Any) -> None:  # a row of _BOX_COLUMNS (by position: a Row's attributes cost more)
        for name, value in zip(_BOX_COLUMNS, row, strict=True):
            setattr(self, name, value)
        # (Read as text: orjson parses a batch's JSON in a tenth of the driver's json.loads.)
        self.colour_reasons = _parsed(self.colour_reasons)
        self.colour_detail = _parsed(self.colour_detail)


_JSON_AS_TEXT = ("colour_reasons", "colour_detail")


def _parsed(text: Any) -> Any:
    return orjson.loads(text) if text is not None else None


def _boxes_query(sqlite: bool):
    columns = [cast_(getattr(Box, c), Text).label(c) if c in _JSON_AS_TEXT else getattr(Box, c) for c in _BOX_COLUMNS]
    if sqlite:
        return select(*columns).where(Box.code.in_(bindparam("codes", expanding=True)))
    return select(*columns).where(Box.code == any_(bindparam("codes", type_=ARRAY(String))))


_BOXES_BY_CODE = {True: _boxes_query(True), False: _boxes_query(False)}


def boxes_by_code(session: Session, codes: list[str]) -> dict[str, BoxRow]:
    """The boxes of ``codes`` (those that exist), by code, in one query."""
    conn = session.connection()
    rows = conn.execute(_BOXES_BY_CODE[conn.dialect.name == "sqlite"], {"codes": codes}).all()
    return {box.code: box for box in map(BoxRow, rows)}


@dataclass(frozen=True, slots=True)
class Before:
    """A box's sensor state before the batch (what its stored evaluation was made from)."""

    fill_id: int | None
    adsorbed_kg: float
    last_integrated_ts: datetime | None
    last_rate_kg_h: float
    latest_ts: datetime | None


def before_of(state: _StateValues) -> Before:
    return Before(state.fill_id, state.adsorbed_kg, state.last_integrated_ts, state.last_rate_kg_h, state.latest_ts)


@dataclass(frozen=True)
class _Rules:
    rules: RuleSet
    digest: str
    reading: tuple[tuple[Callable[..., Any], dict[str, Any]], ...]  # (check, params) of reading-driven rules
    silence_hours: tuple[float, ...]
    lowest_saturation: float | None


def _rules_of(session: Session) -> _Rules:
    from app.telemetry.colour import SENSOR_CHECKS  # (the telemetry fact provider imports this package)

    rules = wiring_of(session).colour_rules()
    cached = rules.__dict__.get("_ingest_figures")
    if cached is not None:
        return cached
    silence = SENSOR_CHECKS["no_sensor_data"]
    reading = tuple(
        (rules.checks[r.code], r.params) for r in rules.rules if r.code in _INTEGRAL_RULES or r.code in SENSOR_CHECKS
    )
    levels = [r.params["threshold"] for r in rules.rules if r.code.startswith("saturation") and "threshold" in r.params]
    found = _Rules(
        rules,
        rules_digest(rules),
        reading,
        tuple(r.params.get("hours", 24) for r in rules.rules if rules.checks[r.code] is silence),
        min(levels) if levels else None,
    )
    object.__setattr__(rules, "_ingest_figures", found)  # a frozen dataclass: set once per rule set
    return found


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def _other_checks(box: BoxRow, fill: FillRow, before: Before, detail: dict[str, Any], rs: _Rules, cap: timedelta):
    """The stored evaluation's next-check candidates that readings do not move (as datetimes),
    or None when they cannot be told apart."""
    stored = list(detail["next_checks"])
    assert before.last_integrated_ts is not None  # (eligible boxes only)
    sensor = [before.last_integrated_ts + cap]
    if box.has_sensors:
        reference = before.latest_ts or fill.filled_at
        sensor += [reference + timedelta(hours=h) for h in rs.silence_hours]
    for t in sensor:
        iso = _iso(t)
        if iso in stored:
            stored.remove(iso)  # one occurrence: another rule may name the same moment
    return [datetime.fromisoformat(s) for s in stored]


_FIGURES = ("saturation", "predicted_replacement_at", "colour_detail", "colour_next_check_at", "colour_evaluated_at")
_STAGE = "ingest_figures_stage"
_STAGE_DDL = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (id integer, saturation double precision, "
    "predicted_replacement_at timestamptz, colour_detail json, colour_next_check_at timestamptz, "
    "colour_evaluated_at timestamptz, revision integer) ON COMMIT DELETE ROWS"
)
_PG_UPDATE = (
    f"UPDATE {Box.__tablename__} AS b SET "
    + ", ".join(f"{c} = v.{c}" for c in (*_FIGURES, "revision"))
    + f" FROM {_STAGE} AS v WHERE b.id = v.id"
)
_SQLITE_UPDATE = (
    f"UPDATE {Box.__tablename__} SET " + ", ".join(f"{c} = ?" for c in (*_FIGURES, "revision")) + " WHERE id = ?"
)


def refresh_figures(
    session: Session,
    boxes: list[BoxRow],
    fills: dict[int, FillRow],
    before: dict[int, Before],
    states: dict[int, _StateValues],
    settings: Settings,
    now: datetime,
    pending: list[tuple[BoxRow, dict[str, Any]]] | None = None,
) -> list[BoxRow]:
    """Store the figures of the boxes whose batch crossed no threshold (see the module); the
    others are returned, for the full evaluation. ``fills``: the boxes' active fills; ``before``
    and ``states``: their sensor states before and after the batch. With ``pending``, the
    figures are added to it, for :func:`write_figures` (ingest computes them before it locks
    the states, and writes them after)."""
    rs = _rules_of(session)
    cap = timedelta(seconds=settings.max_interval_s)
    full: list[BoxRow] = []
    candidates: list[tuple[BoxRow, FillRow, list[datetime]]] = []
    for box in boxes:
        fill = fills.get(box.id)
        b = before[box.id]
        detail = box.colour_detail
        if (
            fill is None
            or box.status != "active"
            or box.colour != "green"
            or box.colour_reasons
            or not is_stored_current(detail, box.colour_next_check_at, now, rs.digest)
            or detail is None  # (for the type checker: is_stored_current says so)
            or detail.get("reasons")
            or detail.get("fill_id") != fill.id
            or detail.get("saturation_basis") != "sensor"
            or "next_checks" not in detail
            or b.fill_id != fill.id
            or b.last_integrated_ts is None
        ):
            full.append(box)
            continue
        capacity = box.capacity_kg(fill.mass_kg)
        if (
            rs.lowest_saturation is not None
            and b.last_rate_kg_h > 0
            and b.adsorbed_kg + b.last_rate_kg_h * settings.max_interval_s / 3600.0
            >= rs.lowest_saturation * capacity * (1 - _MARGIN)
        ):
            # The stored evaluation may name the moment its open interval reached a level.
            full.append(box)
            continue
        candidates.append((box, fill, _other_checks(box, fill, b, detail, rs, cap)))
    if not candidates:
        return full
    rows: list[tuple[BoxRow, dict[str, Any]]] = []
    min_covered_s = rs.rules.min_load_covered_h * 3600.0
    for box, fill, others in candidates:
        facts: dict[str, Any] = {"box": box, "now": now, "fill": fill, "next_check_candidates": [], "rules": rs.rules}
        _sensor_facts(facts, states[box.id], settings.max_interval_s, min_covered_s)
        derive_saturation(facts)
        if any(check(facts, params) is not None for check, params in rs.reading):
            full.append(box)  # a threshold crossed: the full evaluation (reasons, history)
            continue
        facts["next_check_candidates"].extend(others)
        future = [t for t in facts["next_check_candidates"] if t is not None and t > now]
        ev = Evaluation(
            colour="green",
            reasons=[],
            saturation=facts.get("saturation"),
            predicted_replacement_at=facts.get("predicted_replacement_at"),
            saturation_basis=facts.get("saturation_basis"),
            next_check_at=min(future) if future else None,
            since=None,
            facts=facts,
        )
        values = snapshot(ev, rs.digest)
        values["colour_next_check_at"] = ev.next_check_at
        values["colour_evaluated_at"] = now
        values["revision"] = (box.revision or 0) + 1
        rows.append((box, values))
    if pending is not None:
        pending.extend(rows)
    elif rows:
        write_figures(session, rows)
    return full


def _sensor_facts(facts: dict[str, Any], state: _StateValues, cap_s: float, min_covered_s: float) -> None:
    """The sensor facts of a box with a fill whose readings are integrated, as the telemetry
    fact provider (app.telemetry.colour.sensor_facts) gives them from the stored state."""
    facts["sensor"] = state
    assert state.last_integrated_ts is not None  # (eligible boxes only)
    if state.latest_ts is not None:
        facts["latest_reading"] = {"ts": state.latest_ts.isoformat(), **(state.latest or {})}
    facts["adsorbed_kg"] = state.adsorbed_kg + open_interval_kg(state, facts["now"], cap_s)
    cap_end = state.last_integrated_ts + timedelta(seconds=cap_s)
    facts["open_interval"] = (state.last_rate_kg_h, cap_end)
    load = window_load(state.load_hours, state.last_integrated_ts, state.fill_started_at, min_covered_s=min_covered_s)
    facts["measured_load"] = load
    facts["load_window"] = load_window_facts(load, min_covered_s)
    if load.kg_per_day is not None:
        facts["load_kg_per_day"] = load.kg_per_day
    facts["next_check_candidates"].append(cap_end)


def write_figures(session: Session, rows: list[tuple[BoxRow, dict[str, Any]]]) -> None:
    """One statement for all the boxes' figures; boxes the session holds as ORM objects are
    expired, so that what it reads next is what is stored."""
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    params = []
    for box, values in rows:
        predicted, next_check = values["predicted_replacement_at"], values["colour_next_check_at"]
        params.append(
            (
                values["saturation"],
                bind_ts(predicted, sqlite) if predicted is not None else None,
                orjson.dumps(values["colour_detail"], default=json_default).decode(),
                bind_ts(next_check, sqlite) if next_check is not None else None,
                bind_ts(values["colour_evaluated_at"], sqlite),
                values["revision"],
                box.id,
            )
        )
    if sqlite:
        conn.exec_driver_sql(_SQLITE_UPDATE, params)
    else:
        stage(conn, _STAGE, None, (*_FIGURES, "revision", "id"), params, ddl=_STAGE_DDL)
        conn.exec_driver_sql(_PG_UPDATE)
    if session.identity_map:
        key_of = sa_inspect(Box).identity_key_from_primary_key
        for box, _ in rows:
            held = session.identity_map.get(key_of((box.id,)))
            if held is not None:
                session.expire(held)
