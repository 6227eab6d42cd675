"""Regeneration batches (再生批次): received waste carbon in, regenerated carbon out."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import Organization
from app.common.columns import ZERO_KG, Kilograms
from app.common.timeutil import utcnow
from app.common.types import UTCDateTime
from app.extensions import Model
from app.ledger.models import ManifestLine


class RegenerationBatch(Model):
    __tablename__ = "regeneration_batches"
    __table_args__ = (
        UniqueConstraint("plant_id", "batch_no"),
        CheckConstraint("input_kg > 0 AND output_kg > 0 AND output_kg <= input_kg", name="masses"),
        CheckConstraint("used_kg >= 0 AND used_kg <= output_kg", name="used_within_output"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    plant_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    batch_no: Mapped[str] = mapped_column(String(60))
    produced_on: Mapped[date] = mapped_column(Date)
    method_code: Mapped[str] = mapped_column(String(4))
    input_kg: Mapped[Decimal] = mapped_column(Kilograms())
    output_kg: Mapped[Decimal] = mapped_column(Kilograms())
    iodine_mg_g: Mapped[float] = mapped_column(Float)
    # Regenerated carbon already filled into boxes (never above output_kg).
    used_kg: Mapped[Decimal] = mapped_column(Kilograms(), default=ZERO_KG)
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    plant: Mapped[Organization] = relationship(lazy="joined")
    inputs: Mapped[list[RegenerationInput]] = relationship(
        order_by="RegenerationInput.id",
        cascade="all, delete-orphan",
        lazy="selectin",
    )

    @property
    def remaining_kg(self) -> Decimal:
        return self.output_kg - self.used_kg

    @property
    def yield_ratio(self) -> float | None:
        return round(float(self.output_kg / self.input_kg), 4) if self.input_kg else None


class RegenerationInput(Model):
    """Waste carbon of one received manifest line consumed by a batch."""

    __tablename__ = "regeneration_inputs"
    __table_args__ = (CheckConstraint("quantity_kg > 0", name="quantity_positive"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("regeneration_batches.id", ondelete="CASCADE"), index=True)
    manifest_line_id: Mapped[int] = mapped_column(ForeignKey("manifest_lines.id"), index=True)
    quantity_kg: Mapped[Decimal] = mapped_column(Kilograms())

    line: Mapped[ManifestLine] = relationship(lazy="joined")
