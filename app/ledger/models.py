"""The hazardous-waste ledger (台账, HJ 1259-2022) and transfer manifests (转移联单).

Quantities are exact kilograms (NUMERIC(14, 3), Decimal in Python, like the boxes' fills):
sums compare exactly; reports convert to tonnes. CHECK constraints tie each state to its
timestamps and keep every balance within its bounds.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import Organization
from app.common.columns import ZERO_KG, Kilograms, state_type
from app.common.timeutil import utcnow
from app.common.types import UTCDateTime
from app.extensions import Model

if TYPE_CHECKING:
    from app.audit.models import ManifestSignature


class Stage(StrEnum):
    """HJ 1259-2022 stages, plus ``returned``: waste refused by the receiver that came back into storage."""

    GENERATION = "generation"
    STORAGE = "storage"
    OUT_OF_STORAGE = "out_of_storage"
    SENT_OUT = "sent_out"
    RETURNED = "returned"


class ManifestStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    IN_TRANSIT = "in_transit"
    RECEIVED = "received"
    PROCESSED = "processed"
    CLOSED = "closed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


STAGES = tuple(Stage)
STAGE_ZH = {
    "generation": "产生",
    "storage": "入库",
    "out_of_storage": "出库",
    "sent_out": "委外利用/处置",
    "returned": "退回入库",
}
STAGE_PREFIX = {"generation": "CS", "storage": "RK", "out_of_storage": "CK", "sent_out": "WW", "returned": "TH"}

MANIFEST_STATES = tuple(ManifestStatus)
# The states a manifest reaches only through a step, each with the timestamp that step sets.
PICKED_UP_STATES = ("in_transit", "received", "processed", "closed", "rejected")
RECEIVED_STATES = ("received", "processed", "closed")
PROCESSED_STATES = ("processed", "closed")


def _in(states: tuple[str, ...]) -> str:
    return "status IN (" + ", ".join(f"'{s}'" for s in states) + ")"


# name → SQL: a manifest in a state has the timestamps of the steps that led there.
# (The steps also set submitted_at, receipt_due_at and closed_at; statistics and the index read
# only the timestamps below, so those are what the database guarantees.)
MANIFEST_CHECKS = {
    "picked_up_has_picked_up_at": f"NOT ({_in(PICKED_UP_STATES)}) OR picked_up_at IS NOT NULL",
    "received_has_received_at": f"NOT ({_in(RECEIVED_STATES)}) OR received_at IS NOT NULL",
    "processed_has_processed_at": f"NOT ({_in(PROCESSED_STATES)}) OR processed_at IS NOT NULL",
    "rejected_has_rejected_at": "status <> 'rejected' OR rejected_at IS NOT NULL",
    "cancelled_has_cancelled_at": "status <> 'cancelled' OR cancelled_at IS NOT NULL",
}
# A generation batch carries its balances (0 ≤ not on a manifest ≤ on site ≤ generated); the
# records of the later stages do not.
LEDGER_RECORD_CHECKS = {
    "quantity_not_negative": "quantity_kg >= 0",
    "generation_balances": "stage <> 'generation' OR (on_site_kg IS NOT NULL AND available_kg IS NOT NULL "
    "AND available_kg >= 0 AND available_kg <= on_site_kg AND on_site_kg <= quantity_kg)",
    "balances_only_generation": "stage = 'generation' OR (on_site_kg IS NULL AND available_kg IS NULL)",
}
# Stock: reservations are drawn from what is on hand (a manifest reserves at most on_hand − reserved).
WASTE_STOCK_CHECKS = {
    "on_hand_not_negative": "on_hand_kg >= 0",
    "reserved_not_negative": "reserved_kg >= 0",
    "reserved_within_on_hand": "reserved_kg <= on_hand_kg",
}
MANIFEST_LINE_CHECKS = {
    "quantity_positive": "quantity_kg > 0",
    "received_not_negative": "received_kg IS NULL OR received_kg >= 0",
    "accepted_within_received": "accepted_kg IS NULL OR (accepted_kg >= 0 AND (received_kg IS NULL OR "
    "accepted_kg <= received_kg))",
    "consumed_within_accepted": "consumed_kg >= 0 AND consumed_kg <= COALESCE(accepted_kg, 0)",
}
MANIFEST_LINE_SOURCE_CHECKS = {
    "quantity_positive": "quantity_kg > 0",
    "returned_within_quantity": "returned_kg >= 0 AND returned_kg <= quantity_kg",
}


def checks(table: dict[str, str]) -> tuple[CheckConstraint, ...]:
    return tuple(CheckConstraint(sql, name=name) for name, sql in table.items())


STATE_ZH = {
    "draft": "草稿",
    "submitted": "已提交",
    "in_transit": "运输中",
    "received": "已接收",
    "processed": "已利用/处置",
    "closed": "已办结",
    "rejected": "已拒收",
    "cancelled": "已作废",
}
ORIGINS = ("electronic", "paper", "national")
PHYSICAL_FORMS = {"solid": "固态", "semi_solid": "半固态", "liquid": "液态", "gas": "气态", "other": "其他"}


class WasteStock(Model):
    """Stock on hand per (enterprise, waste code): the row that is locked while stock moves.

    on_hand = generated − picked up + returned; reserved = on submitted manifests not yet picked
    up. available = on_hand − reserved is what a new manifest may draw.
    """

    __tablename__ = "waste_stock"
    __table_args__ = (UniqueConstraint("enterprise_id", "waste_code"), *checks(WASTE_STOCK_CHECKS))
    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    waste_code: Mapped[str] = mapped_column(String(10))
    on_hand_kg: Mapped[Decimal] = mapped_column(Kilograms(), default=ZERO_KG)
    reserved_kg: Mapped[Decimal] = mapped_column(Kilograms(), default=ZERO_KG)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def available_kg(self) -> Decimal:
        return self.on_hand_kg - self.reserved_kg


# A generation batch with waste still on site (more than half a gram: EPS of
# app.ledger.services.rules_access): the predicate of the partial index below, written in the
# query that uses it as the same literal SQL, so that a prepared (generic) plan can use it too.
WASTE_ON_SITE = "stage = 'generation' AND on_site_kg > 0.0005"


class LedgerRecord(Model):
    """One ledger record (one container/batch at one stage), HJ 1259-2022.

    Generation records carry the batch's running balances: ``on_site_kg`` (physically on site:
    not yet picked up) and ``available_kg`` (not yet on a submitted manifest). The later stages
    reference the generation batch through ``source_batch_code``.
    """

    __tablename__ = "ledger_records"
    __table_args__ = (
        Index("ix_ledger_records_enterprise_id_occurred_at", "enterprise_id", "occurred_at"),
        Index("ix_ledger_records_box_id_stage", "box_id", "stage"),
        # The waste still on site, per box (app.ledger.colour.waste_on_site, every colour
        # evaluation): a few rows among millions, read without visiting the others' heap pages.
        Index(
            "ix_ledger_records_waste_on_site",
            "box_id",
            postgresql_where=text(WASTE_ON_SITE),
            sqlite_where=text(WASTE_ON_SITE),
        ),
        *checks(LEDGER_RECORD_CHECKS),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_code: Mapped[str] = mapped_column(String(40), unique=True)
    stage: Mapped[Stage] = mapped_column(state_type(Stage, "stage", 16))
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    waste_code: Mapped[str] = mapped_column(String(10))
    waste_name: Mapped[str] = mapped_column(String(300))
    category: Mapped[str] = mapped_column(String(4))
    catalogue_edition: Mapped[str] = mapped_column(String(8))
    quantity_kg: Mapped[Decimal] = mapped_column(Kilograms())
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)  # city statistics by period
    source_batch_code: Mapped[str | None] = mapped_column(String(40), index=True)
    origin: Mapped[str] = mapped_column(String(16))  # replacement | manual | manifest
    box_id: Mapped[int | None] = mapped_column(ForeignKey("boxes.id"))
    fill_id: Mapped[int | None] = mapped_column(ForeignKey("fills.id"), unique=True)
    facility_code: Mapped[str] = mapped_column(String(40), default="")  # 产生设施 / 贮存设施编码
    container_type: Mapped[str] = mapped_column(String(40), default="")
    container_count: Mapped[int | None] = mapped_column(Integer)
    handler: Mapped[str] = mapped_column(String(120), default="")
    destination: Mapped[str] = mapped_column(String(200), default="")
    manifest_id: Mapped[int | None] = mapped_column(ForeignKey("manifests.id"), index=True)
    manifest_line_id: Mapped[int | None] = mapped_column(ForeignKey("manifest_lines.id"), index=True)
    manifest_number: Mapped[str | None] = mapped_column(String(14))  # as printed in the record (联单编号)
    receiver_name: Mapped[str] = mapped_column(String(200), default="")
    licence_number: Mapped[str] = mapped_column(String(60), default="")
    method_code: Mapped[str | None] = mapped_column(String(4))
    on_site_kg: Mapped[Decimal | None] = mapped_column(Kilograms())
    available_kg: Mapped[Decimal | None] = mapped_column(Kilograms())
    recorded_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    # An unusual quantity (plausibility.yaml ``unusual:``) the person confirmed (app/common/confirmations.py).
    confirmed_unusual: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Raised by each approved revision (app.ledger.services.revisions). NULL is version 1: rows
    # stored before revisions existed keep NULL, so their audited images still match.
    version: Mapped[int | None] = mapped_column(Integer, default=1)

    enterprise: Mapped[Organization] = relationship(lazy="joined")


class ManifestCounter(Model):
    """The last serial issued per (year, prefecture): incremented with UPDATE … RETURNING."""

    __tablename__ = "manifest_counters"
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefecture: Mapped[str] = mapped_column(String(4), primary_key=True)  # province 2 + prefecture 2, 3310
    last_serial: Mapped[int] = mapped_column(Integer, default=0)


class Manifest(Model):
    """A hazardous-waste transfer manifest (危险废物转移联单), one per vehicle trip."""

    __tablename__ = "manifests"
    __table_args__ = (
        Index("ix_manifests_status_receipt_due_at", "status", "receipt_due_at"),
        # The lists' order, newest first (list_manifests: created_at DESC, id DESC): without it a
        # page of the city's 10⁶ manifests sorted all of them (6 s); with it one reads 51 rows.
        Index("ix_manifests_created_at_id", "created_at", "id"),
        *checks(MANIFEST_CHECKS),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(14), unique=True)
    origin: Mapped[str] = mapped_column(String(10), default="electronic")
    status: Mapped[ManifestStatus] = mapped_column(
        state_type(ManifestStatus, "status", 12), default=ManifestStatus.DRAFT, index=True
    )
    consignor_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    carrier_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    receiver_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    receiver_licence: Mapped[str] = mapped_column(String(60), default="")
    route: Mapped[str] = mapped_column(String(300), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    vehicle_plate: Mapped[str] = mapped_column(String(12), default="")
    driver_name: Mapped[str] = mapped_column(String(60), default="")
    driver_phone: Mapped[str] = mapped_column(String(30), default="")
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    picked_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    # The receipt is late from this instant on (pickup + N working days, end of that day, Shanghai).
    receipt_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reject_reason: Mapped[str] = mapped_column(Text, default="")
    acceptance: Mapped[str | None] = mapped_column(String(10))  # full | partial | refused
    discrepant: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False, index=True)  # receipt came late
    late_entry: Mapped[bool] = mapped_column(Boolean, default=False)  # paper entered > N working days later
    entry_working_days: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int | None] = mapped_column(Integer, default=1)  # as LedgerRecord.version

    consignor: Mapped[Organization] = relationship(foreign_keys=[consignor_id], lazy="joined")
    carrier: Mapped[Organization] = relationship(foreign_keys=[carrier_id], lazy="joined")
    receiver: Mapped[Organization] = relationship(foreign_keys=[receiver_id], lazy="joined")
    lines: Mapped[list[ManifestLine]] = relationship(
        back_populates="manifest",
        order_by="ManifestLine.line_no",
        cascade="all, delete-orphan",
        lazy="selectin",
    )
    events: Mapped[list[ManifestEvent]] = relationship(
        order_by="ManifestEvent.id",
        cascade="all, delete-orphan",
        lazy="selectin",
    )
    # The parties' signatures of its steps (app.audit.signatures), oldest first.
    signatures: Mapped[list[ManifestSignature]] = relationship(
        "ManifestSignature",
        order_by="ManifestSignature.id",
        cascade="all, delete-orphan",
        lazy="selectin",
    )

    def is_overdue(self, now: datetime) -> bool:
        """Receipt came late, or the waste is still on the road past its deadline."""
        if self.overdue:
            return True
        return (
            self.status == ManifestStatus.IN_TRANSIT and self.receipt_due_at is not None and now >= self.receipt_due_at
        )


class ManifestLine(Model):
    __tablename__ = "manifest_lines"
    __table_args__ = (UniqueConstraint("manifest_id", "line_no"), *checks(MANIFEST_LINE_CHECKS))
    id: Mapped[int] = mapped_column(primary_key=True)
    manifest_id: Mapped[int] = mapped_column(ForeignKey("manifests.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(Integer)
    waste_code: Mapped[str] = mapped_column(String(10))
    waste_name: Mapped[str] = mapped_column(String(300))
    category: Mapped[str] = mapped_column(String(4))
    physical_form: Mapped[str] = mapped_column(String(12), default="solid")
    hazard: Mapped[str] = mapped_column(String(20))
    packaging: Mapped[str] = mapped_column(String(60), default="")
    quantity_kg: Mapped[Decimal] = mapped_column(Kilograms())
    # The batches named by the consignor when drafting; allocated quantities are in ``sources``.
    requested_batches: Mapped[list[str]] = mapped_column(JSON, default=list)
    received_kg: Mapped[Decimal | None] = mapped_column(Kilograms())
    accepted_kg: Mapped[Decimal | None] = mapped_column(Kilograms())
    refusal_reason: Mapped[str] = mapped_column(Text, default="")
    # An unusual quantity or receipt (plausibility.yaml ``unusual:``) the person confirmed.
    confirmed_unusual: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    method_code: Mapped[str | None] = mapped_column(String(4))
    # Accepted waste carbon already consumed by regeneration batches (never above accepted_kg).
    consumed_kg: Mapped[Decimal] = mapped_column(Kilograms(), default=ZERO_KG)

    manifest: Mapped[Manifest] = relationship(back_populates="lines")
    sources: Mapped[list[ManifestLineSource]] = relationship(
        order_by="ManifestLineSource.id",
        cascade="all, delete-orphan",
        lazy="selectin",
    )


class ManifestLineSource(Model):
    """How much of a line comes from which generation batch (allocated when submitted)."""

    __tablename__ = "manifest_line_sources"
    __table_args__ = checks(MANIFEST_LINE_SOURCE_CHECKS)
    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("manifest_lines.id", ondelete="CASCADE"), index=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("ledger_records.id"), index=True)
    quantity_kg: Mapped[Decimal] = mapped_column(Kilograms())
    returned_kg: Mapped[Decimal] = mapped_column(Kilograms(), default=ZERO_KG)

    record: Mapped[LedgerRecord] = relationship(lazy="joined")


class ManifestEvent(Model):
    """One step of a manifest: who (user and organisation) did what, when."""

    __tablename__ = "manifest_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    manifest_id: Mapped[int] = mapped_column(ForeignKey("manifests.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[ManifestStatus | None] = mapped_column(state_type(ManifestStatus, "from_status", 12))
    to_status: Mapped[ManifestStatus] = mapped_column(state_type(ManifestStatus, "to_status", 12))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(120), default="")
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    organization_name: Mapped[str] = mapped_column(String(200), default="")
    party: Mapped[str] = mapped_column(String(12), default="")  # consignor | carrier | receiver | operator
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


from app.ledger.revision_models import Revision, RevisionApproval  # noqa: E402,F401 (the revisions' tables)
