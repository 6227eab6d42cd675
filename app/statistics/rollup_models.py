"""Roll-ups the statistics read instead of the raw records (issue 12), kept with the events.

Written in the transaction of the events they sum (``app/statistics/rollup_tracking.py`` collects
what a flush touched, ``app/statistics/services/rollups.py`` rewrites the affected rows just before
the commit), rebuilt and checked against the raw records by ``flask --app wsgi statistics rebuild``
and ``statistics verify``. Derived data: never edited by hand, not audited (the raw rows are).

**Colour spans, not daily colour seconds.** A span is one ``ColourChange`` with the moment the
box's next change ended it (NULL: still open). Both box figures of a period are range reads of
it: the colour of every box at an instant is the one span per box with ``started_at < at <=
ended_at`` (or open), red box-days the clipped length of the red spans overlapping the period.
Daily colour seconds would need a row per box, colour and day (36 million rows a year at 100,000
boxes, and a write per box every day even when nothing changed), still could not say the colour at
an instant, and would be rewritten day by day when a late event rewrites history; a span is
written only when the colour changes, and a rewrite of history from a moment touches that box's
spans from that moment only.

**Enterprise months.** Per enterprise and Asia/Shanghai month (``YYYY-MM``; every statistics
period is a whole number of months): the ledger's stages, the manifests' shipped / received /
accepted kg per waste code (by the month of pickup / receipt) and processed kg per method code
(by the month of processing), the fills of the enterprise's boxes, and its manifests received
(by the month of pickup).

**Enterprise days**, for the mass-balance anomalies only: their period is a rolling year (or any
dates), whose first and last months are partial; the whole days of those months are summed from
``rollup_fill_days`` and ``rollup_consignment_days`` (rewritten with their month), and only the
hours around the period's two ends from the raw rows.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.boxes.models import Colour
from app.common.columns import ZERO_KG, Kilograms, state_type
from app.common.types import UTCDateTime
from app.extensions import Model


class ColourSpan(Model):
    __tablename__ = "rollup_colour_spans"
    __table_args__ = (
        Index("ix_rollup_colour_spans_box_started", "box_id", "started_at"),
        Index("ix_rollup_colour_spans_colour_started", "colour", "started_at"),
        Index("ix_rollup_colour_spans_ended", "ended_at"),
    )
    # The change's id, no foreign key: history rewrites delete changes and the spans follow at
    # the commit, in whichever order.
    colour_change_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    box_id: Mapped[int] = mapped_column(Integer)
    colour: Mapped[Colour] = mapped_column(state_type(Colour, "colour", 8))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # ended_at − started_at (NULL while open): a period's red seconds sum this for the spans inside
    # it and clip only the few that cross its bounds (no per-row date arithmetic in SQL).
    seconds: Mapped[float | None] = mapped_column(Float)


def _kg() -> Mapped[Decimal]:
    return mapped_column(Kilograms(), default=ZERO_KG)


class WasteMonth(Model):
    """An enterprise's ledger and manifest kg of one waste code in one month."""

    __tablename__ = "rollup_waste_months"
    __table_args__ = (Index("ix_rollup_waste_months_month", "month"),)
    enterprise_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    waste_code: Mapped[str] = mapped_column(String(10), primary_key=True)
    # records of any stage, manifest lines picked up, received: the code is listed when any is > 0
    ledger_count: Mapped[int] = mapped_column(Integer, default=0)
    shipped_count: Mapped[int] = mapped_column(Integer, default=0)
    received_count: Mapped[int] = mapped_column(Integer, default=0)
    generated_kg: Mapped[Decimal] = _kg()
    into_storage_kg: Mapped[Decimal] = _kg()
    returned_kg: Mapped[Decimal] = _kg()
    out_of_storage_kg: Mapped[Decimal] = _kg()
    shipped_kg: Mapped[Decimal] = _kg()  # lines of manifests picked up in the month
    # of those, the manifests received (or further): what the mass balance compares
    delivered_shipped_kg: Mapped[Decimal] = _kg()
    delivered_received_kg: Mapped[Decimal] = _kg()
    received_kg: Mapped[Decimal] = _kg()  # lines of manifests received in the month
    accepted_kg: Mapped[Decimal] = _kg()


