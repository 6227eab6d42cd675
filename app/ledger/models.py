"""The hazardous-waste ledger (台账, HJ 1259-2022) and transfer manifests (转移联单).

Quantities are kg as Float (like the boxes' fills), rounded to grams on every write so that
sums compare exactly; reports convert to tonnes.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import Organization
from app.common.timeutil import utcnow
from app.common.types import UTCDateTime
from app.extensions import db

# HJ 1259-2022 stages, plus ``returned``: waste refused by the receiver that came back into storage.
STAGES = ("generation", "storage", "out_of_storage", "sent_out", "returned")
STAGE_ZH = {"generation": "产生", "storage": "入库", "out_of_storage": "出库", "sent_out": "委外利用/处置",
            "returned": "退回入库"}
STAGE_PREFIX = {"generation": "CS", "storage": "RK", "out_of_storage": "CK", "sent_out": "WW", "returned": "TH"}

MANIFEST_STATES = ("draft", "submitted", "in_transit", "received", "processed", "closed", "rejected", "cancelled")
STATE_ZH = {"draft": "草稿", "submitted": "已提交", "in_transit": "运输中", "received": "已接收", "processed": "已利用/处置",
            "closed": "已办结", "rejected": "已拒收", "cancelled": "已作废"}
ORIGINS = ("electronic", "paper", "national")
PHYSICAL_FORMS = {"solid": "固态", "semi_solid": "半固态", "liquid": "液态", "gas": "气态", "other": "其他"}


class WasteStock(db.Model):
    """Stock on hand per (enterprise, waste code): the row that is locked while stock moves.

    on_hand = generated − picked up + returned; reserved = on submitted manifests not yet picked
    up. available = on_hand − reserved is what a new manifest may draw.
    """

    __tablename__ = "waste_stock"
    __table_args__ = (UniqueConstraint("enterprise_id", "waste_code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    waste_code: Mapped[str] = mapped_column(String(10))
    on_hand_kg: Mapped[float] = mapped_column(Float, default=0.0)
    reserved_kg: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def available_kg(self) -> float:
        return round(self.on_hand_kg - self.reserved_kg, 3)


class LedgerRecord(db.Model):
    """One ledger record (one container/batch at one stage), HJ 1259-2022.

    Generation records carry the batch's running balances: ``on_site_kg`` (physically on site:
    not yet picked up) and ``available_kg`` (not yet on a submitted manifest). The later stages
    reference the generation batch through ``source_batch_code``.
    """

    __tablename__ = "ledger_records"
    __table_args__ = (
        Index("ix_ledger_records_enterprise_id_occurred_at", "enterprise_id", "occurred_at"),
        Index("ix_ledger_records_box_id_stage", "box_id", "stage"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_code: Mapped[str] = mapped_column(String(40), unique=True)
    stage: Mapped[str] = mapped_column(String(16))
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    waste_code: Mapped[str] = mapped_column(String(10))
    waste_name: Mapped[str] = mapped_column(String(300))
    category: Mapped[str] = mapped_column(String(4))
    catalogue_edition: Mapped[str] = mapped_column(String(8))
    quantity_kg: Mapped[float] = mapped_column(Float)
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
    on_site_kg: Mapped[float | None] = mapped_column(Float)
    available_kg: Mapped[float | None] = mapped_column(Float)
    recorded_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    enterprise: Mapped[Organization] = relationship(lazy="joined")


class ManifestCounter(db.Model):
    """The last serial issued per (year, prefecture): incremented with UPDATE … RETURNING."""

    __tablename__ = "manifest_counters"
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefecture: Mapped[str] = mapped_column(String(4), primary_key=True)  # province 2 + prefecture 2, 3310
    last_serial: Mapped[int] = mapped_column(Integer, default=0)


class Manifest(db.Model):
    """A hazardous-waste transfer manifest (危险废物转移联单), one per vehicle trip."""

    __tablename__ = "manifests"
    __table_args__ = (Index("ix_manifests_status_receipt_due_at", "status", "receipt_due_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(14), unique=True)
    origin: Mapped[str] = mapped_column(String(10), default="electronic")
    status: Mapped[str] = mapped_column(String(12), default="draft", index=True)
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

    consignor: Mapped[Organization] = relationship(foreign_keys=[consignor_id], lazy="joined")
    carrier: Mapped[Organization] = relationship(foreign_keys=[carrier_id], lazy="joined")
    receiver: Mapped[Organization] = relationship(foreign_keys=[receiver_id], lazy="joined")
    lines: Mapped[list["ManifestLine"]] = relationship(
        back_populates="manifest", order_by="ManifestLine.line_no", cascade="all, delete-orphan", lazy="selectin",
    )
    events: Mapped[list["ManifestEvent"]] = relationship(
        order_by="ManifestEvent.id", cascade="all, delete-orphan", lazy="selectin",
    )

    def is_overdue(self, now: datetime) -> bool:
        """Receipt came late, or the waste is still on the road past its deadline."""
        if self.overdue:
            return True
        return self.status == "in_transit" and self.receipt_due_at is not None and now >= self.receipt_due_at


class ManifestLine(db.Model):
    __tablename__ = "manifest_lines"
    __table_args__ = (UniqueConstraint("manifest_id", "line_no"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    manifest_id: Mapped[int] = mapped_column(ForeignKey("manifests.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(Integer)
    waste_code: Mapped[str] = mapped_column(String(10))
    waste_name: Mapped[str] = mapped_column(String(300))
    category: Mapped[str] = mapped_column(String(4))
    physical_form: Mapped[str] = mapped_column(String(12), default="solid")
    hazard: Mapped[str] = mapped_column(String(20))
    packaging: Mapped[str] = mapped_column(String(60), default="")
    quantity_kg: Mapped[float] = mapped_column(Float)
    # The batches named by the consignor when drafting; allocated quantities are in ``sources``.
    requested_batches: Mapped[list[str]] = mapped_column(JSON, default=list)
    received_kg: Mapped[float | None] = mapped_column(Float)
    accepted_kg: Mapped[float | None] = mapped_column(Float)
    refusal_reason: Mapped[str] = mapped_column(Text, default="")
    method_code: Mapped[str | None] = mapped_column(String(4))
    # Accepted waste carbon already consumed by regeneration batches (never above accepted_kg).
    consumed_kg: Mapped[float] = mapped_column(Float, default=0.0)

    manifest: Mapped[Manifest] = relationship(back_populates="lines")
    sources: Mapped[list["ManifestLineSource"]] = relationship(
        order_by="ManifestLineSource.id", cascade="all, delete-orphan", lazy="selectin",
    )


class ManifestLineSource(db.Model):
    """How much of a line comes from which generation batch (allocated when submitted)."""

    __tablename__ = "manifest_line_sources"
    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("manifest_lines.id", ondelete="CASCADE"), index=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("ledger_records.id"), index=True)
    quantity_kg: Mapped[float] = mapped_column(Float)
    returned_kg: Mapped[float] = mapped_column(Float, default=0.0)

    record: Mapped[LedgerRecord] = relationship(lazy="joined")


class ManifestEvent(db.Model):
    """One step of a manifest: who (user and organisation) did what, when."""

    __tablename__ = "manifest_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    manifest_id: Mapped[int] = mapped_column(ForeignKey("manifests.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str] = mapped_column(String(12))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(120), default="")
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    organization_name: Mapped[str] = mapped_column(String(200), default="")
    party: Mapped[str] = mapped_column(String(12), default="")  # consignor | carrier | receiver | operator
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
