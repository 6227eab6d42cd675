"""The audit trail's one table: ``audit_entries``, append-only, each entry hashing its predecessor."""

from __future__ import annotations

from sqlalchemy import DDL, Index, Integer, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model


class AuditEntry(Model):
    """One recorded change: who, when, through which interface, what (table, key, action), the
    row's images before and after (canonical JSON), and the chain hashes.

    ``seq`` is assigned by the writer under the chain lock (gap-free, 1, 2, 3 …); ``hash`` is
    SHA-256 over the canonical JSON of every other column including ``prev_hash``.
    """

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_table_row", "table_name", "row_key", "seq"),
        Index("ix_audit_entries_subject", "subject", "seq"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    recorded_at: Mapped[str] = mapped_column(String(32))  # ISO 8601 UTC, as hashed
    interface: Mapped[str] = mapped_column(String(12))  # page, api, mqtt, cli, system
    user_id: Mapped[int | None] = mapped_column(Integer)  # no foreign key: the trail outlives users
    org_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(120), default="")
    table_name: Mapped[str] = mapped_column(String(64))
    row_key: Mapped[str] = mapped_column(String(200))  # the primary key, canonical JSON
    subject: Mapped[str] = mapped_column(String(120))  # the object it belongs to, e.g. "manifests:12"
    action: Mapped[str] = mapped_column(String(12))  # insert, update, delete, ingest, import, rules
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


# The database refuses changes of entries where it can. PostgreSQL: row triggers (TRUNCATE stays
# possible for the test harness and a deliberate reset). SQLite: the migration's triggers (a
# create_all database, the test suite's, has none, so that its per-test cleanup can delete).
PG_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_entries_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = 'audit_entries is append-only (' || TG_OP || ' refused)';
END;
$$ LANGUAGE plpgsql
"""
PG_TRIGGER = (
    "CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries "
    "FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()"
)
SQLITE_TRIGGERS = (
    "CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries "
    "BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only (UPDATE refused)'); END",
    "CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries "
    "BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only (DELETE refused)'); END",
)

event.listen(AuditEntry.__table__, "after_create", DDL(PG_FUNCTION).execute_if(dialect="postgresql"))
event.listen(AuditEntry.__table__, "after_create", DDL(PG_TRIGGER).execute_if(dialect="postgresql"))
