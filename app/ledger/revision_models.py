"""Revisions (更正申请): the one way a manifest past its draft, or a ledger record, changes.

A party asks for a correction (what changes, why); every party that must agree has one
:class:`RevisionApproval` row (the other parties of the manifest; for a ledger record the
regulator of the enterprise's jurisdiction). When the last one approves, the revision is applied
and the target's ``version`` goes up by one; ``before`` keeps the content of the version it
replaced, ``after`` the content it became, so every version stays readable.

Masses inside ``changes``, ``before`` and ``after`` are decimal strings ("1800.500"): JSON
numbers would be floats.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.common.columns import state_type
from app.common.types import UTCDateTime
from app.extensions import Model
from app.ledger.models import LedgerRecord, Manifest, checks


class RevisionTarget(StrEnum):
    MANIFEST = "manifest"
    LEDGER_RECORD = "ledger_record"


class RevisionState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"
    CANCELLED = "cancelled"


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


REVISION_CHECKS = {
    "target_has_its_row": "(target = 'manifest' AND manifest_id IS NOT NULL AND record_id IS NULL) OR "
    "(target = 'ledger_record' AND record_id IS NOT NULL AND manifest_id IS NULL)",
    "reason_given": "length(reason) > 0",
    "decided_has_decided_at": "state = 'pending' OR decided_at IS NOT NULL",
    "approved_has_version": "state <> 'approved' OR version IS NOT NULL",
}
APPROVAL_CHECKS = {"decided_has_decided_at": "state = 'pending' OR decided_at IS NOT NULL"}


class Revision(Model):
    __tablename__ = "revisions"
    __table_args__ = checks(REVISION_CHECKS)
    id: Mapped[int] = mapped_column(primary_key=True)
    target: Mapped[RevisionTarget] = mapped_column(state_type(RevisionTarget, "target", 16))
    # manifest_id puts the revision into the manifest's audit trail (the recorder's subject).
    manifest_id: Mapped[int | None] = mapped_column(ForeignKey("manifests.id"), index=True)
    record_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_records.id"), index=True)
    state: Mapped[RevisionState] = mapped_column(
        state_type(RevisionState, "state", 12), default=RevisionState.PENDING, index=True
    )
    reason: Mapped[str] = mapped_column(Text)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    base_version: Mapped[int] = mapped_column(Integer)  # the version the request was made against
    version: Mapped[int | None] = mapped_column(Integer)  # the version it became (approved)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    requested_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    requested_by_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    requested_by: Mapped[str] = mapped_column(String(120), default="")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The enterprise whose waste it is (the manifest's consignor): regulators' jurisdiction.
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[str] = mapped_column(String(120), default="")

    manifest: Mapped[Manifest | None] = relationship()
    record: Mapped[LedgerRecord | None] = relationship()
    approvals: Mapped[list[RevisionApproval]] = relationship(
        order_by="RevisionApproval.id", cascade="all, delete-orphan", lazy="selectin", back_populates="revision"
    )


class RevisionApproval(Model):
    """One party's answer to a revision."""

    __tablename__ = "revision_approvals"
    __table_args__ = (UniqueConstraint("revision_id", "organization_id"), *checks(APPROVAL_CHECKS))
    id: Mapped[int] = mapped_column(primary_key=True)
    revision_id: Mapped[int] = mapped_column(ForeignKey("revisions.id", ondelete="CASCADE"), index=True)
    manifest_id: Mapped[int | None] = mapped_column(ForeignKey("manifests.id"), index=True)  # audit subject
    party: Mapped[str] = mapped_column(String(12))  # consignor | carrier | receiver | regulator
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    organization_name: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[ApprovalState] = mapped_column(state_type(ApprovalState, "state", 12), default=ApprovalState.PENDING)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_by: Mapped[str] = mapped_column(String(120), default="")
    note: Mapped[str] = mapped_column(Text, default="")

    revision: Mapped[Revision] = relationship(back_populates="approvals")
