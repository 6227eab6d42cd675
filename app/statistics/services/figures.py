"""The figures of a scope and period by topic (ledger, manifests, fills, boxes, landfill), a few queries each."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import String, and_, case, cast, func, literal, or_, select, union_all
from sqlalchemy.orm import Session, aliased

from app.boxes.models import Box, Colour, ColourChange, Fill, FillKind
from app.common.columns import ZERO_KG
from app.common.periods import Period, months_until
from app.common.rows import as_tuple, tuples
from app.common.types import UTCDateTime
from app.ledger.models import LedgerRecord, Manifest, ManifestLine, ManifestStatus, Stage
from app.ledger.services import kg, rules
from app.statistics.services.definitions import COLOURS, LATE_REPLACEMENT_RULES, RECEIVED_STATES
from app.statistics.services.scopes import Scope
from app.statistics.services.sql import EpochSeconds, as_kg, count_if, landfill_codes, ratio, sum_or_zero, within


def landfill_by_period(session: Session, scope: Scope, periods: list[Period]) -> list[dict[str, Any]]:
    """Processed and landfilled kg and the landfill share of each period, in one query."""
    if not periods:
        return []
    # The same period may be asked twice (a year's previous period is the base year by default):
    # a CASE gives a row to its first matching bucket only, so each distinct period is one bucket.
    distinct = list(dict.fromkeys(periods))
    # Bucketed in a subquery and grouped by its column: PostgreSQL would not match a CASE with
    # bound parameters in the select list to the "same" CASE in GROUP BY.
    bucket = case(*[(within(Manifest.processed_at, p), i) for i, p in enumerate(distinct)], else_=-1)
    landfill = landfill_codes(session)
    lines = (
        select(
            bucket.label("bucket"),
            ManifestLine.accepted_kg.label("accepted_kg"),
            case((ManifestLine.method_code.in_(landfill), ManifestLine.accepted_kg), else_=0).label("landfilled"),
        )
        .join(Manifest, Manifest.id == ManifestLine.manifest_id)
        .where(
            scope.enterprises(Manifest.consignor_id),
            ManifestLine.method_code.is_not(None),
            # one index range per period, not the whole span between the earliest and the latest
            or_(*[within(Manifest.processed_at, p) for p in distinct]),
        )
    ).subquery()
    rows = session.execute(
        select(lines.c.bucket, sum_or_zero(lines.c.accepted_kg), sum_or_zero(lines.c.landfilled)).group_by(
            lines.c.bucket
        )
    )
    found = {int(b): (as_kg(processed), as_kg(landfilled)) for b, processed, landfilled in tuples(rows)}
    out = []
    for p in periods:
        processed, landfilled = found.get(distinct.index(p), (ZERO_KG, ZERO_KG))
        out.append(
            {
                "period": p.label,
                "processed_kg": processed,
                "landfilled_kg": landfilled,
                "landfill_share": ratio(landfilled, processed),
            }
        )
    return out


def landfill_series(session: Session, scope: Scope, last: Period, count: int = 12) -> list[dict[str, Any]]:
    """The landfill share per month over ``count`` months ending with ``last`` (趋零填埋 chart)."""
    return landfill_by_period(session, scope, months_until(last, count))


def ledger(session: Session, scope: Scope, period: Period, last_year: Period) -> tuple[dict[str, dict], Decimal]:
    in_period = within(LedgerRecord.occurred_at, period)
    qty = LedgerRecord.quantity_kg
    stage = LedgerRecord.stage
    rows = session.execute(
        select(
            LedgerRecord.waste_code,
            sum_or_zero(case((and_(stage == Stage.GENERATION, in_period), qty), else_=0)),
            sum_or_zero(case((and_(stage == Stage.STORAGE, in_period), qty), else_=0)),
            sum_or_zero(case((and_(stage == Stage.RETURNED, in_period), qty), else_=0)),
            sum_or_zero(
                case(
                    (stage.in_((Stage.GENERATION, Stage.RETURNED)), qty), (stage == Stage.OUT_OF_STORAGE, -qty), else_=0
                )
            ),
            sum_or_zero(
                case((and_(stage == Stage.GENERATION, within(LedgerRecord.occurred_at, last_year)), qty), else_=0)
            ),
        )
        .where(scope.enterprises(LedgerRecord.enterprise_id), LedgerRecord.occurred_at < period.end_utc)
        .group_by(LedgerRecord.waste_code)
    )
    codes: dict[str, dict] = {}
    generated_last_year = ZERO_KG
    for code, generated, stored, returned, on_hand, generated_ly in tuples(rows):
        codes[code] = {
            "generated_kg": as_kg(generated),
            "into_storage_kg": as_kg(stored),
            "returned_kg": as_kg(returned),
            "in_storage_end_kg": as_kg(on_hand),
        }
        generated_last_year += as_kg(generated_ly)
    return codes, kg(generated_last_year)


def manifest_lines(session: Session, scope: Scope, period: Period, now: datetime):
    """Shipped (picked up), received and processed lines of the period: three grouped queries."""
    base = (
        select()
        .select_from(ManifestLine)
        .join(Manifest, Manifest.id == ManifestLine.manifest_id)
        .where(scope.enterprises(Manifest.consignor_id))
    )
    shipped: dict[str, Any] = dict(
        session.execute(
            base.add_columns(ManifestLine.waste_code, sum_or_zero(ManifestLine.quantity_kg))
            .where(within(Manifest.picked_up_at, period))
            .group_by(ManifestLine.waste_code)
        ).all()
    )
    received = {
        code: (r, a)
        for code, r, a in session.execute(
            base.add_columns(
                ManifestLine.waste_code, sum_or_zero(ManifestLine.received_kg), sum_or_zero(ManifestLine.accepted_kg)
            )
            .where(within(Manifest.received_at, period))
            .group_by(ManifestLine.waste_code)
        )
    }
    carbon = rules(session).waste_carbon_codes
    lines = (
        base.add_columns(
            ManifestLine.method_code, ManifestLine.waste_code, ManifestLine.accepted_kg, ManifestLine.consumed_kg
        ).where(within(Manifest.processed_at, period), ManifestLine.method_code.is_not(None))
    ).subquery()
    is_carbon = lines.c.waste_code.in_(carbon)
    processed = list(
        session.execute(
            select(
                lines.c.method_code,
                sum_or_zero(case((is_carbon, lines.c.accepted_kg), else_=0)),
                sum_or_zero(lines.c.accepted_kg),
                sum_or_zero(case((is_carbon, lines.c.consumed_kg), else_=0)),
            ).group_by(lines.c.method_code)
        )
    )
    return shipped, received, processed


def manifest_counts(session: Session, scope: Scope, period: Period, now: datetime) -> dict[str, Any]:
    m = Manifest
    late_in_transit = and_(m.status == ManifestStatus.IN_TRANSIT, m.receipt_due_at <= now)
    overdue = or_(m.overdue.is_(True), late_in_transit)
    row = session.execute(
        select(
            func.count(m.id),
            count_if(and_(m.status.in_(RECEIVED_STATES), m.overdue.is_(False))),
            count_if(overdue),
            count_if(m.discrepant.is_(True)),
            count_if(m.status == ManifestStatus.REJECTED),
            count_if(and_(m.status == ManifestStatus.IN_TRANSIT, ~late_in_transit)),
        ).where(scope.enterprises(m.consignor_id), within(m.picked_up_at, period))
    ).one()
    shipped, on_time, overdue_n, discrepant, rejected, pending = (int(x or 0) for x in row)
    return {
        "shipped_count": shipped,
        "on_time_count": on_time,
        "overdue_count": overdue_n,
        "discrepant_count": discrepant,
        "rejected_count": rejected,
        "in_transit_count": pending,
        "on_time_share": ratio(on_time, on_time + overdue_n),
    }


def fills(session: Session, scope: Scope, period: Period) -> dict[str, Any]:
    """Fills, regenerated fills, replacements on time and the carbon they replaced: one query.

    Only the period's fills are read; each one's previous fill (its time and mass) is found
    through the (box_id, filled_at) index, so the cost follows the period, not the history.
    """
    earlier = aliased(Fill)

    def previous(column):
        return (
            select(column)
            .where(earlier.box_id == Fill.box_id, earlier.filled_at < Fill.filled_at)
            .order_by(earlier.filled_at.desc())
            .limit(1)
            .scalar_subquery()
        )

    sub = (
        select(
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
        .where(scope.enterprises(Box.enterprise_id), within(Fill.filled_at, period))
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
    # A replacement knows whether the carbon it replaced was spent (Fill.replaced_overdue); fills
    # recorded before that was kept fall back on the colour history.
    is_late = or_(sub.c.replaced_overdue.is_(True), and_(sub.c.replaced_overdue.is_(None), turned_red))
    regenerated = sub.c.regeneration_batch_id.is_not(None)
    replacement = sub.c.kind == FillKind.REPLACEMENT
    row = as_tuple(
        session.execute(
            select(
                func.count(),
                sum_or_zero(sub.c.mass_kg),
                count_if(regenerated),
                sum_or_zero(case((regenerated, sub.c.mass_kg), else_=0)),
                count_if(replacement),
                count_if(and_(replacement, is_late)),
                sum_or_zero(case((replacement, sub.c.previous_kg), else_=0)),
                sum_or_zero(case((replacement, sub.c.removed_waste_kg), else_=0)),
            )
        ).one()
    )
    fills, fills_kg, regen, regen_kg, replacements, late, replaced_kg, weighed_kg = row
    fills, regen, replacements, late = int(fills or 0), int(regen or 0), int(replacements or 0), int(late or 0)
    return {
        "fills_count": fills,
        "fills_kg": as_kg(fills_kg),
        "regenerated_fills_count": regen,
        "regenerated_fills_kg": as_kg(regen_kg),
        "regenerated_fills_count_share": ratio(regen, fills),
        "regenerated_fills_kg_share": ratio(as_kg(regen_kg), as_kg(fills_kg)),
        "replacement_count": replacements,
        "on_time_replacement_count": replacements - late,
        "late_replacement_count": late,
        "on_time_replacement_share": ratio(replacements - late, replacements),
        "replaced_carbon_kg": as_kg(replaced_kg),
        "waste_carbon_weighed_kg": as_kg(weighed_kg),
    }


def boxes(session: Session, scope: Scope, period: Period, now: datetime) -> dict[str, Any]:
    """Boxes by colour at ``at`` and red box-days in the period: two queries.

    Neither reads a box's whole colour history: the colour at an instant is the box's last change
    before it, found through the (box_id, changed_at) index; red spans are the changes inside the
    period plus, per box, the colour it already had when the period began.
    """
    at = min(period.end_utc, now)
    start = period.start_utc
    # A box counts from its registration, or from the start of its history when that is earlier
    # (a box registered late, with back-dated fills, existed before).
    history_before = (
        select(ColourChange.id)
        .where(ColourChange.box_id == Box.id, ColourChange.changed_at < at)
        .correlate(Box)
        .exists()
    )
    boxes_in_scope = and_(scope.enterprises(Box.enterprise_id), or_(Box.created_at < at, history_before))

    def colour_before(moment: datetime):
        cc = aliased(ColourChange)
        return (
            select(cc.colour)
            .where(cc.box_id == Box.id, cc.changed_at < moment)
            .order_by(cc.changed_at.desc(), cc.id.desc())
            .limit(1)
            .correlate(Box)
            .scalar_subquery()
        )

    colours = select(colour_before(at).label("colour")).where(boxes_in_scope).subquery()
    counts: dict[str, int] = {}
    for colour, n in tuples(session.execute(select(colours.c.colour, func.count()).group_by(colours.c.colour))):
        counts[colour or Colour.GREY] = counts.get(colour or Colour.GREY, 0) + int(n)  # no change yet: grey
    # Red spans: each change lasts until the box's next change (or ``at``). The colour a box had at
    # the start of the period (a change before it) opens a span at the start.
    opening = select(
        Box.id.label("box_id"),
        colour_before(start).label("colour"),
        literal(start, UTCDateTime()).label("changed_at"),
        literal(0).label("ord"),
        literal(0).label("cid"),
    ).where(boxes_in_scope)
    inside = (
        select(
            ColourChange.box_id,
            ColourChange.colour,
            ColourChange.changed_at,
            literal(1).label("ord"),
            ColourChange.id.label("cid"),
        )
        .join(Box, Box.id == ColourChange.box_id)
        .where(scope.enterprises(Box.enterprise_id), ColourChange.changed_at >= start, ColourChange.changed_at < at)
    )
    changes = union_all(opening, inside).subquery()
    spans = select(
        changes.c.colour,
        changes.c.changed_at,
        func.lead(changes.c.changed_at, type_=UTCDateTime())
        .over(partition_by=changes.c.box_id, order_by=(changes.c.changed_at, changes.c.ord, changes.c.cid))
        .label("until"),
    ).subquery()
    start_s, end_s = start.timestamp(), at.timestamp()
    begin = EpochSeconds(spans.c.changed_at)
    finish = func.coalesce(EpochSeconds(spans.c.until), literal(end_s))
    a = case((begin > start_s, begin), else_=literal(start_s))
    b = case((finish < end_s, finish), else_=literal(end_s))
    red_seconds = session.scalar(select(sum_or_zero(case((b > a, b - a), else_=0))).where(spans.c.colour == Colour.RED))
    by_colour = {c: int(counts.get(c, 0)) for c in COLOURS}
    return {
        "at": at,
        "by_colour": by_colour,
        "total_count": sum(by_colour.values()),
        "red_box_days": round(float(red_seconds or 0) / 86400, 4),
    }


def shipped_and_received(session: Session, scope: Scope, period: Period) -> tuple[Decimal, Decimal]:
    row = session.execute(
        select(sum_or_zero(ManifestLine.quantity_kg), sum_or_zero(ManifestLine.received_kg))
        .join(Manifest, Manifest.id == ManifestLine.manifest_id)
        .where(
            scope.enterprises(Manifest.consignor_id),
            within(Manifest.picked_up_at, period),
            Manifest.status.in_(RECEIVED_STATES),
        )
    ).one()
    return as_kg(row[0]), as_kg(row[1])
