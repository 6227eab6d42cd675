"""The sweep of boxes whose next check has come, set-wise (``boxes sweep``, the colour_sweep job).

A chunk is read in one query per table (the boxes, their active fills, and each fact provider's
one query for all), evaluated at ``now`` as a batch, and written back in one UPDATE by primary
key per set of changed columns (the colour changes, few, through the unit of work): nothing
set on the loaded boxes but their stored values (``set_committed_value``), so the unit of work
has nothing to do for them.

Why a box whose colour is unchanged needs nothing more: between two events (fills, readings,
ledger steps, each of which evaluates the box when it happens) time alone only worsens a box
(saturation and silence grow, the predicted date and the waste's deadlines come nearer), so a
box whose colour is the same at ``now`` as at its last evaluation had that colour all along.

A box whose colour changed is caught up moment by moment from its next check, as
:func:`app.boxes.services.colours.rebuild_history` does: every time threshold its evaluations
name is a moment of its own, and a change is dated at the moment it was found. When nothing
happened to the box since its last evaluation (no fill recorded, no reading arrived since, the
premise of the sweep) its facts are those just loaded, so the moments are evaluated from them
(the providers' replay memo: no query per moment). Otherwise the box goes through
``rebuild_history`` itself, which re-reads its fills and readings.
"""

from __future__ import annotations

import heapq
import json
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from psycopg.types.json import set_json_loads
from sqlalchemy import Integer, Select, Table, and_, any_, func, literal, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.boxes.colour import Evaluation, RuleSet
from app.boxes.lean import LeanBox, LeanFill
from app.boxes.models import Box, Colour, ColourChange, Fill
from app.boxes.services.stored import rules_digest, snapshot
from app.boxes.services.sweep_write import write_evaluations
from app.common.types import UTCDateTime

_BOXES = cast(Table, Box.__table__)
_FILLS = cast(Table, Fill.__table__)
_REASON_KEYS = ("code", "level", "observed", "threshold")
# A box's columns as the engine and its providers read them: plain rows, no ORM objects (the
# identity map and instance state of 20,000 objects were a fifth of a chunk's time). The stored
# reasons and figures are not read: every swept box has them written anew (sweep_write).
_BOX_COLUMNS = [c for c in _BOXES.c if c.name not in ("colour_detail", "colour_reasons")]


class SweptBox(LeanBox):
    """A due box's columns (but the stored reasons and figures) as plain attributes."""

    colour: Colour
    colour_since: datetime | None
    colour_evaluated_at: datetime | None
    colour_next_check_at: datetime | None


def due_boxes(
    session: Session, now: datetime, limit: int, unstored: bool, part: tuple[int, int] | None = None
) -> list[SweptBox]:
    """Up to ``limit`` boxes whose next check has come (the earliest first), then, with
    ``unstored``, boxes without a stored evaluation yet: their columns as plain objects.
    ``part`` ``(n, k)``: only the boxes whose id is k modulo n (a sweep shared by n workers)."""
    next_check = _BOXES.c.colour_next_check_at
    due = select(*_BOX_COLUMNS).where(next_check <= now).order_by(next_check, _BOXES.c.id).limit(limit)
    never = select(*_BOX_COLUMNS).where(_BOXES.c.colour_detail.is_(None), or_(next_check.is_(None), next_check > now))
    if part is not None:
        mine = _BOXES.c.id % part[0] == part[1]
        due, never = due.where(mine), never.where(mine)
    rows = list(session.execute(due).mappings().all())  # one fetchall, not a fetchone a row
    if unstored and len(rows) < limit:
        rows += session.execute(never.order_by(_BOXES.c.id).limit(limit - len(rows))).mappings().all()
    return [SweptBox(dict(row)) for row in rows]


def due_ids(session: Session, now: datetime, unstored: bool) -> list[int]:
    """Every box whose next check has come, in ``(next check, id)`` order, then, with
    ``unstored``, those without a stored evaluation yet, by id: the ids alone, read once.

    A whole sweep (``boxes refresh-colours``) lists them first and then loads them a chunk at a
    time by primary key. Asking again for "the first ``limit`` due boxes" each chunk
    (:func:`due_boxes`) walked, every chunk, over the index entries the chunks before it had
    left behind (the swept boxes' old entries, dead but not yet vacuumed, still in the due
    range): at 100,000 due boxes the due query became the largest part of the sweep."""
    next_check = _BOXES.c.colour_next_check_at
    due = select(_BOXES.c.id).where(next_check <= now).order_by(next_check, _BOXES.c.id)
    ids: list[int] = list(session.scalars(due))
    if unstored:
        never = select(_BOXES.c.id).where(_BOXES.c.colour_detail.is_(None), or_(next_check.is_(None), next_check > now))
        ids += session.scalars(never.order_by(_BOXES.c.id))
    return ids


