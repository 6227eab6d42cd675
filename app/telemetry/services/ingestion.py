"""Ingest of a batch of sensor readings (HTTP and MQTT): who may write where, the boxes looked
up, the readings stored, the boxes' states and roll-ups updated, their colours refreshed.

No Flask here: callers pass the session, the acting :class:`Principal` and the settings.

One batch costs a fixed number of statements however many readings it carries: boxes in one
query, states in one query, readings in one COPY (PostgreSQL: one write a reading; :mod:`.readings`)
or INSERT … ON CONFLICT DO NOTHING per 1,000, roll-ups in one upsert, states in one UPDATE
executed for all, then the boxes' figures in one UPDATE for those whose readings crossed no
threshold of the colour rules (:mod:`.figures`) and one colour refresh of the others (given the
fills and states just read). On PostgreSQL the states are read unlocked and the whole batch is
worked out from them; then one statement locks them (FOR UPDATE, in box order) and tells those
another batch changed meanwhile, which alone are read and worked out again: two workers hold
the boxes' locks only for the writes and the commit, not across the batch.
Boxes, states and fills are read as Core rows, not ORM objects. The work per reading is
constant: its checks (:mod:`app.telemetry.services.checks`; in C for a well-typed batch, see
:mod:`app.telemetry.wire`), its row, its roll-up sums and its term of the integral
(:mod:`app.telemetry.services.states`), in one pass with the load when the readings are newer
than those integrated; nothing re-reads a box's history. Only late readings (older than a box's
newest) cost two index look-ups each, and a batch that carries already stored readings inserts
twice (see :func:`insert_readings`).
"""

from __future__ import annotations

import fcntl
import hashlib
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, lazyload

from app.accounts.services import Principal
from app.audit import recorder as audit_recorder
from app.boxes import codes
from app.boxes.models import Box, Fill
from app.boxes.services import evaluate_boxes, rebuild_history, refresh_colours
from app.common.errors import Forbidden
from app.common.timeutil import utcnow
from app.telemetry.models import SensorReading
from app.telemetry.services.changes import dated_at_reading
from app.telemetry.services.checks import R_BOUND, R_CODE, R_INDEX, R_MEASURE, R_TS, R_US, check_items
from app.telemetry.services.figures import Before, BoxRow, before_of, boxes_by_code, refresh_figures, write_figures
from app.telemetry.services.readings import READING_COLUMNS, insert_readings
from app.telemetry.services.rollups import _Rollups
from app.telemetry.services.settings import Settings
from app.telemetry.services.states import (
    FillRow,
    _apply,
    _StateValues,
    lock_changed,
    lock_states,
    state_version,
    states_into_session,
    store_states,
    sync_state_to_fill,
)

__all__ = ["READING_COLUMNS", "UNKNOWN_BOX", "IngestResult", "ingest", "insert_readings", "sqlite_writer_lock"]

UNKNOWN_BOX = "unknown box"


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected_items: list[dict[str, Any]] = field(default_factory=list)
    box_ids: list[int] = field(default_factory=list)  # the boxes whose readings were stored

    @property
    def rejected(self) -> int:
        return len(self.rejected_items)


# ---------------------------------------------------------------- who may write where


def _ingest_scope(actor: Principal):
    """None: any box; else the enterprise whose boxes ``actor`` may write readings for."""
    if actor.is_operator:
        return None
    org = actor.organization
    if org is None or not (actor.is_device or org.has_role("generator")):
        raise Forbidden(
            "只有设备令牌、产废单位或平台运维可以上传监测数据 "
            "(only gateways, the box's enterprise or operators ingest readings)"
        )
    return org.id


# ---------------------------------------------------------------- ingest


