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
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.boxes.colour import Evaluation, RuleSet, derive_saturation
from app.boxes.models import Box, Fill
from app.boxes.services.stored import is_stored_current, rules_digest, snapshot
from app.common.columns import json_dumps
from app.common.wiring import wiring_of
from app.telemetry.models import BoxSensorState
from app.telemetry.services.bulk import stage
from app.telemetry.services.checks import bind_ts
from app.telemetry.services.settings import Settings

# The engine's rules whose findings follow the integral (app.boxes.colour); the sensor rules
# (app.telemetry.colour.SENSOR_CHECKS) follow the newest readings.
_INTEGRAL_RULES = frozenset({"saturation_full", "saturation_high", "replacement_overdue", "replacement_due_soon"})
# Relative margin under a saturation level at which the open interval is taken to reach it (the
# box then goes to the full evaluation: rounding never decides the path).
_MARGIN = 1e-9


@dataclass(frozen=True, slots=True)
class Before:
    """A box's sensor state before the batch (what its stored evaluation was made from)."""

    fill_id: int | None
    adsorbed_kg: float
    last_integrated_ts: datetime | None
    last_rate_kg_h: float
    latest_ts: datetime | None


def before_of(state: BoxSensorState) -> Before:
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


def _other_checks(box: Box, fill: Fill, before: Before, detail: dict[str, Any], rs: _Rules, cap: timedelta):
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
    boxes: list[Box],
    fills: dict[int, Fill],
    before: dict[int, Before],
    settings: Settings,
    now: datetime,
) -> list[Box]:
    """Store the figures of the boxes whose batch crossed no threshold (see the module); the
    others are returned, for the full evaluation. ``fills``: the boxes' active fills; ``before``:
    their states before the batch (the states in the session hold the integrated ones)."""
    from app.telemetry.colour import sensor_facts

    rs = _rules_of(session)
    cap = timedelta(seconds=settings.max_interval_s)
    full: list[Box] = []
    candidates: list[tuple[Box, Fill, list[datetime]]] = []
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
    facts_by_box: dict[int, dict[str, Any]] = {
        box.id: {"box": box, "now": now, "fill": fill, "next_check_candidates": [], "rules": rs.rules}
        for box, fill, _ in candidates
    }
    # The sensor facts as the full evaluation takes them (the states the session holds: no query).
    sensor_facts(session, [box for box, _, _ in candidates], facts_by_box, now)
    rows: list[tuple[Box, dict[str, Any]]] = []
    for box, _, others in candidates:
        facts = facts_by_box[box.id]
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
    if rows:
        _write(session, rows)
    return full


def _write(session: Session, rows: list[tuple[Box, dict[str, Any]]]) -> None:
    """One statement for all the boxes' figures; the boxes in the session take them as stored."""
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    params = []
    for box, values in rows:
        predicted, next_check = values["predicted_replacement_at"], values["colour_next_check_at"]
        params.append(
            (
                values["saturation"],
                bind_ts(predicted, sqlite) if predicted is not None else None,
                json_dumps(values["colour_detail"]),
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
    for box, values in rows:
        for key, value in values.items():
            set_committed_value(box, key, value)