def boxes_by_id(session: Session, ids: list[int], now: datetime) -> list[SweptBox]:
    """The boxes of ``ids`` that are still to sweep at ``now`` (due, or never stored: another
    writer may have evaluated one since the ids were listed), as plain objects, in id order."""
    if not ids:
        return []
    next_check = _BOXES.c.colour_next_check_at
    still = or_(next_check <= now, _BOXES.c.colour_detail.is_(None))
    query = select(*_BOX_COLUMNS).where(_ids_among(session, _BOXES.c.id, ids), still).order_by(_BOXES.c.id)
    return [SweptBox(row) for row in _plain_rows(session, query)]


def _plain_rows(session: Session, query: Select) -> list[dict[str, Any]]:
    """The rows of ``query`` as dicts of the values SQLAlchemy would give (times aware, in UTC;
    states as their string values). On PostgreSQL through the driver's own cursor, in the
    session's transaction: SQLAlchemy's result processing, a type processor per value, was a
    fifth of the sweep's Python at 100,000 boxes; elsewhere the ordinary execution."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return [dict(row) for row in connection.execute(query).mappings().all()]
    compiled = query.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    names = [c.name for c in query.selected_columns]
    times = [i for i, c in enumerate(query.selected_columns) if isinstance(c.type, UTCDateTime)]
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(str(compiled), compiled.params)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    out = []
    for row in rows:
        values = list(row)
        for i in times:
            value = values[i]
            if value is not None and value.tzinfo is not UTC:
                values[i] = value.astimezone(UTC)
        out.append(dict(zip(names, values, strict=True)))
    return out


def _json_loads(data: str | bytes) -> Any:
    """A JSON document's value, as ``json.loads`` gives it: by orjson (a tenth of the time),
    or ``json.loads`` itself for what orjson refuses (``NaN``, integers past 64 bits)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _parse_json_fast(session: Session) -> None:
    """The JSON columns the providers read for a chunk (each box's sensor state: its load window
    and newest reading, two documents a box) parsed by :func:`_json_loads` on this session's
    connection: the driver's ``json.loads`` was a fifth of a chunk's evaluation. Set on the
    connection (psycopg's loaders are per connection), which keeps it: the values are the same."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        set_json_loads(_json_loads, connection.connection.dbapi_connection)  # type: ignore[arg-type]


def _ids_among(session: Session, column: Any, ids: list[int]) -> Any:
    """``column IN ids``: on PostgreSQL one array parameter (an IN list of a thousand is
    rendered, and parsed by the driver, for every chunk)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(literal([int(i) for i in ids], ARRAY(Integer)))
    return column.in_(ids)


def active_fills(session: Session, box_ids: list[int], at: datetime) -> dict[int, Any]:
    """The active fill of each box at ``at`` (as :func:`app.boxes.services.latest.latest_fills`
    finds them, the same statement), as plain objects. On PostgreSQL the ids are one array
    parameter: an IN list of a thousand is rendered, and parsed by the driver, for every chunk."""
    if not box_ids:
        return {}
    chosen = _ids_among(session, _FILLS.c.box_id, box_ids)
    latest = (
        select(_FILLS.c.box_id, func.max(_FILLS.c.filled_at).label("filled_at"))
        .where(chosen, _FILLS.c.filled_at <= at)
        .group_by(_FILLS.c.box_id)
        .subquery()
    )
    query = select(_FILLS).join(
        latest, and_(_FILLS.c.box_id == latest.c.box_id, _FILLS.c.filled_at == latest.c.filled_at)
    )
    return {row["box_id"]: LeanFill(row) for row in _plain_rows(session, query)}


def _reasons(ev: Evaluation) -> list[dict[str, Any]]:
    return [{k: r[k] for k in _REASON_KEYS} for r in ev.reasons]


def _change(box_id: int, colour: str, previous: str | None, at: datetime, now: datetime, rules: RuleSet, ev) -> dict:
    return {
        "box_id": box_id,
        "colour": Colour(colour),
        "previous_colour": Colour(previous) if previous is not None else None,
        "changed_at": at,
        "recorded_at": now,
        "rules_version": rules.version,
        "reasons": _reasons(ev),
    }


def _nothing_since(box: Any, ev: Evaluation) -> bool:
    """Has nothing happened to ``box`` since its last evaluation (its facts are those loaded)?"""
    evaluated = box.colour_evaluated_at
    if evaluated is None or box.colour_next_check_at is None:
        return False
    fill = ev.facts.get("fill")
    if fill is not None and (fill.filled_at > evaluated or (fill.created_at or fill.filled_at) > evaluated):
        return False
    sensor = ev.facts.get("sensor")
    latest = getattr(sensor, "latest_ts", None)
    return latest is None or latest <= evaluated


def sweep_chunk(
    session: Session, now: datetime, limit: int, unstored: bool, rules: RuleSet, part: tuple[int, int] | None = None
) -> int:
    """Evaluate and store the chunk of :func:`due_boxes`: how many were evaluated."""
    session.flush()  # the plain reads below see what the session holds unwritten
    return sweep_boxes(session, now, due_boxes(session, now, limit, unstored, part), rules)