def ingest(
    session: Session,
    actor: Principal,
    items: list,
    settings: Settings = Settings(),
    now: datetime | None = None,
    held: ExitStack | None = None,
) -> IngestResult:
    """Validate and store a batch; integrate it into the boxes' states; refresh their colours.

    One bad item never loses the good ones: it is reported with its index and errors. Readings
    already stored (same box and ts) count as duplicates and change nothing. With ``held``, the
    SQLite writer lock is taken just before the first write and kept until the caller closes
    ``held`` after its commit.
    """
    now = now or utcnow()
    enterprise_id = _ingest_scope(actor)
    result = IngestResult()
    sqlite = session.get_bind().dialect.name == "sqlite"
    checked, rejected = check_items(items, now + timedelta(seconds=settings.max_future_s), sqlite)
    # Each distinct code is looked up once; the rows of one box gather in one dict by bound ts,
    # which also finds the batch's own repeats.
    wanted = {raw: codes.normalise(raw) for raw in {row[R_CODE] for row in checked}}
    found = {c for c in wanted.values() if c}
    boxes = boxes_by_code(session, list(found)) if found else {}
    by_box: dict[int, dict[Any, tuple]] = {}
    bucket_of: dict[str, tuple[int, dict[Any, tuple]] | None] = {}
    for raw, code in wanted.items():
        box = boxes.get(code) if code else None
        # Another organisation's box is "unknown" too: existence is not disclosed.
        if box is not None and (enterprise_id is None or box.enterprise_id == enterprise_id):
            bucket_of[raw] = (box.id, by_box.setdefault(box.id, {}))
        else:
            bucket_of[raw] = None
    duplicates = 0
    inserts: list[tuple] = []  # (box_id, bound ts, *measures, running): the readings table's columns
    add_insert = inserts.append
    for row in checked:
        target = bucket_of[row[R_CODE]]
        if target is None:
            rejected.append({"index": row[R_INDEX], "box_code": row[R_CODE], "errors": {"box_code": [UNKNOWN_BOX]}})
            continue
        box_id, bucket = target
        bound = row[R_BOUND]
        if bound in bucket:
            duplicates += 1
        else:
            bucket[bound] = row
            add_insert((box_id, bound, *row[R_MEASURE:R_US]))
    if rejected:
        rejected.sort(key=itemgetter("index"))
    result.rejected_items, result.duplicates = rejected, duplicates
    touched = sorted(b for b, bucket in by_box.items() if bucket)
    if not touched:
        return result
    if held is not None:
        held.enter_context(sqlite_writer_lock(session))
    by_id = {b.id: b for b in boxes.values()}
    # PostgreSQL: the states are read unlocked and the batch worked out from them, then locked
    # (in box order) and those another batch changed meanwhile worked out again: two workers'
    # batches that share boxes overlap but for the writes. SQLite has one writer: locked first.
    states, fills = lock_states(session, touched, now, locked=sqlite)
    versions = {box_id: state_version(states[box_id]) for box_id in touched}
    per_box = {box_id: sorted(by_box[box_id].values(), key=itemgetter(R_TS)) for box_id in touched}
    fresh = insert_readings(session, inserts)
    if fresh is not None:  # some were stored already
        per_box = {
            box_id: kept
            for box_id, rows in per_box.items()
            if (kept := [r for r in rows if (box_id, r[R_BOUND]) in fresh])
        }
    result.accepted = sum(len(rows) for rows in per_box.values())
    if result.accepted:
        _audit_batch(session, actor, inserts if fresh is None else [r for r in inserts if (r[0], r[1]) in fresh])
    result.duplicates += sum(len(by_box[b]) for b in touched) - result.accepted
    result.box_ids = sorted(per_box)
    if not result.box_ids:
        return result
    batch = _Batch(session, per_box, states, fills, by_id, _Rollups(sqlite), settings, now)
    batch.work_out(result.box_ids)
    if not sqlite:
        changed = lock_changed(session, result.box_ids, versions)
        if changed:
            again, again_fills = lock_states(session, changed, now, locked=False)  # (locked now)
            batch.states.update(again)
            for box_id in changed:
                batch.fills.pop(box_id, None)
            batch.fills.update(again_fills)
            by_id.update((b.id, b) for b in boxes_by_code(session, [by_id[i].code for i in changed]).values())
            batch.work_out(changed)
    batch.rollups.upsert(session)
    store_states(session, [batch.states[box_id] for box_id in result.box_ids])
    if batch.figures:
        write_figures(session, list(batch.figures.values()))
    evaluated = [box_id for box_id in result.box_ids if box_id in batch.in_full]
    if evaluated:
        _evaluate_in_full(session, evaluated, batch.replay, per_box, batch.states, batch.fills, now)
    return result