class TreatmentMonth(Model):
    """An enterprise's accepted kg processed with one method code in one month, per waste code."""

    __tablename__ = "rollup_treatment_months"
    __table_args__ = (Index("ix_rollup_treatment_months_month", "month"),)
    enterprise_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    method_code: Mapped[str] = mapped_column(String(4), primary_key=True)
    waste_code: Mapped[str] = mapped_column(String(10), primary_key=True)
    accepted_kg: Mapped[Decimal] = _kg()
    consumed_kg: Mapped[Decimal] = _kg()  # consumed by regeneration batches (so far)


class FillMonth(Model):
    """The fills of an enterprise's boxes in one month."""

    __tablename__ = "rollup_fill_months"
    __table_args__ = (Index("ix_rollup_fill_months_month", "month"),)
    enterprise_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    fills_count: Mapped[int] = mapped_column(Integer, default=0)
    fills_kg: Mapped[Decimal] = _kg()
    regenerated_count: Mapped[int] = mapped_column(Integer, default=0)
    regenerated_kg: Mapped[Decimal] = _kg()
    replacement_count: Mapped[int] = mapped_column(Integer, default=0)
    late_count: Mapped[int] = mapped_column(Integer, default=0)
    replaced_kg: Mapped[Decimal] = _kg()  # the previous fill's mass, for replacements
    weighed_kg: Mapped[Decimal] = _kg()  # removed waste carbon weighed at replacements
    # of those, the replacements that had a previous fill (the carbon-missing anomaly's figures)
    replaced_count: Mapped[int] = mapped_column(Integer, default=0)
    replaced_weighed_kg: Mapped[Decimal] = _kg()


class ConsignmentMonth(Model):
    """An enterprise's manifests (with lines) picked up in one month and received or further: what
    the received-short anomaly compares, counted per manifest (WasteMonth counts lines per code)."""

    __tablename__ = "rollup_consignment_months"
    __table_args__ = (Index("ix_rollup_consignment_months_month", "month"),)
    enterprise_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    delivered_count: Mapped[int] = mapped_column(Integer, default=0)
    delivered_shipped_kg: Mapped[Decimal] = _kg()
    delivered_received_kg: Mapped[Decimal] = _kg()


class FillDay(Model):
    """The replacements of a known fill at an enterprise's boxes in one Asia/Shanghai day
    (``YYYY-MM-DD``): the carbon-missing anomaly's figures for the whole days of its period's
    partial months (a rolling year starts and ends inside a month), so that only the hours before
    the first and after the last midnight are read from the raw fills. Rows for days with any."""

    __tablename__ = "rollup_fill_days"
    __table_args__ = (Index("ix_rollup_fill_days_day", "day"),)
    enterprise_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    replaced_count: Mapped[int] = mapped_column(Integer, default=0)
    replaced_weighed_kg: Mapped[Decimal] = _kg()  # the waste carbon weighed at them
    replaced_kg: Mapped[Decimal] = _kg()  # their previous fills' mass (the carbon they removed)


class ConsignmentDay(Model):
    """:class:`ConsignmentMonth` per Asia/Shanghai day of pickup: the received-short anomaly's
    figures for the whole days of its period's partial months. Rows for days with any."""

    __tablename__ = "rollup_consignment_days"
    __table_args__ = (Index("ix_rollup_consignment_days_day", "day"),)
    enterprise_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    delivered_count: Mapped[int] = mapped_column(Integer, default=0)
    delivered_shipped_kg: Mapped[Decimal] = _kg()
    delivered_received_kg: Mapped[Decimal] = _kg()


ROLLUP_TABLES = (
    "rollup_colour_spans",
    "rollup_waste_months",
    "rollup_treatment_months",
    "rollup_fill_months",
    "rollup_consignment_months",
    "rollup_fill_days",
    "rollup_consignment_days",
)
