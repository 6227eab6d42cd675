"""The audit trail's one table: ``audit_entries``, append-only, each entry hashing its predecessor."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import DDL, ForeignKey, Index, Integer, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from app.common.columns import state_type
from app.common.types import UTCDateTime
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


# ---------------------------------------------------------------- signed hand-overs


class SignatureMethod(StrEnum):
    """How the signer authenticated at the moment of signing."""

    PASSWORD = "password"
    ONE_TIME_CODE = "one_time_code"


class ManifestSignature(Model):
    """One party's signature of one manifest step (CROMERR-like: the signer authenticated at that
    moment). ``content_sha256`` is the SHA-256 of the manifest's canonical content at that step
    (:func:`app.audit.signatures.signed_content`): recomputed later, it shows whether what was
    signed is still what the manifest says. Names are copied: the record outlives renames."""

    __tablename__ = "manifest_signatures"
    __table_args__ = (Index("ix_manifest_signatures_manifest", "manifest_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    manifest_id: Mapped[int] = mapped_column(ForeignKey("manifests.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(20))  # submit, pickup, receive, reject, process
    party: Mapped[str] = mapped_column(String(12))  # consignor, carrier, receiver
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    signer_name: Mapped[str] = mapped_column(String(120))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="SET NULL"))
    organization_name: Mapped[str] = mapped_column(String(200), default="")
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    method: Mapped[SignatureMethod] = mapped_column(state_type(SignatureMethod, "method", 16))
    content_sha256: Mapped[str] = mapped_column(String(64))
    # The manifest's version when signed: an approved revision (a new version) changes the
    # content on purpose, so an earlier version's signature is then "superseded", not broken.
    manifest_version: Mapped[int] = mapped_column(default=1, server_default="1")
    # A one-time code is typed by someone else (the carrier): who entered it on whose device.
    entered_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class HandoverCode(Model):
    """A short one-time code a consignor's staff member gives the carrier for one manifest, so
    that the hand-over is signed by the consignor without them being signed in at pickup.
    Stored hashed (like a password), valid until ``expires_at``, used once."""

    __tablename__ = "handover_codes"
    __table_args__ = (Index("ix_handover_codes_manifest", "manifest_id", "expires_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    manifest_id: Mapped[int] = mapped_column(ForeignKey("manifests.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(255))
    issued_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    used_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