class _Batch:
    """A batch worked out box by box from the states read: integrated into the states and the
    roll-ups, and the boxes' figures (or that they need the full evaluation). Working a box out
    again (its state changed since it was read) replaces what it gave before."""

    def __init__(
        self,
        session: Session,
        per_box: dict[int, list[tuple]],
        states: dict[int, _StateValues],
        fills: dict[int, FillRow],
        by_id: dict[int, BoxRow],
        rollups: _Rollups,
        settings: Settings,
        now: datetime,
    ) -> None:
        self.session, self.per_box, self.states, self.fills, self.by_id = session, per_box, states, fills, by_id
        self.rollups, self.settings, self.now = rollups, settings, now
        self.figures: dict[int, tuple[BoxRow, dict[str, Any]]] = {}  # box id → its figures to store
        self.replay: dict[int, datetime] = {}  # box id → replayed from
        self.in_full: set[int] = set()  # the boxes the full evaluation takes

    def work_out(self, box_ids: list[int]) -> None:
        session, states, fills, settings, now = self.session, self.states, self.fills, self.settings, self.now
        again = set(box_ids) & (set(self.figures) | self.in_full | {k[0] for k in self.rollups.rows})
        if again:
            self.rollups.forget(again)
            for box_id in again:
                self.figures.pop(box_id, None)
                self.replay.pop(box_id, None)
                self.in_full.discard(box_id)
        before = {box_id: before_of(states[box_id]) for box_id in box_ids}
        for box_id in box_ids:
            sync_state_to_fill(session, states[box_id], fills.get(box_id), settings)
        newest_before = {box_id: states[box_id].latest_ts for box_id in box_ids}
        for box_id in box_ids:
            _apply(session, self.by_id[box_id], states[box_id], self.per_box[box_id], self.rollups, settings, now)
        pending: list[tuple[BoxRow, dict[str, Any]]] = []
        replay, in_full = _plan_colours(
            session,
            [self.by_id[b] for b in box_ids],
            self.per_box,
            newest_before,
            before,
            states,
            fills,
            settings,
            now,
            pending,
        )
        self.figures.update((box.id, (box, values)) for box, values in pending)
        self.replay.update(replay)
        self.in_full |= in_full


def _plan_colours(
    session: Session,
    boxes: list[BoxRow],
    per_box: dict[int, list[tuple]],
    newest_before: dict[int, datetime | None],
    before: dict[int, Before],
    states: dict[int, _StateValues],
    fills: dict[int, FillRow],
    settings: Settings,
    now: datetime,
    pending: list[tuple[BoxRow, dict[str, Any]]],
) -> tuple[dict[int, datetime], set[int]]:
    """Alarms and saturation enter the colours: every box of the batch has its stored colour,
    saturation and latest reading (what the scan page and the box API serve) current after the
    batch. The boxes whose readings crossed no threshold of the colour rules have only their
    figures updated, set-wise (:mod:`.figures`); the full evaluation (reasons, history) runs for
    the others: those that crossed one, whose stored evaluation is not current, and those replayed
    as below. The active fills are those just read (a box without one is not in ``fills``).

    Readings that describe the past are replayed from the batch's oldest reading: late ones
    (older than the newest stored, or than the fill in force: an earlier carbon's), the first of
    a fill that was evaluated after them (its past switches from the design load to the
    readings), those that end a silence (a gap of more than the hold cap) at a moment the box was
    evaluated after (the silence alarms stored were dated from the reading before them), and
    those that changed the colour (dated where they did). A box whose next check
    came unobserved in a silence (a gap of more than the hold cap before this batch: the silence
    alarms may have come and gone) is caught up from that check."""
    cap = timedelta(seconds=settings.max_interval_s)
    replay: dict[int, datetime] = {}  # box id → replayed from
    # A fill's first readings switch its saturation from the design load to the sensors: the
    # box is evaluated (its shown figures change basis), replayed only as below.
    first_of_fill: set[int] = set()
    for box in boxes:
        first = per_box[box.id][0][R_TS]
        newest, fill = newest_before[box.id], fills.get(box.id)
        due = box.colour_next_check_at
        starts_fill = fill is not None and (newest is None or newest < fill.filled_at)
        # A fill's first readings rewrite its past only when the box was evaluated after them
        # (or its stored evaluation is not current): else nothing stored describes their time.
        evaluated_at = box.colour_evaluated_at
        past_described = evaluated_at is None or first < evaluated_at or (due is not None and due <= now)
        # Readings that end a silence the stored history already described past them (the box
        # was evaluated after them): the silence alarms dated from the reading before are wrong.
        ends_described_silence = (
            newest is not None and first - newest > cap and evaluated_at is not None and first < evaluated_at
        )
        if (
            (newest is not None and first < newest)
            or (fill is not None and first < fill.filled_at)
            or (starts_fill and past_described)
            or ends_described_silence
        ):
            replay[box.id] = first
        if starts_fill:
            first_of_fill.add(box.id)
        if due is not None and due < first and (newest is None or first - newest > cap):
            replay[box.id] = min(replay.get(box.id, due), due)
    plain = [b for b in boxes if b.id not in replay and b.id not in first_of_fill]
    # (Those left: the full evaluation.)
    plain = refresh_figures(session, plain, fills, before, states, settings, now, pending=pending)
    return replay, first_of_fill | {b.id for b in plain} | set(replay)


