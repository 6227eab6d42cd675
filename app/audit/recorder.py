"""The one recording mechanism: session events stage what changed, the commit appends the chain.

:func:`install` (called by :func:`app.create_app`) listens on the app's session class
(:class:`app.common.wiring.WiredSession`); sessions whose wiring has ``audit`` off record nothing.

* ``after_flush``: every insert, update and delete of an audited table's row (its key; for an
  update the previous values of the changed columns, from the attribute history);
* ``do_orm_execute``: bulk ``UPDATE``/``DELETE``/``INSERT`` statements run through the session on an
  audited table (their rows' before images are read first);
* ``before_commit``: the staged rows are read back as stored (the "after" image is exactly what
  ``audit verify`` will compare), one entry per row per transaction, plus the noted entries
  (an ingest batch, an import, rule files); then the chain is appended under a lock taken right
  before the commit (PostgreSQL ``pg_advisory_xact_lock``; SQLite has one writer already).

No Flask here: who acts and through which interface is set on the session by the boundaries
(:func:`set_context`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, TypeGuard, cast

from sqlalchemy import Table, TableClause, and_, event, insert, or_, select, text
from sqlalchemy.orm import Mapper, Session, attributes, object_session
from sqlalchemy.orm.base import NO_VALUE

from app.audit import canonical
from app.audit.models import AuditEntry

PENDING_KEY = "tanxiang.audit.pending"
CONTEXT_KEY = "tanxiang.audit.context"
CHAIN_LOCK_KEY = 0x7A4E_A0D1  # pg_advisory_xact_lock key of the chain append

# High-volume telemetry (audited per ingest batch instead), counters, and the trail itself.
EXCLUDED_TABLES = frozenset(
    {
        "audit_entries",
        "alembic_version",
        "sensor_readings",
        "sensor_reading_hours",
        "box_sensor_states",
        "manifest_counters",
        "idempotency_keys",  # stored answers of writes, which are audited themselves
        # the statistics' roll-ups: derived from audited rows at each commit, rebuilt by a command
        "rollup_colour_spans",
        "rollup_waste_months",
        "rollup_treatment_months",
        "rollup_fill_months",
        "rollup_consignment_months",
        "rollup_fill_days",
        "rollup_consignment_days",
    }
)
# Derived columns, re-computed on reads and written in bulk: a box's colour is audited through
# its colour history (colour_changes), its revision is a cache counter.
EXCLUDED_COLUMNS: dict[str, frozenset[str]] = {
    # The stored evaluation (colour, reasons, saturation, predicted date, its detail) is derived
    # state, recomputed from the audited facts whenever it is due (app/boxes/services/stored.py):
    # a cache, not a record; auditing it would add an entry per box per sweep.
    "boxes": frozenset(
        {
            "revision",
            "colour",
            "colour_since",
            "colour_evaluated_at",
            "colour_next_check_at",
            "colour_reasons",
            "saturation",
            "predicted_replacement_at",
            "colour_detail",
        }
    ),
    # A usage stamp written at most once a minute in its own short transaction (app.accounts.services):
    # not a change of the token's state, and auditing it would add an entry per token per minute.
    "api_tokens": frozenset({"last_used_at"}),
    # A job's progress, written with every chunk of its work (app/jobs/runner.py): its states
    # (who asked, queued, running, succeeded or failed, the result) are audited, not each step.
    "jobs": frozenset({"progress_done", "progress_total", "heartbeat_at"}),
}
PARENTS = (("manifest_id", "manifests"), ("box_id", "boxes"))
ROW_ACTIONS = ("insert", "update", "delete")


@dataclass
class Context:
    interface: str = "system"
    user_id: int | None = None
    org_id: int | None = None
    actor: str = ""


@dataclass
class _Touch:
    first: str  # insert, update, delete
    before: dict[str, Any] | None = None


@dataclass
class Pending:
    rows: dict[tuple[str, tuple], _Touch] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)

    def touch(self, table: str, key: tuple, action: str, before: dict[str, Any] | None) -> None:
        seen = self.rows.get((table, key))
        if seen is None:
            self.rows[(table, key)] = _Touch(action, before)
        elif before:
            seen.before = {**before, **(seen.before or {})}  # the first value in the transaction wins


def audited(table: object) -> TypeGuard[TableClause]:
    return isinstance(table, TableClause) and table.name not in EXCLUDED_TABLES


def enabled(session: Session) -> bool:
    from app.common.wiring import wiring_of

    return wiring_of(session).audit


def set_context(
    session: Session, interface: str, user_id: int | None = None, org_id: int | None = None, actor: str = ""
) -> None:
    session.info[CONTEXT_KEY] = Context(interface, user_id, org_id, actor)


def cli_context(session: Session) -> None:
    """A CLI command's session: the trail names the interface ``cli`` (app.common.tx.cli_transaction)."""
    set_context(session, "cli")


