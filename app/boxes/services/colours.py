"""Colour evaluation, the stored colour and its history (replayed from a late event's moment), the sweep."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import get_history, set_committed_value

from app.boxes.colour import SPENT_CARBON_RULES, Evaluation, RuleSet, evaluate
from app.boxes.models import Box, BoxEvent, Colour, ColourChange, Fill
from app.boxes.services.latest import latest_fills
from app.boxes.services.stored import rules_digest, snapshot, stored_evaluation
from app.common.timeutil import utcnow
from app.common.wiring import wiring_of

# ---------------------------------------------------------------- colours


@dataclass
class BoxView:
    box: Box
    evaluation: Evaluation
    fill: Fill | None


def _rules(session: Session) -> RuleSet:
    """The colour rules of the app that made ``session`` (its RULES_DIR, else the shipped file)."""
    return wiring_of(session).colour_rules()


def evaluate_boxes(
    session: Session, boxes: list[Box], now: datetime, fills: dict[int, Fill] | None = None
) -> dict[int, Evaluation]:
    """Each box's colour now. ``fills``: the active fill of each box at ``now`` (as
    :func:`latest_fills` finds them), when the caller has just loaded them (ingest does); a box
    missing from it has none. Without it they are read here."""
    return _evaluate_boxes(session, boxes, now, fills, _rules(session))


def _evaluate_boxes(
    session: Session, boxes: list[Box], now: datetime, fills: dict[int, Fill] | None, rules: RuleSet
) -> dict[int, Evaluation]:
    if fills is None:
        fills = latest_fills(session, [b.id for b in boxes], now)
    facts_by_box: dict[int, dict[str, Any]] = {
        b.id: {"box": b, "now": now, "fill": fills.get(b.id), "next_check_candidates": []} for b in boxes
    }
    for provider in wiring_of(session).fact_providers:
        provider(session, boxes, facts_by_box, now)
    return {b.id: evaluate(facts_by_box[b.id], rules) for b in boxes}


def refresh_colours(
    session: Session,
    boxes: list[Box],
    now: datetime | None = None,
    event_time: datetime | None = None,
    fills: dict[int, Fill] | None = None,
    evaluations: dict[int, Evaluation] | None = None,
    catch_up: Collection[int] | None = None,
) -> dict[int, Evaluation]:
    """Evaluate and store each box's colour; a change enters the history with the time it
    happened: when the triggering condition began (time-driven changes, e.g. saturation
    reaching 80% overnight) or the event that caused it. A box whose next check time has
    passed is caught up by :func:`rebuild_history` from that time. ``fills``: as for
    :func:`evaluate_boxes`. ``evaluations``: the boxes' evaluations at ``now``, when the caller
    has just made them (the sweep); ``catch_up``: the ids of the boxes to catch up, when the
    caller knows which (the sweep and ingest: those whose colour changed), else every box whose
    next check has passed."""
    now = now or utcnow()
    # Boxes whose next check has passed unobserved: time alone may have changed their colour
    # more than once since, so their history is caught up moment by moment.
    behind = {
        b.id: rebuild_history(session, b, b.colour_next_check_at, now)
        for b in boxes
        if b.colour_next_check_at is not None
        and b.colour_next_check_at < now
        and b not in session.new
        and (catch_up is None or b.id in catch_up)
    }
    if behind:
        boxes = [b for b in boxes if b.id not in behind]
        if not boxes:
            return behind
    rules = _rules(session)
    if evaluations is None:
        evaluations = _evaluate_boxes(session, boxes, now, fills, rules)
    rules_version = rules.version
    digest = rules_digest(rules)
    written: dict[tuple[str, ...], list[dict[str, Any]]] = {}  # changed columns → rows to update
    for box in boxes:
        ev = evaluations[box.id]
        changes: dict[str, Any] = {}
        reasons_changed = [r["code"] for r in ev.reasons] != [r.get("code") for r in box.colour_reasons or []]
        if ev.colour != box.colour:
            changed_at = event_time or ev.since or now
            if box.colour_since and changed_at < box.colour_since:
                changed_at = box.colour_since
            changed_at = min(changed_at, now)
            session.add(
                ColourChange(
                    box_id=box.id,
                    colour=ev.colour,
                    previous_colour=box.colour,
                    changed_at=changed_at,
                    recorded_at=now,
                    rules_version=rules_version,
                    reasons=[{k: r[k] for k in ("code", "level", "observed", "threshold")} for r in ev.reasons],
                )
            )
            changes["colour"] = ev.colour
            changes["colour_since"] = changed_at
        # Write only what changed: a read that finds nothing new must not write (and fsync).
        if reasons_changed:
            changes["colour_reasons"] = [
                {k: r[k] for k in ("code", "level", "observed", "threshold")} for r in ev.reasons
            ]
        if box.colour_next_check_at != ev.next_check_at:
            changes["colour_next_check_at"] = ev.next_check_at
        # What reads show without evaluating (app.boxes.services.stored).
        for key, value in snapshot(ev, digest).items():
            if getattr(box, key) != value:
                changes[key] = value
        state = sa_inspect(box)
        if state.persistent and not state.modified:
            # A stored box without other pending changes (as after ingest): what changed is
            # written below, one UPDATE by primary key per set of changed columns, and set on
            # the box as stored, so that the flush has nothing to do for it.
            if changes:
                if box.colour_evaluated_at != now:
                    changes["colour_evaluated_at"] = now
                changes["revision"] = (box.revision or 0) + 1
                for key, value in changes.items():
                    set_committed_value(box, key, value)
                written.setdefault(tuple(changes), []).append({"box_pk": box.id, **changes})
            continue
        for key, value in changes.items():
            setattr(box, key, value)
        if box not in session.new and _is_modified(box):
            box.colour_evaluated_at = now
            if not get_history(box, "revision").has_changes():
                box.revision = (box.revision or 0) + 1
    if written:
        connection = session.connection()
        for rows in written.values():
            connection.execute(_UPDATE_BOX, rows)
    session.flush()
    return {**evaluations, **behind}


_BOXES = cast(Table, Box.__table__)  # a declarative class's table (typed as any FromClause)
# The SET columns are the keys of the parameters (but ``box_pk``).
_UPDATE_BOX = update(_BOXES).where(_BOXES.c.id == bindparam("box_pk"))


def _is_modified(box: Box) -> bool:
    """``session.is_modified(box)``, asking only the attributes changed since the load (those
    with a committed value): the others have no history, and the box has some thirty."""
    state = sa_inspect(box)
    if not state.modified:
        return False
    return any(get_history(box, key).has_changes() for key in list(state.committed_state))


REPLAY_KEY = "colour_replay"  # as app.telemetry.colour.REPLAY_KEY: past moments are being evaluated
_REASON_KEYS = ("code", "level", "observed", "threshold")
# At most this many moments per replay (a box read every minute for months would be millions):
# past it the replay jumps to ``now``, and the history stays right up to the last moment seen.
MAX_REPLAY_MOMENTS = 20_000


def rebuild_history(session: Session, box: Box, since: datetime, now: datetime | None = None) -> Evaluation:
    """Rewrite ``box``'s colour history from ``since`` (the time a late fill, replacement or
    reading describes) to ``now``: the stored changes at or after ``since`` are replaced by those
    found by evaluating the box at each moment something may change, in order: ``since``, every
    fill, every reading (telemetry's provider adds them as next-check candidates and gives the
    sensor facts as they stood then), and every time threshold the evaluations name (saturation
    levels, the predicted date and its warning, silence alarms). A change is dated at the moment
    it was found: every time a condition can begin at is one of these moments.
    Rewritten changes keep their ``recorded_at`` when an equal change (colour and time) was
    stored before; new ones are recorded at ``now``. Replacements in the range have
    ``replaced_overdue`` recomputed. The evaluation at ``now`` is stored on the box and returned.
    """
    import heapq

    now = now or utcnow()
    if box.colour_next_check_at is not None and box.colour_next_check_at < since:
        since = box.colour_next_check_at  # a moment before the event was never looked at: from there
    since = min(since, now)
    rules = _rules(session)
    session.flush()
    stored = list(
        session.scalars(
            select(ColourChange).where(ColourChange.box_id == box.id).order_by(ColourChange.changed_at, ColourChange.id)
        )
    )
    kept = [c for c in stored if c.changed_at < since]
    dropped: dict[tuple[str, datetime], datetime] = {
        (c.colour, c.changed_at): c.recorded_at for c in stored if c.changed_at >= since
    }
    for change in stored:
        if change.changed_at >= since:
            session.delete(change)
    session.flush()
    fills = list(session.scalars(select(Fill).where(Fill.box_id == box.id).order_by(Fill.filled_at, Fill.id)))

    def fill_at(t: datetime) -> Fill | None:
        active = None
        for f in fills:
            if f.filled_at <= t:
                active = f
        return active

    colour: str  # as the engine names it (a Colour's value)
    if kept:
        colour, last_at = kept[-1].colour, kept[-1].changed_at
    else:
        # The history starts grey (not in service): at registration, or at the first fill if that
        # came first (the box existed before it was registered here); before it, grey too.
        first = stored[0] if stored else None
        colour, last_at = "grey", min(box.created_at or since, fills[0].filled_at if fills else since)
        session.add(
            ColourChange(
                box_id=box.id,
                colour="grey",
                previous_colour=None,
                changed_at=last_at,
                recorded_at=first.recorded_at if first is not None else now,
                rules_version=first.rules_version if first is not None else rules.version,
                reasons=first.reasons
                if first is not None and first.colour == "grey"
                else [{"code": "no_active_fill", "level": "grey"}],
            )
        )
    moments = [since] + [f.filled_at for f in fills if since < f.filled_at < now]
    heapq.heapify(moments)
    previous_t: datetime | None = None
    seen = 0
    info_before = session.info.get(REPLAY_KEY)
    session.info[REPLAY_KEY] = {"since": {box.id: since}, "timelines": {}}
    try:
        for f in fills:
            if f.kind == "replacement" and since <= f.filled_at <= now:
                # The box as it stood at the replacement, with the carbon being replaced in it.
                older = [g for g in fills if g.filled_at < f.filled_at]
                before = _evaluate_boxes(session, [box], f.filled_at, {box.id: older[-1]} if older else {}, rules)[
                    box.id
                ]
                f.replaced_overdue = any(r["code"] in SPENT_CARBON_RULES for r in before.reasons)
        while moments and seen < MAX_REPLAY_MOMENTS:
            t = heapq.heappop(moments)
            if t >= now or (previous_t is not None and t <= previous_t):
                continue
            seen += 1
            active = fill_at(t)
            ev = _evaluate_boxes(session, [box], t, {box.id: active} if active else {}, rules)[box.id]
            if ev.colour != colour:
                # Every time a condition can begin at is a moment of its own (time thresholds are
                # next-check candidates, readings and fills are moments): the change is dated here.
                changed_at = t
                if last_at is not None and changed_at < last_at:
                    changed_at = last_at
                session.add(
                    ColourChange(
                        box_id=box.id,
                        colour=ev.colour,
                        previous_colour=colour,
                        changed_at=changed_at,
                        recorded_at=dropped.get((ev.colour, changed_at), now),
                        rules_version=rules.version,
                        reasons=[{k: r[k] for k in _REASON_KEYS} for r in ev.reasons],
                    )
                )
                colour, last_at = ev.colour, changed_at
            for candidate in ev.facts.get("next_check_candidates", []):
                if candidate is not None and t < candidate < now:
                    heapq.heappush(moments, candidate)
            previous_t = t
    finally:
        if info_before is None:
            session.info.pop(REPLAY_KEY, None)
        else:
            session.info[REPLAY_KEY] = info_before
    # Now, from the stored state, as every read evaluates it.
    ev = _evaluate_boxes(session, [box], now, None, rules)[box.id]
    if ev.colour != colour:
        changed_at = max(now, last_at or now)
        session.add(
            ColourChange(
                box_id=box.id,
                colour=ev.colour,
                previous_colour=colour,
                changed_at=changed_at,
                recorded_at=dropped.get((ev.colour, changed_at), now),
                rules_version=rules.version,
                reasons=[{k: r[k] for k in _REASON_KEYS} for r in ev.reasons],
            )
        )
        colour, last_at = ev.colour, changed_at
    box.colour = Colour(ev.colour)
    box.colour_since = last_at
    box.colour_reasons = [{k: r[k] for k in _REASON_KEYS} for r in ev.reasons]
    box.colour_next_check_at = ev.next_check_at
    for key, value in snapshot(ev, rules_digest(rules)).items():
        setattr(box, key, value)
    box.colour_evaluated_at = now
    box.revision = (box.revision or 0) + 1
    session.flush()
    return ev


def refresh_due(session: Session, now: datetime, batch: int = 500) -> int:
    """Re-evaluate boxes whose colour may have changed with time alone (their next check time
    has passed). Called before colour-filtered lists; the sweep command goes chunk by chunk
    (:func:`refresh_due_chunk`), each chunk its own transaction."""
    done = 0
    while True:
        n = refresh_due_chunk(session, now, batch)
        done += n
        if n < batch:
            return done


def refresh_due_chunk(
    session: Session, now: datetime, limit: int = 500, unstored: bool = False, part: tuple[int, int] | None = None
) -> int:
    """Evaluate and store up to ``limit`` boxes whose next check has come (the earliest first),
    or, with ``unstored``, boxes without a stored evaluation yet (as after the migration that
    brought it). The number evaluated: fewer than ``limit`` when no more are due. ``part``
    ``(n, k)``: only boxes whose id is k modulo n (the sweep's n workers share the boxes so).

    Set-wise (:mod:`app.boxes.services.sweep`): the chunk read in one query per table and
    evaluated at ``now`` as a batch, written in one UPDATE per set of changed columns; only a
    box whose colour changed has its history caught up moment by moment."""
    from app.boxes.services.sweep import sweep_chunk

    return sweep_chunk(session, now, limit, unstored, _rules(session), part)


def view_box(session: Session, box: Box, now: datetime | None = None) -> BoxView:
    """The box as a read shows it: its stored evaluation while that is still true, else (its
    next check has come, other rules, never stored) evaluated and stored now (a GET stores it
    through ``commit_read_effects``)."""
    return view_boxes(session, [box], now)[0]


def view_boxes(session: Session, boxes: list[Box], now: datetime | None = None) -> list[BoxView]:
    now = now or utcnow()
    rules = _rules(session)
    digest = rules_digest(rules)
    evaluations: dict[int, Evaluation] = {}
    for box in boxes:
        stored = stored_evaluation(session, box, now, digest, rules)
        if stored is not None:
            evaluations[box.id] = stored
    due = [b for b in boxes if b.id not in evaluations]
    if due:
        evaluations.update(refresh_colours(session, due, now))
    return [BoxView(b, evaluations[b.id], evaluations[b.id].facts.get("fill")) for b in boxes]


def history(session: Session, box: Box) -> dict[str, list]:
    changes = list(
        session.scalars(
            select(ColourChange).where(ColourChange.box_id == box.id).order_by(ColourChange.changed_at, ColourChange.id)
        )
    )
    fills = list(session.scalars(select(Fill).where(Fill.box_id == box.id).order_by(Fill.filled_at)))
    events = list(session.scalars(select(BoxEvent).where(BoxEvent.box_id == box.id).order_by(BoxEvent.at, BoxEvent.id)))
    return {"colour_changes": changes, "fills": fills, "events": events}


def days_in_colour(changes: list[ColourChange], colour: str, start: datetime, end: datetime) -> float:
    """Days the box spent in ``colour`` within [start, end), from its colour history."""
    total = 0.0
    for i, change in enumerate(changes):
        until = changes[i + 1].changed_at if i + 1 < len(changes) else end
        if change.colour != colour:
            continue
        a, b = max(change.changed_at, start), min(until, end)
        if b > a:
            total += (b - a).total_seconds() / 86400
    return total