def _evaluate_in_full(
    session: Session,
    ids: list[int],
    replay: dict[int, datetime],
    per_box: dict[int, list[tuple]],
    states: dict[int, _StateValues],
    fills: dict[int, FillRow],
    now: datetime,
) -> None:
    """The full evaluation of the boxes ``ids`` (sorted; see :func:`_plan_colours`), after the
    batch's states are stored: each box's colour refreshed, its history replayed from
    ``replay``'s moment, or from the batch's first reading when its colour changed (unless the
    change is dated at its one reading: :mod:`.changes`)."""
    # The full evaluation works on the boxes as ORM objects (it writes them, and their history).
    evaluated_now = list(session.scalars(_BOXES_BY_ID, {"ids": ids}))
    held = states_into_session(session, [states[i] for i in ids])  # (held until the end)
    colours = {b.id: b.colour for b in evaluated_now}
    active = cast(dict[int, Fill], fills)
    evaluations = evaluate_boxes(session, evaluated_now, now, active)
    # Changes the batch's one reading dates without a replay (.changes), refreshed with that time.
    dated = dated_at_reading(
        session, [b for b in evaluated_now if b.id not in replay], per_box, evaluations, active, now
    )
    dated_ids = {b.id for group in dated.values() for b in group}
    # (A box whose next check passed is caught up from it.)
    rest = [b for b in evaluated_now if b.id not in dated_ids]
    if rest:
        refresh_colours(session, rest, now, fills=active, evaluations=evaluations)
    for first, group in dated.items():
        refresh_colours(session, group, now, event_time=first, fills=active, evaluations=evaluations)
    for evaluated in rest:
        changed = evaluated.colour != colours[evaluated.id]
        if evaluated.id not in replay and not changed:
            continue
        since = replay.get(evaluated.id, per_box[evaluated.id][0][R_TS])
        if changed and evaluated.colour_since is not None:
            # (A change the refresh just wrote is dated by the refresh's rule: replayed too.)
            since = min(since, evaluated.colour_since)
        rebuild_history(session, evaluated, since, now)
    del held


_BOXES_BY_ID = (
    select(Box)
    .where(Box.id.in_(bindparam("ids", expanding=True)))
    .order_by(Box.id)
    .options(lazyload(Box.enterprise), lazyload(Box.service_org))
    # (As stored now, under the states' locks: a box the session loaded before another batch
    # changed it is read again.)
    .execution_options(populate_existing=True)
)


def _audit_batch(session: Session, actor: Principal, stored: list[tuple]) -> None:
    """The batch as ONE audit entry (readings are not audited row by row): who, how many, which
    boxes, the time span, and a SHA-256 of the stored rows as bound."""
    if not audit_recorder.enabled(session):
        return
    ts = [r[1] for r in stored]
    org = actor.organization
    audit_recorder.note(
        session,
        SensorReading.__tablename__,
        ["batch", len(stored), str(min(ts))],
        "ingest",
        {
            "count": len(stored),
            "box_ids": sorted({r[0] for r in stored}),
            "min_ts": min(ts),
            "max_ts": max(ts),
            "digest": hashlib.sha256(repr(stored).encode()).hexdigest(),
            "by": actor.label,
            "org_id": org.id if org is not None else None,
        },
    )


@contextmanager
def sqlite_writer_lock(session: Session):
    """Serialise SQLite ingest writers (gunicorn workers, the MQTT subscriber) on a file lock.

    SQLite has one writer at a time, and a writer that finds the database locked polls with
    sleeps of up to 100 ms: with two workers most of the time went into those sleeps. A blocking
    ``flock`` wakes the next writer as soon as the previous one commits. PostgreSQL needs none.
    """
    url = session.get_bind().engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        yield
        return
    with open(url.database + ".ingest-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
