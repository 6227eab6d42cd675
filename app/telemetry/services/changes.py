"""A batch's colour changes dated at its reading without replaying the box's history (issue 12:
a box's first reading, which nearly always changes its colour, costs what a later one does).

When the full evaluation of a batch finds a box's colour changed, the change enters the history
at the moment it happened. Ingest found that moment by replaying the box's history from the
batch's first reading (:func:`app.boxes.services.rebuild_history`: a dozen statements a box,
most of a first reading's cost). For a box whose batch is one reading, at ``first``, and whose
stored history ends before it (evaluated at or before ``first``, its colour since before it, its
next check not passed, the changed colour's condition not older than ``first``), that replay
evaluates the box at ``first`` (from the state the batch left: its one reading integrated), then
at each moment an evaluation names between ``first`` and now, then now. So when the evaluation
at ``first`` gives the colour and reasons of the evaluation now and names no moment in between,
the replay's result is known without it: one change, at ``first``, with those reasons, which is
what :func:`app.boxes.services.refresh_colours` writes given ``event_time=first``. Any other box
is replayed as before. A test (tests/telemetry/test_change_dating.py) holds the stored colour,
figures and history equal to the replay's for random sequences of batches, fills and gaps.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.boxes.colour import Evaluation
from app.boxes.models import Box, Fill
from app.boxes.services import evaluate_boxes
from app.telemetry.services.checks import R_TS

_REASON_KEYS = ("code", "level", "observed", "threshold")


def _reasons(ev: Evaluation) -> list[tuple[Any, ...]]:
    return [tuple(r[k] for k in _REASON_KEYS) for r in ev.reasons]


def dated_at_reading(
    session: Session,
    boxes: list[Box],
    per_box: dict[int, list[tuple]],
    evaluations: dict[int, Evaluation],
    fills: dict[int, Fill],
    now: datetime,
) -> dict[datetime, list[Box]]:
    """Of ``boxes`` (not yet refreshed; ``evaluations``: theirs at ``now``; ``per_box``: the
    batch's new readings of each, sorted), those whose change of colour is dated at their one
    reading without a replay (see the module), grouped by that reading's time."""
    waiting: dict[datetime, list[Box]] = {}
    for box in boxes:
        rows, ev = per_box[box.id], evaluations[box.id]
        if len(rows) != 1 or ev.colour == box.colour:
            continue
        first = rows[0][R_TS]
        due, since, evaluated_at = box.colour_next_check_at, box.colour_since, box.colour_evaluated_at
        if (
            since is None
            or since >= first
            or evaluated_at is None
            or evaluated_at > first
            or (due is not None and due < now)  # (caught up by the refresh itself)
            or (ev.since is not None and ev.since < first)
        ):
            continue
        waiting.setdefault(first, []).append(box)
    dated: dict[datetime, list[Box]] = {}
    for first, group in waiting.items():
        at_first = evaluate_boxes(session, group, first, {b.id: fills[b.id] for b in group if b.id in fills})
        for box in group:
            then, later = at_first[box.id], evaluations[box.id]
            if (
                then.colour == later.colour
                and _reasons(then) == _reasons(later)
                and not any(t is not None and first < t < now for t in then.facts.get("next_check_candidates", ()))
            ):
                dated.setdefault(first, []).append(box)
    return dated
