"""Industrial value added (工业增加值), imported from the statistics departments.

The system does not produce value added; it is needed for the generation intensity
(t of hazardous waste per 10⁴ yuan of industrial value added, domain-reference.md §6).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.common.timeutil import utcnow
from app.common.types import UTCDateTime
from app.extensions import Model

VALUE_ADDED_SCOPES = ("park", "county", "city")


class ValueAdded(Model):
    """One imported figure: the industrial value added of a park, county or the city in a period.

    ``scope_key`` ("park:3", "county:331023", "city") makes (scope, period) unique on both
    databases (a unique constraint over nullable park_id/county_code would not, NULLs being
    distinct); a new import of the same scope and period replaces the figure (upsert).
    """

    __tablename__ = "value_added"
    __table_args__ = (UniqueConstraint("scope_key", "period"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(8))  # park | county | city
    scope_key: Mapped[str] = mapped_column(String(24), index=True)
    park_id: Mapped[int | None] = mapped_column(ForeignKey("parks.id"), index=True)
    county_code: Mapped[str | None] = mapped_column(ForeignKey("counties.code"), index=True)
    period: Mapped[str] = mapped_column(String(7))  # 2025 | 2025-Q3 | 2025-07
    # Float on purpose: money in 10⁴ yuan as published by the statistics departments, only ever a
    # divisor of the generation intensity (a ratio), never summed against masses.
    value_added_10k_yuan: Mapped[float] = mapped_column(Float)
    source_department: Mapped[str] = mapped_column(String(200))
    imported_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


from app.statistics.rollup_models import (  # noqa: E402,F401  (the metadata)
    ColourSpan,
    FillMonth,
    TreatmentMonth,
    WasteMonth,
)
