"""The figures of a scope and period by topic (ledger, manifests, fills, boxes, landfill), a few queries each.

Everything but the manifest counts reads the roll-ups (app/statistics/rollup_models.py): sums over
the scope's enterprise months, and range reads of the colour spans, so a city year costs what its
twelve months of roll-up rows cost, not what its raw records do. The manifest counts stay on the
manifests (by their indexed pickup time): "overdue" depends on ``now`` for manifests in transit.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from app.boxes.models import Box, Colour
from app.common.columns import ZERO_KG
from app.common.periods import Period, months_until
from app.common.rows import as_tuple, tuples
from app.ledger.models import Manifest, ManifestStatus
from app.ledger.services import kg, rules
from app.statistics.rollup_models import ColourSpan, FillMonth, TreatmentMonth, WasteMonth
from app.statistics.services.definitions import COLOURS, RECEIVED_STATES
from app.statistics.services.scopes import Scope
from app.statistics.services.sql import EpochSeconds, as_kg, count_if, landfill_codes, ratio, sum_or_zero, within


def _months(period: Period) -> list[str]:
    return [m.label for m in period.month_periods()]


def landfill_by_period(session: Session, scope: Scope, periods: list[Period]) -> list[dict[str, Any]]:
    """Processed and landfilled kg and the landfill share of each period, in one query."""
    if not periods:
        return []
    distinct = list(dict.fromkeys(periods))
    wanted = sorted({m for p in distinct for m in _months(p)})
    landfill = landfill_codes(session)
    t = TreatmentMonth
    query = scope.restrict(
        select(
            t.month,
            sum_or_zero(t.accepted_kg),
            sum_or_zero(case((t.method_code.in_(landfill), t.accepted_kg), else_=0)),
        )
        .where(t.month.in_(wanted))
        .group_by(t.month),
        t.enterprise_id,
    )
    by_month = {month: (as_kg(p), as_kg(lf)) for month, p, lf in tuples(session.execute(query))}
    out = []
    for p in periods:
        months = [by_month.get(m, (ZERO_KG, ZERO_KG)) for m in _months(p)]
        processed = kg(sum((m[0] for m in months), ZERO_KG))
        landfilled = kg(sum((m[1] for m in months), ZERO_KG))
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


def _waste_by_code(session: Session, scope: Scope, *columns, where) -> list[tuple]:
    w = WasteMonth
    query = scope.restrict(select(w.waste_code, *columns).where(where).group_by(w.waste_code), w.enterprise_id)
    return [tuple(r) for r in session.execute(query)]


def ledger(session: Session, scope: Scope, period: Period, last_year: Period) -> tuple[dict[str, dict], Decimal]:
    w = WasteMonth
    months, last_months = _months(period), _months(last_year)
    in_period = w.month.in_(months)

    def in_months(column, condition=in_period):
        return sum_or_zero(case((condition, column), else_=0))

    rows = _waste_by_code(
        session,
        scope,
        sum_or_zero(w.ledger_count),
        in_months(w.generated_kg),
        in_months(w.into_storage_kg),
        in_months(w.returned_kg),
        sum_or_zero(w.generated_kg + w.returned_kg - w.out_of_storage_kg),
        in_months(w.generated_kg, w.month.in_(last_months)),
        where=w.month <= months[-1],
    )
    codes: dict[str, dict] = {}
    generated_last_year = ZERO_KG
    for code, records, generated, stored, returned, on_hand, generated_ly in rows:
        if not records:
            continue  # only manifest figures: listed by manifest_lines when in the period
        codes[code] = {
            "generated_kg": as_kg(generated),
            "into_storage_kg": as_kg(stored),
            "returned_kg": as_kg(returned),
            "in_storage_end_kg": as_kg(on_hand),
        }
        generated_last_year += as_kg(generated_ly)
    return codes, kg(generated_last_year)


def manifest_lines(session: Session, scope: Scope, period: Period, now: datetime):
    """Shipped (picked up), received and processed kg of the period from the roll-ups."""
    w = WasteMonth
    rows = _waste_by_code(
        session,
        scope,
        sum_or_zero(w.shipped_count),
        sum_or_zero(w.shipped_kg),
        sum_or_zero(w.received_count),
        sum_or_zero(w.received_kg),
        sum_or_zero(w.accepted_kg),
        where=w.month.in_(_months(period)),
    )
    shipped: dict[str, Any] = {code: q for code, n, q, *_ in rows if n}
    received = {code: (r, a) for code, _, _, n, r, a in rows if n}
    carbon = rules(session).waste_carbon_codes
    t = TreatmentMonth
    is_carbon = t.waste_code.in_(carbon)
    processed = list(
        session.execute(
            scope.restrict(
                select(
                    t.method_code,
                    sum_or_zero(case((is_carbon, t.accepted_kg), else_=0)),
                    sum_or_zero(t.accepted_kg),
                    sum_or_zero(case((is_carbon, t.consumed_kg), else_=0)),
                )
                .where(t.month.in_(_months(period)))
                .group_by(t.method_code),
                t.enterprise_id,
            )
        )
    )
    return shipped, received, processed


def manifest_counts(session: Session, scope: Scope, period: Period, now: datetime) -> dict[str, Any]:
    m = Manifest
    late_in_transit = and_(m.status == ManifestStatus.IN_TRANSIT, m.receipt_due_at <= now)
    overdue = or_(m.overdue.is_(True), late_in_transit)
    query = scope.restrict(
        select(
            func.count(m.id),
            count_if(and_(m.status.in_(RECEIVED_STATES), m.overdue.is_(False))),
            count_if(overdue),
            count_if(m.discrepant.is_(True)),
            count_if(m.status == ManifestStatus.REJECTED),
            count_if(and_(m.status == ManifestStatus.IN_TRANSIT, ~late_in_transit)),
        ).where(within(m.picked_up_at, period)),
        m.consignor_id,
    )
    row = session.execute(query).one()
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
    """Fills, regenerated fills, replacements on time and the carbon they replaced (FillMonth)."""
    f = FillMonth
    query = scope.restrict(
        select(
            sum_or_zero(f.fills_count),
            sum_or_zero(f.fills_kg),
            sum_or_zero(f.regenerated_count),
            sum_or_zero(f.regenerated_kg),
            sum_or_zero(f.replacement_count),
            sum_or_zero(f.late_count),
            sum_or_zero(f.replaced_kg),
            sum_or_zero(f.weighed_kg),
        ).where(f.month.in_(_months(period))),
        f.enterprise_id,
    )
    row = as_tuple(session.execute(query).one())
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
    """Boxes by colour at the end of the period (or now) and red box-days in it: two span reads.

    The colour of a box at ``at`` is its one span with ``started_at < at <= ended_at`` (or still
    open); a box registered before ``at`` without any is grey. Red box-days: the red spans
    overlapping the period, each clipped to it and to ``at``.
    """
    at = min(period.end_utc, now)
    start = period.start_utc
    s = ColourSpan
    holding = and_(s.box_id == Box.id, s.started_at < at, or_(s.ended_at.is_(None), s.ended_at >= at))
    counted = scope.restrict(
        select(s.colour, func.count())
        .select_from(Box)
        .outerjoin(s, holding)
        .where(or_(Box.created_at < at, s.colour_change_id.is_not(None)))
        .group_by(s.colour),
        Box.enterprise_id,
    )
    counts: dict[str, int] = {}
    for colour, n in tuples(session.execute(counted)):
        counts[colour or Colour.GREY] = counts.get(colour or Colour.GREY, 0) + int(n)  # no span yet: grey
    # A span inside the period counts its stored length; only those crossing its start or ``at``
    # (at most two per box) are clipped, by the CASE's lazily evaluated second branch.
    start_s, end_s = start.timestamp(), at.timestamp()
    begin = EpochSeconds(s.started_at)
    finish = func.coalesce(EpochSeconds(s.ended_at), literal(end_s))
    a = case((begin > start_s, begin), else_=literal(start_s))
    b = case((finish < end_s, finish), else_=literal(end_s))
    inside = and_(s.started_at >= start, s.ended_at.is_not(None), s.ended_at <= at)
    clipped = case((b > a, b - a), else_=0)
    red = select(sum_or_zero(case((inside, s.seconds), else_=clipped))).where(
        s.colour == Colour.RED, s.started_at < at, or_(s.ended_at.is_(None), s.ended_at > start)
    )
    if scope.kind != "city":
        red = scope.restrict(red.join(Box, Box.id == s.box_id), Box.enterprise_id)
    red_seconds = session.scalar(red)
    by_colour = {c: int(counts.get(c, 0)) for c in COLOURS}
    return {
        "at": at,
        "by_colour": by_colour,
        "total_count": sum(by_colour.values()),
        "red_box_days": round(float(red_seconds or 0) / 86400, 4),
    }


def shipped_and_received(session: Session, scope: Scope, period: Period) -> tuple[Decimal, Decimal]:
    """Manifests picked up in the period and received (or further): shipped and weighed-in kg."""
    w = WasteMonth
    query = scope.restrict(
        select(sum_or_zero(w.delivered_shipped_kg), sum_or_zero(w.delivered_received_kg)).where(
            w.month.in_(_months(period))
        ),
        w.enterprise_id,
    )
    row = session.execute(query).one()
    return as_kg(row[0]), as_kg(row[1])
