"""Ingest of a batch of sensor readings (HTTP and MQTT): who may write where, the boxes looked
up, the readings stored, the boxes' states and roll-ups updated, their colours refreshed.

No Flask here: callers pass the session, the acting :class:`Principal` and the settings.

One batch costs a fixed number of statements however many readings it carries: boxes in one
query, states in one (locked) query, readings in one COPY (PostgreSQL) or INSERT … ON CONFLICT DO NOTHING
per 1,000, roll-ups in one upsert, states in one UPDATE executed for all, then the boxes'
figures in one UPDATE for those whose readings crossed no threshold of the colour rules
(:mod:`.figures`) and one colour refresh of the others (given the fills and states just read).
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
import sqlite3
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session, lazyload

from app.accounts.services import Principal
from app.audit import recorder as audit_recorder
from app.boxes import codes
from app.boxes.models import Box, Fill
from app.boxes.services import evaluate_boxes, rebuild_history, refresh_colours
from app.common.errors import Forbidden
from app.common.rows import tuples
from app.common.timeutil import utcnow
from app.telemetry.models import MEASURES, SensorReading
from app.telemetry.services.bulk import prepare_stage
from app.telemetry.services.changes import dated_at_reading
from app.telemetry.services.checks import R_BOUND, R_CODE, R_INDEX, R_MEASURE, R_TS, R_US, check_items
from app.telemetry.services.figures import Before, BoxRow, before_of, boxes_by_code, refresh_figures
from app.telemetry.services.rollups import _Rollups
from app.telemetry.services.settings import Settings
from app.telemetry.services.states import (
    FillRow,
    _apply,
    _marks,
    _StateValues,
    lock_states,
    states_into_session,
    store_states,
    sync_state_to_fill,
)

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
    states, fills = lock_states(session, touched, now)
    before = {box_id: before_of(states[box_id]) for box_id in touched}
    for box_id in touched:
        sync_state_to_fill(session, states[box_id], fills.get(box_id), settings)
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
    rollups = _Rollups(sqlite)
    newest_before = {box_id: states[box_id].latest_ts for box_id in per_box}
    for box_id, box_rows in per_box.items():
        _apply(session, by_id[box_id], states[box_id], box_rows, rollups, settings, now)
    rollups.upsert(session)
    store_states(session, [states[box_id] for box_id in per_box])
    result.box_ids = sorted(per_box)
    if result.box_ids:
        _refresh_batch_colours(
            session, [by_id[b] for b in result.box_ids], per_box, newest_before, before, states, fills, settings, now
        )
    return result


def _refresh_batch_colours(
    session: Session,
    boxes: list[BoxRow],
    per_box: dict[int, list[tuple]],
    newest_before: dict[int, datetime | None],
    before: dict[int, Before],
    states: dict[int, _StateValues],
    fills: dict[int, FillRow],
    settings: Settings,
    now: datetime,
) -> None:
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
    plain = refresh_figures(session, plain, fills, before, states, settings, now)  # those left: the full evaluation
    chosen = first_of_fill | {b.id for b in plain}
    ids = [b.id for b in boxes if b.id in replay or b.id in chosen]
    if not ids:
        return
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


READING_COLUMNS = ("box_id", "ts", *MEASURES, "running")
_INSERT_CHUNK = 1000  # rows per statement: 10 columns × 1000 stays under both databases' parameter limits
# PostgreSQL: a batch that carries stored readings is COPYed into this temporary table (one per
# connection, emptied at each commit) and moved into the readings with one INSERT … SELECT …
# ON CONFLICT DO NOTHING.
_STAGE = "ingest_readings_stage"


@lru_cache(maxsize=16)
def _insert_sql(mark: str, n_rows: int, returning: bool) -> str:
    row = "(" + ", ".join([mark] * len(READING_COLUMNS)) + ")"
    return (
        f"INSERT INTO {SensorReading.__tablename__} ({', '.join(READING_COLUMNS)}) VALUES "
        f"{', '.join([row] * n_rows)} ON CONFLICT (box_id, ts) DO NOTHING"
        + (" RETURNING box_id, ts" if returning else "")
    )


def _sqlite_in_transaction(conn: Connection) -> bool:
    # pysqlite: the DBAPI connection is a sqlite3.Connection (the DBAPI protocol has no in_transaction).
    return cast(sqlite3.Connection, conn.connection.dbapi_connection).in_transaction


def insert_readings(session: Session, rows: list[tuple], copy: bool | None = None) -> set[tuple[int, Any]] | None:
    """Store rows ``(box_id, bound ts, *measures, running)`` unless already stored: None when all
    were new, else the keys ``(box_id, ts)`` of the new ones.

    PostgreSQL (``copy`` None or True): the rows are COPYed (psycopg 3 ``cursor.copy``) into the
    readings in a savepoint; if some were stored already (the key refuses the COPY), into a
    temporary stage instead and moved with one ``INSERT … SELECT … ON CONFLICT (box_id, ts) DO
    NOTHING``. SQLite (or ``copy=False``): ``INSERT … ON CONFLICT DO NOTHING`` executed for
    all rows (``executemany``) on SQLite, multi-row statements of up to 1,000 rows on
    PostgreSQL. Either way as driver SQL (SQLAlchemy's per-value bind processing would cost more
    than the insert), in a savepoint: the common case, every row new, is told by the row count
    alone. Otherwise the savepoint is rolled back and the rows are inserted again with
    ``RETURNING box_id, ts`` to learn which were new, paid only by batches that carry stored
    readings.
    """
    conn = session.connection()
    if conn.dialect.name == "postgresql" and copy is not False:
        return _copy_readings(conn, rows)
    mark = _marks(conn)
    sqlite = conn.dialect.name == "sqlite"
    if not sqlite or _sqlite_in_transaction(conn):
        # (On SQLite a savepoint outside a transaction would start one, and its release commit.)
        conn.exec_driver_sql("SAVEPOINT insert_readings")
        if sqlite:
            inserted = conn.exec_driver_sql(_insert_sql(mark, 1, False), rows).rowcount
        else:
            inserted = 0
            for begin in range(0, len(rows), _INSERT_CHUNK):
                chunk = rows[begin : begin + _INSERT_CHUNK]
                inserted += conn.exec_driver_sql(
                    _insert_sql(mark, len(chunk), False), tuple(chain.from_iterable(chunk))
                ).rowcount
        if inserted == len(rows):
            conn.exec_driver_sql("RELEASE SAVEPOINT insert_readings")
            return None
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT insert_readings")
        conn.exec_driver_sql("RELEASE SAVEPOINT insert_readings")
    fresh: set[tuple[int, Any]] = set()
    for begin in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[begin : begin + _INSERT_CHUNK]
        fresh.update(
            (box_id, ts)
            for box_id, ts in tuples(
                conn.exec_driver_sql(_insert_sql(mark, len(chunk), True), tuple(chain.from_iterable(chunk)))
            )
        )
    return None if len(fresh) == len(rows) else fresh


_COLUMN_LIST = ", ".join(READING_COLUMNS)
_MOVE_SQL = (
    f"INSERT INTO {SensorReading.__tablename__} ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM {_STAGE} "
    "ON CONFLICT (box_id, ts) DO NOTHING"
)


def _copy_readings(conn: Connection, rows: list[tuple]) -> set[tuple[int, Any]] | None:
    """PostgreSQL: COPY straight into the readings, in a savepoint: the common case (every row
    new) costs what the COPY baseline does. A batch that carries stored readings fails there on
    the key; it is rolled back to the savepoint and moved through the stage instead, with one
    INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING the new keys."""
    from psycopg.errors import UniqueViolation  # (the PostgreSQL driver: only this path needs it)

    cursor = cast(Any, conn.connection.dbapi_connection).cursor()  # psycopg 3: Cursor.copy
    try:
        cursor.execute("SAVEPOINT insert_readings")
        try:
            with cursor.copy(f"COPY {SensorReading.__tablename__} ({_COLUMN_LIST}) FROM STDIN") as copy:
                write = copy.write_row
                for row in rows:
                    write(row)
        except UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT insert_readings")
            cursor.execute("RELEASE SAVEPOINT insert_readings")
            # (Made by the first such batch of each connection, and again after a rolled-back one.)
            prepare_stage(cursor, _STAGE, SensorReading.__tablename__)
            with cursor.copy(f"COPY {_STAGE} ({_COLUMN_LIST}) FROM STDIN") as copy:
                write = copy.write_row
                for row in rows:
                    write(row)
            cursor.execute(_MOVE_SQL + " RETURNING box_id, ts")
            fresh = {(box_id, ts) for box_id, ts in cursor.fetchall()}
            return None if len(fresh) == len(rows) else fresh
        cursor.execute("RELEASE SAVEPOINT insert_readings")
        return None
    finally:
        cursor.close()
