from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Float, ForeignKey, Index, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import Organization

# The states of boxes and fills are defined in app.boxes.states (pure Python, for the labels too).
from app.boxes.states import BOX_STATUSES, COLOUR_ZH, COLOURS, BoxStatus, Colour, FillKind  # noqa: F401
from app.common.columns import Kilograms, state_type
from app.common.timeutil import utcnow
from app.common.types import UTCDateTime
from app.extensions import Model

CARBON_TYPES = ("granular", "honeycomb", "fibre")


class Box(Model):
    """An activated-carbon adsorption box (活性炭吸附箱) at an enterprise's treatment facility."""

    __tablename__ = "boxes"
    # The sweep takes the due boxes in (next check, id) order, a chunk at a time: with the id in
    # the index a chunk is an index range, not a sort of every due box (all 100,000 at worst).
    # The boxes never evaluated since the stored evaluation came (few, if any): the sweep's last
    # chunk asks for them, which was a sequential scan of every box.
    __table_args__ = (
        Index("ix_boxes_colour_next_check_at_id", "colour_next_check_at", "id"),
        # The regulator's dashboard shows a jurisdiction's longest red boxes (colour, then since):
        # an index range read of 20 entries, not a sort of every red box (26,000 in a city). It
        # serves every "boxes of this colour" filter too, as the single-column index it replaced.
        Index("ix_boxes_colour_since_id", "colour", "colour_since", "id"),
        Index(
            "ix_boxes_unstored",
            "id",
            postgresql_where=text("colour_detail IS NULL"),
            sqlite_where=text("colour_detail IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    # The carbon service that replaces this box's carbon, if the enterprise contracts one.
    service_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    facility_code: Mapped[str] = mapped_column(String(20))  # 治理设施编号, e.g. TA001
    outlet_code: Mapped[str] = mapped_column(String(20))  # 排放口编号, e.g. DA001
    carbon_type: Mapped[str] = mapped_column(String(12))
    design_fill_kg: Mapped[Decimal] = mapped_column(Kilograms())  # M
    design_airflow_m3_h: Mapped[float] = mapped_column(Float)  # Q
    design_removed_mg_m3: Mapped[float] = mapped_column(Float)  # C
    hours_per_day: Mapped[float] = mapped_column(Float)  # t
    adsorption_capacity: Mapped[float] = mapped_column(Float, default=0.10)  # S, mass fraction
    emission_limit_mg_m3: Mapped[float] = mapped_column(Float)
    pressure_drop_min_pa: Mapped[float | None] = mapped_column(Float)
    pressure_drop_max_pa: Mapped[float | None] = mapped_column(Float)
    has_sensors: Mapped[bool] = mapped_column(Boolean, default=False)
    waste_code: Mapped[str] = mapped_column(String(10), default="900-039-49")
    status: Mapped[BoxStatus] = mapped_column(state_type(BoxStatus, "status", 16), default=BoxStatus.ACTIVE)
    label_version: Mapped[int] = mapped_column(Integer, default=1)
    # Bumped by every write that changes what the box shows (fills, status, readings, colour):
    # read caches compare it to know whether what they hold is still true.
    revision: Mapped[int] = mapped_column(Integer, default=1)
    # The colour as last evaluated; kept fresh by evaluation on read and by the sweep of
    # boxes whose next_check_at has passed (time alone can change a colour).
    colour: Mapped[Colour] = mapped_column(state_type(Colour, "colour", 8), default=Colour.GREY)
    colour_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    colour_evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    colour_next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    colour_reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The rest of the last evaluation, so that a read evaluates nothing (app.boxes.stored):
    # saturation and predicted date as columns (lists filter and sort on saturation), the figures
    # the box's page and JSON show in ``colour_detail``. NULL: not evaluated since the column came.
    # The predicted date has no index: nothing looks boxes up by it, and it moves at nearly
    # every evaluation (an index would be rewritten by every sweep and batch).
    saturation: Mapped[float | None] = mapped_column(Float)
    predicted_replacement_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    colour_detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    enterprise: Mapped[Organization] = relationship(foreign_keys=[enterprise_id], lazy="joined")
    service_org: Mapped[Organization | None] = relationship(foreign_keys=[service_org_id], lazy="joined")

    @property
    def design_daily_load_kg(self) -> float:
        """VOCs adsorbed per day at design conditions: C × 10⁻⁶ × Q × t (kg/d)."""
        return self.design_removed_mg_m3 * 1e-6 * self.design_airflow_m3_h * self.hours_per_day

    def capacity_kg(self, fill_kg: float | Decimal) -> float:
        """What the fill can adsorb before it counts as saturated: M × S (kg). An estimate
        (S is a measured fraction), compared with sensor integrals: a float."""
        return float(fill_kg) * self.adsorption_capacity


class Fill(Model):
    """Carbon filled into a box: the first fill, or a replacement that removes the spent carbon."""

    __tablename__ = "fills"
    __table_args__ = (
        Index("ix_fills_box_id_filled_at", "box_id", "filled_at"),
        CheckConstraint("mass_kg > 0", name="mass_positive"),
        CheckConstraint("removed_waste_kg IS NULL OR removed_waste_kg >= 0", name="removed_not_negative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    box_id: Mapped[int] = mapped_column(ForeignKey("boxes.id"))
    kind: Mapped[FillKind] = mapped_column(state_type(FillKind, "kind", 12))
    filled_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)  # city statistics by period
    mass_kg: Mapped[Decimal] = mapped_column(Kilograms())
    carbon_type: Mapped[str] = mapped_column(String(12))
    supplier_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    supplier_name: Mapped[str] = mapped_column(String(200), default="")
    batch_no: Mapped[str] = mapped_column(String(60), default="")
    iodine_mg_g: Mapped[float] = mapped_column(Float)
    regeneration_batch_id: Mapped[int | None] = mapped_column(ForeignKey("regeneration_batches.id"), index=True)
    removed_waste_kg: Mapped[Decimal | None] = mapped_column(Kilograms())
    # A replacement: was the carbon it replaced already spent (a SPENT_CARBON_RULES rule held at
    # ``filled_at``)? Kept here because the colour history records colour changes only, and a box
    # already red for another reason shows none when its carbon runs out. None: an initial fill.
    replaced_overdue: Mapped[bool | None] = mapped_column(Boolean)
    # An unusual value (plausibility.yaml ``unusual:``) the person confirmed (app/common/confirmations.py).
    confirmed_unusual: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    performed_by_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    recorded_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    box: Mapped[Box] = relationship()

    if TYPE_CHECKING:
        # Not a column: the ledger's fill hook sets it on a replacement, for the fill's API response
        # (app/boxes/schemas.py reads it with a default). Declared for the checker only, where the
        # mapper does not see it.
        ledger_batch_code: str


class ColourChange(Model):
    __tablename__ = "colour_changes"
    __table_args__ = (Index("ix_colour_changes_box_id_changed_at", "box_id", "changed_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    box_id: Mapped[int] = mapped_column(ForeignKey("boxes.id"))
    colour: Mapped[Colour] = mapped_column(state_type(Colour, "colour", 8))
    previous_colour: Mapped[Colour | None] = mapped_column(state_type(Colour, "previous_colour", 8))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)  # city statistics by period
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    rules_version: Mapped[str] = mapped_column(String(40), default="")
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class BoxEvent(Model):
    """Things that happened to a box other than fills and colour changes: registration,
    status changes, label reprints, scans of forged or superseded labels."""

    __tablename__ = "box_events"
    __table_args__ = (Index("ix_box_events_box_id_at", "box_id", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    box_id: Mapped[int | None] = mapped_column(ForeignKey("boxes.id"))
    kind: Mapped[str] = mapped_column(String(30))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(120), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
