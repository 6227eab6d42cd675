"""Imported indicator values of the county synergy index, and the values they replaced."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.common.timeutil import utcnow
from app.common.types import UTCDateTime
from app.extensions import Model


class IndicatorValue(Model):
    """One third-level indicator's value for a county and a period (``2025`` or ``2025-Q2``).

    A re-import of the same (county, period, indicator) updates this row; the replaced value is
    kept in :class:`IndicatorValueRevision`, so a score can always be traced to who supplied what.
    """

    __tablename__ = "index_indicator_values"
    __table_args__ = (UniqueConstraint("county_code", "period", "indicator", name="uq_index_value_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    county_code: Mapped[str] = mapped_column(ForeignKey("counties.code"), index=True)
    period: Mapped[str] = mapped_column(String(7), index=True)
    indicator: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(30))
    source_department: Mapped[str] = mapped_column(String(120))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    imported_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)


class IndicatorValueRevision(Model):
    """A value that a later import replaced (the audit of re-imports)."""

    __tablename__ = "index_indicator_value_revisions"
    id: Mapped[int] = mapped_column(primary_key=True)
    value_id: Mapped[int] = mapped_column(ForeignKey("index_indicator_values.id", ondelete="CASCADE"), index=True)
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(30))
    source_department: Mapped[str] = mapped_column(String(120))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())
    imported_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    replaced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    replaced_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