def sweep_ids(session: Session, now: datetime, ids: list[int], rules: RuleSet) -> int:
    """Evaluate and store the boxes of ``ids`` (a chunk of :func:`due_ids`) that are still to
    sweep: how many were evaluated."""
    session.flush()
    return sweep_boxes(session, now, boxes_by_id(session, ids, now), rules)


def sweep_boxes(session: Session, now: datetime, boxes: list[SweptBox], rules: RuleSet) -> int:
    """Evaluate ``boxes`` (loaded by :func:`due_boxes` or :func:`boxes_by_id`) at ``now`` and
    store each one's evaluation: how many there were."""
    from app.boxes.services.colours import REPLAY_KEY, _evaluate_boxes, rebuild_history

    if not boxes:
        return 0
    _parse_json_fast(session)
    fills = active_fills(session, [b.id for b in boxes], now)
    # (The engine reads a box's columns and derived figures: a plain object has them as a Box does.)
    evaluations = _evaluate_boxes(session, cast(list[Box], boxes), now, fills, rules)
    digest = rules_digest(rules)
    changes: list[dict[str, Any]] = []
    written: list[dict[str, Any]] = []
    slow: list[tuple[int, datetime]] = []
    for box in boxes:
        ev = evaluations[box.id]
        colour: str = str(box.colour)  # as the engine names it (a Colour's value)
        since = box.colour_since
        if ev.colour != colour:
            behind = box.colour_next_check_at is not None and box.colour_next_check_at < now
            if behind and not _nothing_since(box, ev):
                slow.append(
                    (box.id, cast(datetime, box.colour_next_check_at))
                )  # re-read and replayed by rebuild_history
                continue
            if behind:
                start = max(cast(datetime, box.colour_next_check_at), cast(datetime, box.colour_evaluated_at))
                found = _replay(session, box, start, now, ev.facts.get("fill"), rules, REPLAY_KEY, _evaluate_boxes)
                for at, new, previous, found_ev in found:
                    changes.append(_change(box.id, new, previous, at, now, rules, found_ev))
                    colour, since = new, at
            if ev.colour != colour:
                # As refresh_colours dates a change: when its condition began, never before the
                # colour it ends, never after now (and after the replay's last change).
                if behind:
                    at = max(now, since) if since is not None else now
                else:
                    at = ev.since or now
                    at = min(max(at, since) if since is not None else at, now)
                changes.append(_change(box.id, ev.colour, colour, at, now, rules, ev))
                colour, since = ev.colour, at
        written.append(
            {
                "box_pk": box.id,
                "colour": Colour(colour),
                "colour_since": since,
                "colour_reasons": _reasons(ev),
                "colour_next_check_at": ev.next_check_at,
                "colour_evaluated_at": now,
                **snapshot(ev, digest),
            }
        )
    write_evaluations(session, written)
    # The changes through the unit of work (few: the boxes whose colour changed), whose flush
    # the statistics' roll-ups follow (app.statistics.rollup_tracking).
    session.add_all(ColourChange(**change) for change in changes)
    for box_id, next_check_at in slow:
        rebuild_history(session, cast(Box, session.get(Box, box_id)), next_check_at, now)
    session.flush()
    return len(boxes)


def _replay(session: Session, box: Any, start: datetime, now: datetime, fill: Fill | None, rules, key, evaluate_boxes):
    """The colour changes of ``box`` from ``start`` to (not including) ``now``, its facts being
    those loaded: (moment, colour, previous colour, evaluation) in order. The moments are
    ``start`` and every time threshold an evaluation names, as in ``rebuild_history``."""
    found: list[tuple[datetime, str, str, Evaluation]] = []
    colour, last_at = str(box.colour), box.colour_since
    moments = [start]
    previous_t: datetime | None = None
    before = session.info.get(key)
    # The providers' replay memo (their stored rows read once for all the moments); no box is
    # named in ``since``, so the sensor state is the stored one (no reading came since).
    session.info[key] = {"since": {}, "timelines": {}}
    fills = {box.id: fill} if fill is not None else {}
    try:
        seen = 0
        while moments and seen < 20_000:
            t = heapq.heappop(moments)
            if t >= now or (previous_t is not None and t <= previous_t):
                continue
            seen += 1
            ev = evaluate_boxes(session, [box], t, fills, rules)[box.id]
            if ev.colour != colour:
                at = max(t, last_at) if last_at is not None else t
                found.append((at, ev.colour, colour, ev))
                colour, last_at = ev.colour, at
            for candidate in ev.facts.get("next_check_candidates", []):
                if candidate is not None and t < candidate < now:
                    heapq.heappush(moments, candidate)
            previous_t = t
    finally:
        if before is None:
            session.info.pop(key, None)
        else:
            session.info[key] = before
    return found
