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
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, or_, select, text, update
from sqlalchemy.orm import Session, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from app.boxes.colour import Evaluation, RuleSet
from app.boxes.models import Box, Colour, ColourChange, Fill
from app.boxes.services.latest import latest_fills
from app.boxes.services.stored import rules_digest, snapshot

_BOXES = cast(Table, Box.__table__)
# The SET columns are the keys of the parameters (but ``box_pk``).
_UPDATE_BOX = update(_BOXES).where(_BOXES.c.id == bindparam("box_pk"))
_REASON_KEYS = ("code", "level", "observed", "threshold")
# The colour needs no relationship (the enterprise is joined by default): loaded only if asked.
_LEAN = (lazyload(Box.enterprise), lazyload(Box.service_org))


def due_boxes(session: Session, now: datetime, limit: int, unstored: bool) -> list[Box]:
    """Up to ``limit`` boxes whose next check has come (the earliest first), then, with
    ``unstored``, boxes without a stored evaluation yet."""
    due = select(Box).options(*_LEAN).where(Box.colour_next_check_at <= now)
    boxes = list(session.scalars(due.order_by(Box.colour_next_check_at, Box.id).limit(limit)))
    if unstored and len(boxes) < limit:
        never = (
            select(Box)
            .options(*_LEAN)
            .where(Box.colour_detail.is_(None), or_(Box.colour_next_check_at.is_(None), Box.colour_next_check_at > now))
        )
        boxes += session.scalars(never.order_by(Box.id).limit(limit - len(boxes)))
    return boxes


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


def _nothing_since(box: Box, ev: Evaluation) -> bool:
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


def sweep_chunk(session: Session, now: datetime, limit: int, unstored: bool, rules: RuleSet) -> int:
    """Evaluate and store the chunk of :func:`due_boxes`: how many were evaluated."""
    from app.boxes.services.colours import REPLAY_KEY, _evaluate_boxes, rebuild_history

    boxes = due_boxes(session, now, limit, unstored)
    if not boxes:
        return 0
    fills = latest_fills(session, [b.id for b in boxes], now)
    evaluations = _evaluate_boxes(session, boxes, now, fills, rules)
    digest = rules_digest(rules)
    changes: list[dict[str, Any]] = []
    written: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    slow: list[Box] = []
    for box in boxes:
        ev = evaluations[box.id]
        colour: str = str(box.colour)  # as the engine names it (a Colour's value)
        since = box.colour_since
        if ev.colour != colour:
            behind = box.colour_next_check_at is not None and box.colour_next_check_at < now
            if behind and not _nothing_since(box, ev):
                slow.append(box)  # re-read and replayed by rebuild_history, below
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
        row = _stored_changes(box, ev, colour, since, digest, now)
        if row:
            for key, value in row.items():
                set_committed_value(box, key, value)
            written.setdefault(tuple(row), []).append({"box_pk": box.id, **row})
    for columns, rows in written.items():
        write_boxes(session, columns, rows)
    # The changes through the unit of work (few: the boxes whose colour changed), whose flush
    # the statistics' roll-ups follow (app.statistics.rollup_tracking).
    session.add_all(ColourChange(**change) for change in changes)
    for box in slow:
        rebuild_history(session, box, cast(datetime, box.colour_next_check_at), now)
    session.flush()
    return len(boxes)


def write_boxes(session: Session, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """Set ``columns`` of the boxes of ``rows`` (each with its ``box_pk``): on PostgreSQL one
    ``UPDATE … FROM unnest(…)`` with one array a column (an executemany is a statement a row,
    a ``VALUES`` list thousands of parameters to compile), elsewhere an executemany."""
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name != "postgresql":
        connection.execute(_UPDATE_BOX, rows)
        return
    keys = [k for k in columns if k != "box_pk"]
    arrays: dict[str, list[Any]] = {"box_pk": [row["box_pk"] for row in rows]}
    casts = ["CAST(:box_pk AS INTEGER[])"]
    for n, key in enumerate(keys):
        sql_type = _BOXES.c[key].type
        process = sql_type._cached_bind_processor(dialect)
        arrays[f"c{n}"] = [row[key] if process is None or row[key] is None else process(row[key]) for row in rows]
        casts.append(f"CAST(:c{n} AS {sql_type.compile(dialect=dialect)}[])")
    names = ", ".join(["box_pk", *(f"c{n}" for n in range(len(keys)))])
    sets = ", ".join(f"{key} = given.c{n}" for n, key in enumerate(keys))
    connection.execute(
        text(
            f"UPDATE boxes SET {sets} FROM unnest({', '.join(casts)}) AS given({names}) WHERE boxes.id = given.box_pk"
        ),
        arrays,
    )


def _stored_changes(
    box: Box, ev: Evaluation, colour: str, since: datetime | None, digest: str, now: datetime
) -> dict[str, Any]:
    """What differs between the box as stored and its evaluation ``ev`` (with the colour and
    its start as the history has them): the columns to write. Nothing when nothing changed: a
    sweep that finds nothing new must not write."""
    row: dict[str, Any] = {}
    if colour != box.colour:
        row["colour"] = Colour(colour)
        row["colour_since"] = since
    if [r["code"] for r in ev.reasons] != [r.get("code") for r in box.colour_reasons or []]:
        row["colour_reasons"] = _reasons(ev)
    if box.colour_next_check_at != ev.next_check_at:
        row["colour_next_check_at"] = ev.next_check_at
    for key, value in snapshot(ev, digest).items():
        if getattr(box, key) != value:
            row[key] = value
    if row:
        if box.colour_evaluated_at != now:
            row["colour_evaluated_at"] = now
        row["revision"] = (box.revision or 0) + 1
    return row


def _replay(session: Session, box: Box, start: datetime, now: datetime, fill: Fill | None, rules, key, evaluate_boxes):
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