def set_principal(session: Session, interface: str, principal) -> None:
    """The boundary's one call: ``principal`` is an :class:`app.accounts.services.Principal` or None."""
    if principal is None:
        set_context(session, interface)
        return
    user = getattr(principal, "user", None)
    org = principal.organization
    set_context(
        session, interface, user.id if user is not None else None, org.id if org is not None else None, principal.label
    )


def pending(session: Session) -> Pending:
    found = session.info.get(PENDING_KEY)
    if found is None:
        found = session.info[PENDING_KEY] = Pending()
    return found


def note(
    session: Session, table_name: str, row_key: Any, action: str, after: dict[str, Any], subject: str | None = None
) -> None:
    """Stage one entry that is not a row image: an ingest batch, an import, the rule files."""
    if not enabled(session):
        return
    key = canonical.dumps(canonical.plain(row_key))
    pending(session).notes.append(
        {
            "table_name": table_name,
            "row_key": key,
            "action": action,
            "subject": subject or f"{table_name}:{key}",
            "before": None,
            "after": canonical.dumps(canonical.plain(after)),
        }
    )


# ---------------------------------------------------------------- images


def image(table, row) -> dict[str, Any]:
    """The audited image of a stored row (mapping by column name)."""
    skip = EXCLUDED_COLUMNS.get(table.name, frozenset())
    out: dict[str, Any] = {}
    for column in table.columns:
        name = column.name
        if name in skip:
            continue
        out[name] = canonical.REDACTED if name in canonical.SECRET_COLUMNS else canonical.plain(row[name])
    return out


def row_key(table, row) -> tuple:
    return tuple(row[c.name] for c in table.primary_key.columns)


def key_text(key: tuple) -> str:
    return canonical.dumps(canonical.plain(list(key)))


def _key_filter(table, keys: list[tuple]):
    cols = list(table.primary_key.columns)
    if len(cols) == 1:
        return cols[0].in_([k[0] for k in keys])
    return or_(*(and_(*(c == v for c, v in zip(cols, k, strict=True))) for k in keys))


def load_images(connection, table, keys: list[tuple]) -> dict[tuple, dict[str, Any]]:
    found: dict[tuple, dict[str, Any]] = {}
    for begin in range(0, len(keys), 500):
        chunk = keys[begin : begin + 500]
        for row in connection.execute(select(table).where(_key_filter(table, chunk))).mappings():
            found[row_key(table, row)] = image(table, row)
    return found


def subject_of(table_name: str, key: str, after: dict | None, before: dict | None) -> str:
    values = after or before or {}
    for column, parent in PARENTS:
        if values.get(column) is not None:
            return f"{parent}:{canonical.dumps([values[column]])}"
    return f"{table_name}:{key}"


# ---------------------------------------------------------------- session events


def _after_flush(session: Session, _flush_context) -> None:
    if not enabled(session):
        return
    staged = pending(session)
    for obj in session.new:
        mapper = attributes.instance_state(obj).mapper
        if audited(mapper.local_table):
            staged.touch(mapper.local_table.name, tuple(mapper.primary_key_from_instance(obj)), "insert", None)
    for obj in session.dirty:
        state = attributes.instance_state(obj)
        table = state.mapper.local_table
        if not audited(table) or not state.committed_state:
            continue
        skip = EXCLUDED_COLUMNS.get(table.name, frozenset())
        before: dict[str, Any] = {}
        for key in list(state.committed_state):
            prop = state.mapper.attrs.get(key)
            columns = getattr(prop, "columns", None)
            if not columns or columns[0].name in skip:
                continue
            history = state.attrs[key].history
            if not history.has_changes():
                continue
            old = history.deleted[0] if history.deleted else NO_VALUE
            name = columns[0].name
            before[name] = (
                canonical.REDACTED
                if name in canonical.SECRET_COLUMNS
                else None
                if old is NO_VALUE
                else canonical.plain(old)
            )
        if before:
            staged.touch(table.name, tuple(state.mapper.primary_key_from_instance(obj)), "update", before)


def _after_delete(mapper, _connection, target) -> None:
    """Every ORM delete, cascades and orphans included (``session.deleted`` misses orphans)."""
    session = object_session(target)
    table = mapper.local_table
    if session is None or not audited(table) or not enabled(session):
        return
    state = attributes.instance_state(target)
    values = {c.name: state.dict.get(mapper.get_property_by_column(c).key) for c in table.columns}
    pending(session).touch(table.name, tuple(mapper.primary_key_from_instance(target)), "delete", image(table, values))


