"""The roll-ups recomputed from the raw records: per enterprise month, and colour spans per box.

The one definition of what a roll-up row holds: the incremental writes, ``statistics rebuild``
and ``statistics verify`` all call these, so "equal to a recomputation" means equal to this.
Only named columns are selected (never whole rows), so the backfill migration reads the raw tables
as they are at its revision.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, case, cast, func, or_, select
from sqlalchemy.orm import Session, aliased

from app.boxes.models import Box, Colour, ColourChange, Fill, FillKind
from app.common.periods import Period
from app.common.timeutil import local_date
from app.ledger.models import RECEIVED_STATES, LedgerRecord, Manifest, ManifestLine, Stage
from app.ledger.services import kg
from app.statistics.services.definitions import LATE_REPLACEMENT_RULES
from app.statistics.services.sql import count_if, sum_or_zero, within

LEDGER_FIELDS = ("ledger_count", "generated_kg", "into_storage_kg", "returned_kg", "out_of_storage_kg")
SHIPPED_FIELDS = ("shipped_count", "shipped_kg", "delivered_shipped_kg", "delivered_received_kg")
RECEIVED_FIELDS = ("received_count", "received_kg", "accepted_kg")
WASTE_FIELDS = LEDGER_FIELDS + SHIPPED_FIELDS + RECEIVED_FIELDS
WASTE_COUNTS = ("ledger_count", "shipped_count", "received_count")
TREATMENT_FIELDS = ("accepted_kg", "consumed_kg")
FILL_COUNTS = ("fills_count", "regenerated_count", "replacement_count", "late_count", "replaced_count")
FILL_KGS = ("fills_kg", "regenerated_kg", "replaced_kg", "weighed_kg", "replaced_weighed_kg")
CONSIGNMENT_FIELDS = ("delivered_count", "delivered_shipped_kg", "delivered_received_kg")

Rows = dict[tuple, dict[str, Any]]


def _only(column, enterprise_ids: Collection[int] | None):
    return True if enterprise_ids is None else column.in_(sorted(enterprise_ids))


def _add(rows: Rows, key: tuple, fields: Iterable[str], values: Iterable[Any]) -> None:
    row = rows.setdefault(key, {})
    for name, value in zip(fields, values, strict=True):
        row[name] = value


def _complete(rows: Rows, fields: tuple[str, ...], counts: tuple[str, ...] = ()) -> Rows:
    """Every field of every row, masses exact (a row is there because raw records were)."""
    return {
        key: {f: (int(row.get(f) or 0) if f in counts else kg(row.get(f) or 0)) for f in fields}
        for key, row in rows.items()
    }


def waste_rows(session: Session, month: Period, enterprise_ids: Collection[int] | None = None) -> Rows:
    """(enterprise_id, waste_code) → the WasteMonth figures of ``month``."""
    rows: Rows = {}
    stage, qty = LedgerRecord.stage, LedgerRecord.quantity_kg

    def staged(s: Stage):
        return sum_or_zero(case((stage == s, qty), else_=0))

    for ent, code, *values in session.execute(
        select(
            LedgerRecord.enterprise_id,
            LedgerRecord.waste_code,
            func.count(),
            staged(Stage.GENERATION),
            staged(Stage.STORAGE),
            staged(Stage.RETURNED),
            staged(Stage.OUT_OF_STORAGE),
        )
        .where(within(LedgerRecord.occurred_at, month), _only(LedgerRecord.enterprise_id, enterprise_ids))
        .group_by(LedgerRecord.enterprise_id, LedgerRecord.waste_code)
    ):
        _add(rows, (ent, code), LEDGER_FIELDS, values)
    base = (
        select()
        .select_from(ManifestLine)
        .join(Manifest, Manifest.id == ManifestLine.manifest_id)
        .where(_only(Manifest.consignor_id, enterprise_ids))
        .group_by(Manifest.consignor_id, ManifestLine.waste_code)
    )
    delivered = Manifest.status.in_(RECEIVED_STATES)
    for ent, code, *values in session.execute(
        base.add_columns(
            Manifest.consignor_id,
            ManifestLine.waste_code,
            func.count(),
            sum_or_zero(ManifestLine.quantity_kg),
            sum_or_zero(case((delivered, ManifestLine.quantity_kg), else_=0)),
            sum_or_zero(case((delivered, ManifestLine.received_kg), else_=0)),
        ).where(within(Manifest.picked_up_at, month))
    ):
        _add(rows, (ent, code), SHIPPED_FIELDS, values)
    for ent, code, *values in session.execute(
        base.add_columns(
            Manifest.consignor_id,
            ManifestLine.waste_code,
            func.count(),
            sum_or_zero(ManifestLine.received_kg),
            sum_or_zero(ManifestLine.accepted_kg),
        ).where(within(Manifest.received_at, month))
    ):
        _add(rows, (ent, code), RECEIVED_FIELDS, values)
    return _complete(rows, WASTE_FIELDS, WASTE_COUNTS)


def treatment_rows(session: Session, month: Period, enterprise_ids: Collection[int] | None = None) -> Rows:
    """(enterprise_id, method_code, waste_code) → accepted and consumed kg processed in ``month``."""
    rows: Rows = {}
    for ent, method, code, *values in session.execute(
        select(
            Manifest.consignor_id,
            ManifestLine.method_code,
            ManifestLine.waste_code,
            sum_or_zero(ManifestLine.accepted_kg),
            sum_or_zero(ManifestLine.consumed_kg),
        )
        .join(Manifest, Manifest.id == ManifestLine.manifest_id)
        .where(
            within(Manifest.processed_at, month),
            ManifestLine.method_code.is_not(None),
            _only(Manifest.consignor_id, enterprise_ids),
        )
        .group_by(Manifest.consignor_id, ManifestLine.method_code, ManifestLine.waste_code)
    ):
        _add(rows, (ent, method, code), TREATMENT_FIELDS, values)
    return _complete(rows, TREATMENT_FIELDS)


def fill_rows(session: Session, month: Period, enterprise_ids: Collection[int] | None = None) -> Rows:
    """(enterprise_id,) → the FillMonth figures of ``month``.

    Each fill's previous fill (its time and mass) comes through the (box_id, filled_at) index; a
    replacement is late when it says so (``replaced_overdue``) or, recorded before that was kept,
    when the box turned red for spent carbon between the two fills.
    """
    earlier = aliased(Fill)

    def previous(column):
        return (
            select(column)
            .where(
                earlier.box_id == Fill.box_id,
                or_(
                    earlier.filled_at < Fill.filled_at,
                    and_(earlier.filled_at == Fill.filled_at, earlier.id < Fill.id),
                ),
            )
            .order_by(earlier.filled_at.desc(), earlier.id.desc())
            .limit(1)
            .scalar_subquery()
        )

    sub = (
        select(
            Box.enterprise_id,
            Fill.box_id,
            Fill.kind,
            Fill.filled_at,
            Fill.mass_kg,
            Fill.regeneration_batch_id,
            Fill.removed_waste_kg,
            Fill.replaced_overdue,
            previous(earlier.mass_kg).label("previous_kg"),
            previous(earlier.filled_at).label("previous_at"),
        )
        .join(Box, Box.id == Fill.box_id)
        .where(within(Fill.filled_at, month), _only(Box.enterprise_id, enterprise_ids))
    ).subquery()
    reasons = cast(ColourChange.reasons, String)
    turned_red = (
        select(ColourChange.id)
        .where(
            ColourChange.box_id == sub.c.box_id,
            ColourChange.colour == Colour.RED,
            ColourChange.changed_at > sub.c.previous_at,
            ColourChange.changed_at < sub.c.filled_at,
            or_(*[reasons.like(f"%{code}%") for code in LATE_REPLACEMENT_RULES]),
        )
        .exists()
    )
    is_late = or_(sub.c.replaced_overdue.is_(True), and_(sub.c.replaced_overdue.is_(None), turned_red))
    regenerated = sub.c.regeneration_batch_id.is_not(None)
    replacement = sub.c.kind == FillKind.REPLACEMENT
    replaced = and_(replacement, sub.c.previous_kg.is_not(None))  # a replacement of a known fill
    rows: Rows = {}
    for ent, *values in session.execute(
        select(
            sub.c.enterprise_id,
            func.count(),
            count_if(regenerated),
            count_if(replacement),
            count_if(and_(replacement, is_late)),
            count_if(replaced),
            sum_or_zero(sub.c.mass_kg),
            sum_or_zero(case((regenerated, sub.c.mass_kg), else_=0)),
            sum_or_zero(case((replacement, sub.c.previous_kg), else_=0)),
            sum_or_zero(case((replacement, sub.c.removed_waste_kg), else_=0)),
            sum_or_zero(case((replaced, sub.c.removed_waste_kg), else_=0)),
        ).group_by(sub.c.enterprise_id)
    ):
        _add(rows, (ent,), FILL_COUNTS + FILL_KGS, values)
    return _complete(rows, FILL_COUNTS + FILL_KGS, FILL_COUNTS)


def consignment_rows(session: Session, month: Period, enterprise_ids: Collection[int] | None = None) -> Rows:
    """(enterprise_id,) → the manifests with lines picked up in ``month`` and received (or further)."""
    rows: Rows = {}
    for ent, *values in session.execute(
        select(
            Manifest.consignor_id,
            func.count(func.distinct(Manifest.id)),
            sum_or_zero(ManifestLine.quantity_kg),
            sum_or_zero(ManifestLine.received_kg),
        )
        .join(ManifestLine, ManifestLine.manifest_id == Manifest.id)
        .where(
            within(Manifest.picked_up_at, month),
            Manifest.status.in_(RECEIVED_STATES),
            _only(Manifest.consignor_id, enterprise_ids),
        )
        .group_by(Manifest.consignor_id)
    ):
        _add(rows, (ent,), CONSIGNMENT_FIELDS, values)
    return _complete(rows, CONSIGNMENT_FIELDS, ("delivered_count",))


FILL_DAY_FIELDS = ("replaced_count", "replaced_weighed_kg", "replaced_kg")


def cast_datetime(value: Any) -> datetime:
    """A timestamp column's value as read (typed ``object`` through a subquery's row)."""
    assert isinstance(value, datetime)
    return value


def previous_fill_mass():
    """The mass of the fill just before ``Fill``'s at its box, in (filled_at, id) order (the month
    roll-up's and the anomalies' tie-break), through the (box_id, filled_at) index."""
    earlier = aliased(Fill)
    return (
        select(earlier.mass_kg)
        .where(
            earlier.box_id == Fill.box_id,
            or_(earlier.filled_at < Fill.filled_at, and_(earlier.filled_at == Fill.filled_at, earlier.id < Fill.id)),
        )
        .order_by(earlier.filled_at.desc(), earlier.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def fill_day_rows(session: Session, month: Period, enterprise_ids: Collection[int] | None = None) -> Rows:
    """(enterprise_id, "YYYY-MM-DD") → the replacements of a known fill on that Shanghai day of
    ``month``: their count, the waste carbon weighed at them and their previous fills' mass (each
    replacement read once and added up per day here: no database date functions)."""
    sub = (
        select(Box.enterprise_id, Fill.filled_at, Fill.removed_waste_kg, previous_fill_mass().label("previous_kg"))
        .join(Box, Box.id == Fill.box_id)
        .where(
            within(Fill.filled_at, month),
            Fill.kind == FillKind.REPLACEMENT,
            _only(Box.enterprise_id, enterprise_ids),
        )
    ).subquery()
    rows: Rows = {}
    for ent, at, weighed, previous in session.execute(select(sub).where(sub.c.previous_kg.is_not(None))):
        row = rows.setdefault((ent, local_date(cast_datetime(at)).isoformat()), {f: 0 for f in FILL_DAY_FIELDS})
        row["replaced_count"] += 1
        row["replaced_weighed_kg"] += kg(weighed or 0)
        row["replaced_kg"] += kg(previous)
    return _complete(rows, FILL_DAY_FIELDS, ("replaced_count",))


def consignment_day_rows(session: Session, month: Period, enterprise_ids: Collection[int] | None = None) -> Rows:
    """(enterprise_id, "YYYY-MM-DD") → :func:`consignment_rows` per Shanghai day of pickup."""
    rows: Rows = {}
    for ent, at, shipped, received in session.execute(
        select(
            Manifest.consignor_id,
            Manifest.picked_up_at,
            sum_or_zero(ManifestLine.quantity_kg),
            sum_or_zero(ManifestLine.received_kg),
        )
        .join(ManifestLine, ManifestLine.manifest_id == Manifest.id)
        .where(
            within(Manifest.picked_up_at, month),
            Manifest.status.in_(RECEIVED_STATES),
            _only(Manifest.consignor_id, enterprise_ids),
        )
        .group_by(Manifest.consignor_id, Manifest.id, Manifest.picked_up_at)
    ):
        row = rows.setdefault((ent, local_date(cast_datetime(at)).isoformat()), {f: 0 for f in CONSIGNMENT_FIELDS})
        row["delivered_count"] += 1
        row["delivered_shipped_kg"] += kg(shipped)
        row["delivered_received_kg"] += kg(received)
    return _complete(rows, CONSIGNMENT_FIELDS, ("delivered_count",))


def day_rows(session: Session, month: Period, enterprise_ids: Collection[int] | None = None) -> dict[str, Rows]:
    """Every enterprise-day roll-up of the days of ``month`` by table name."""
    return {
        "rollup_fill_days": fill_day_rows(session, month, enterprise_ids),
        "rollup_consignment_days": consignment_day_rows(session, month, enterprise_ids),
    }


def month_rows(session: Session, month: Period, enterprise_ids: Collection[int] | None = None) -> dict[str, Rows]:
    """Every enterprise-month roll-up of ``month`` by table name."""
    return {
        "rollup_waste_months": waste_rows(session, month, enterprise_ids),
        "rollup_treatment_months": treatment_rows(session, month, enterprise_ids),
        "rollup_fill_months": fill_rows(session, month, enterprise_ids),
        "rollup_consignment_months": consignment_rows(session, month, enterprise_ids),
    }


def span_rows(
    session: Session, box_ids: Collection[int] | None = None, since: datetime | None = None
) -> dict[int, dict[str, Any]]:
    """colour_change_id → the span of that change: its box, colour, start and the next change's start.

    With ``since``: only the changes at or after it (their ends are still exact: a change's end is
    a later change). Ties in time are ordered by id, as the colour history reads them.
    """
    query = select(ColourChange.id, ColourChange.box_id, ColourChange.colour, ColourChange.changed_at)
    if box_ids is not None:
        query = query.where(ColourChange.box_id.in_(sorted(box_ids)))
    if since is not None:
        query = query.where(ColourChange.changed_at >= since)
    out: dict[int, dict[str, Any]] = {}
    last: dict[int, int] = {}
    for cid, box_id, colour, at in session.execute(
        query.order_by(ColourChange.box_id, ColourChange.changed_at, ColourChange.id)
    ):
        previous = last.get(box_id)
        if previous is not None:
            out[previous]["ended_at"] = at
            out[previous]["seconds"] = (at - out[previous]["started_at"]).total_seconds()
        out[cid] = {"box_id": box_id, "colour": Colour(colour), "started_at": at, "ended_at": None, "seconds": None}
        last[box_id] = cid
    return out


def months_with_data(session: Session) -> list[Period]:
    """Every month from the earliest to the latest raw record the roll-ups sum (empty: none)."""
    from app.common.periods import month_of

    bounds: list[datetime] = []
    for column in (
        LedgerRecord.occurred_at,
        Manifest.picked_up_at,
        Manifest.received_at,
        Manifest.processed_at,
        Fill.filled_at,
    ):
        low, high = session.execute(select(func.min(column), func.max(column))).one()
        bounds += [b for b in (low, high) if b is not None]
    if not bounds:
        return []
    first, last = month_of(min(bounds)), month_of(max(bounds))
    months = []
    year, number = first.year, first.number
    while (year, number) <= (last.year, last.number):
        months.append(Period("month", year, number))
        year, number = (year + 1, 1) if number == 12 else (year, number + 1)
    return months