def _do_orm_execute(state) -> Any:
    statement = state.statement
    if not (state.is_update or state.is_delete or state.is_insert):
        return None
    table = getattr(statement, "table", None)
    table = getattr(table, "__table__", table)
    if not audited(table) or not enabled(state.session):
        return None
    session = state.session
    staged = pending(session)
    if state.is_insert:
        result = state.invoke_statement()
        try:
            rows = result.inserted_primary_key_rows
        except Exception:  # e.g. ON CONFLICT DO NOTHING that inserted nothing
            rows = []
        for pk in rows or []:
            if pk is not None and all(v is not None for v in pk):
                staged.touch(table.name, tuple(pk), "insert", None)
        return result
    where = statement.whereclause
    params = state.parameters
    connection = session.connection()
    for param in params if isinstance(params, list) else [params or {}]:
        query = select(table) if where is None else select(table).where(where)
        for row in connection.execute(query, param).mappings():
            staged.touch(table.name, row_key(table, row), "update" if state.is_update else "delete", image(table, row))
    return None


def _before_commit(session: Session) -> None:
    if not enabled(session):
        return
    session.flush()
    staged = session.info.get(PENDING_KEY)
    if staged is None or not (staged.rows or staged.notes):
        return
    connection = session.connection()
    tables = {t.name: t for t in _metadata().sorted_tables}
    entries: list[dict[str, Any]] = []
    by_table: dict[str, list[tuple]] = {}
    for name, key in staged.rows:
        by_table.setdefault(name, []).append(key)
    for name, keys in by_table.items():
        table = tables[name]
        current = load_images(connection, table, keys)
        for key in keys:
            touch = staged.rows[(name, key)]
            after = current.get(key)
            if touch.first == "insert":
                if after is None:
                    continue  # inserted and gone again within the transaction
                action, before = "insert", None
            elif after is None:
                action, before = "delete", touch.before
            else:
                action, before = "update", touch.before
                if before and all(after.get(k) == v for k, v in before.items()):
                    continue  # changed and changed back, or a bulk statement that changed nothing
            text_key = key_text(key)
            entries.append(
                {
                    "table_name": name,
                    "row_key": text_key,
                    "action": action,
                    "subject": subject_of(name, text_key, after, before),
                    "before": None if before is None else canonical.dumps(before),
                    "after": None if after is None else canonical.dumps(after),
                }
            )
    entries += staged.notes
    staged.rows.clear()
    staged.notes = []
    if entries:
        append(session, entries)


def _clear(session: Session, *_args) -> None:
    session.info.pop(PENDING_KEY, None)


def _metadata():
    from app.extensions import db

    return db.metadata


# ---------------------------------------------------------------- the chain


def head(connection) -> tuple[int, str]:
    row = connection.execute(select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)).first()
    return (row[0], row[1]) if row is not None else (0, canonical.GENESIS)


def append(session: Session, entries: list[dict[str, Any]], now=None) -> None:
    """Append ``entries`` (table_name, row_key, action, subject, before, after) to the chain,
    in this transaction, under the chain lock (held until the commit that follows)."""
    from app.common.timeutil import utcnow

    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})
    context: Context = session.info.get(CONTEXT_KEY) or Context()
    at = (now or utcnow()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    seq, prev = head(connection)
    rows = []
    for entry in entries:
        seq += 1
        fields = {
            "seq": seq,
            "recorded_at": at,
            "interface": context.interface,
            "user_id": context.user_id,
            "org_id": context.org_id,
            "actor": context.actor or "",
            **entry,
            "prev_hash": prev,
        }
        fields["hash"] = prev = canonical.entry_hash(fields)
        rows.append(fields)
    connection.execute(insert(cast(Table, AuditEntry.__table__)), rows)


def install(session_class) -> None:
    """Listen on the app's session class, once per process (idempotent; off per wiring)."""
    for name, fn in (
        ("after_flush", _after_flush),
        ("do_orm_execute", _do_orm_execute),
        ("before_commit", _before_commit),
        ("after_commit", _clear),
        ("after_rollback", _clear),
    ):
        if not event.contains(session_class, name, fn):
            event.listen(session_class, name, fn)
    if not event.contains(Mapper, "after_delete", _after_delete):
        event.listen(Mapper, "after_delete", _after_delete)


__all__ = ["append", "head", "install", "note", "set_context", "set_principal"]
