"""Mass-balance anomalies per enterprise (carbon missing, stored too long, over limit, not received, short).

The period figures (replacements and their carbon, manifests received against shipped) come from
the enterprise-month roll-ups (app/statistics/rollup_models.py) for the whole Asia/Shanghai months
of the period, from the enterprise-day roll-ups for the whole days of its partial first and last
month, and from the raw records only for the hours before its first and after its last midnight
(a rolling year at 10⁶ manifests read ≈ 40,000 of them raw per request before the days came); the current
state (batches on site, stock, manifests in transit) from the rows that hold it. The jurisdiction
is a join on the organisation (``enterprise_scope``), never a list of ids, so a city regulator's
query reads no list of its 10,000 enterprises. tests/statistics/test_anomalies_rollups.py proves the
result equal to the raw computation for random data.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Integer, and_, distinct, func, literal, or_, select, text, union_all
from sqlalchemy.orm import Session

from app.accounts.models import Organization
from app.accounts.services import Principal, enterprise_scope
from app.boxes.models import Box, Fill, FillKind
from app.common.errors import NotFound
from app.common.periods import Period, month_of
from app.common.timeutil import local_date, utcnow
from app.ledger.models import (
    RECEIVED_STATES,
    WASTE_ON_SITE,
    LedgerRecord,
    Manifest,
    ManifestLine,
    ManifestStatus,
    WasteStock,
)
from app.ledger.services.rules_access import _day_start, kg, rules
from app.statistics.rollup_models import ConsignmentDay, ConsignmentMonth, FillDay, FillMonth
from app.statistics.services.rollup_compute import previous_fill_mass

# (id, name, county_code, park_id): what an anomaly names of its enterprise, read with its figures
OrgKey = tuple[int, str, str | None, int | None]
ORG_COLUMNS = (Organization.id, Organization.name, Organization.county_code, Organization.park_id)


def _period(session: Session, start: date | None, end: date | None, now: datetime) -> tuple[datetime, datetime]:
    until = _day_start(end + timedelta(days=1)) if end else now
    since = _day_start(start) if start else until - timedelta(days=rules(session).default_period_days)
    return since, until


def split_months(since: datetime, until: datetime) -> tuple[list[Period], list[tuple[datetime, datetime]]]:
    """The whole Shanghai months inside [since, until) and the partial edges around them ([a, b) each)."""
    whole: list[Period] = []
    edges: list[tuple[datetime, datetime]] = []
    if since >= until:
        return whole, edges
    month = month_of(since)
    while month.start_utc < until:
        if since <= month.start_utc and month.end_utc <= until:
            whole.append(month)
        else:
            edges.append((max(since, month.start_utc), min(until, month.end_utc)))
        month = month_of(month.end_utc)
    return whole, edges


def split_days(a: datetime, b: datetime) -> tuple[tuple[str, str] | None, list[tuple[datetime, datetime]]]:
    """The whole Shanghai days inside [a, b) as their first and last labels (None: no whole day)
    and the partial pieces before the first and after the last midnight ([x, y) each)."""
    first = local_date(a)
    if _day_start(first) < a:
        first += timedelta(days=1)
    end_day = local_date(b)  # its midnight is at or before b
    start, end = _day_start(first), _day_start(end_day)
    if end <= start:
        return None, [(a, b)] if a < b else []
    pieces = [(x, y) for x, y in ((a, start), (end, b)) if x < y]
    return (first.isoformat(), (end_day - timedelta(days=1)).isoformat()), pieces


def _anomaly(
    org: OrgKey, code: str, zh: str, en: str, values: dict[str, Any], thresholds: dict[str, Any]
) -> dict[str, Any]:
    return {
        "enterprise_id": org[0],
        "enterprise_name": org[1],
        "county_code": org[2],
        "park_id": org[3],
        "code": code,
        "zh": zh,
        "en": en,
        "values": values,
        "thresholds": thresholds,
    }


class _Scoped:
    """Figures of the caller's enterprises: a join on the organisation, grouped by it."""

    def __init__(self, session: Session, actor: Principal, enterprise: int | None) -> None:
        self.session, self.actor, self.enterprise = session, actor, enterprise

    def _in_scope(self, query, column):
        query = query.join(Organization, Organization.id == column).where(enterprise_scope(self.actor))
        return query.where(Organization.id == self.enterprise) if self.enterprise else query

    def rows(self, query, column) -> Iterator[tuple[OrgKey, list[Any]]]:
        """``query``'s figures grouped per enterprise of the scope (``query`` selects ORG_COLUMNS first)."""
        grouped = self._in_scope(query, column).group_by(*ORG_COLUMNS)
        for row in self.session.execute(grouped):
            yield cast(OrgKey, tuple(row[:4])), list(row[4:])

    def summed(self, parts: list[tuple[Any, Any]], having) -> Iterator[tuple[OrgKey, list[Any]]]:
        """The parts' rows (enterprise_id, n, a, b: a count and two kg) of the scope's enterprises
        added up per enterprise in one aggregate, only for the enterprises ``having(n, a, b)`` lets
        through: the rows returned are the candidates, not every enterprise of a city."""
        if not parts:
            return
        scoped = [self._in_scope(query, column) for query, column in parts]
        rows: Any = scoped[0]
        if len(scoped) > 1:
            rows = union_all(*scoped)
        both = rows.subquery()
        n, a, b = func.sum(both.c.n), func.sum(both.c.a), func.sum(both.c.b)
        totals = (
            select(both.c.enterprise_id, n.label("n"), a.label("a"), b.label("b"))
            .group_by(both.c.enterprise_id)
            .having(having(n, a, b))
            .subquery()
        )
        query = select(*ORG_COLUMNS, totals.c.n, totals.c.a, totals.c.b).join(
            totals, totals.c.enterprise_id == Organization.id
        )
        for row in self.session.execute(query):
            yield cast(OrgKey, tuple(row[:4])), [int(row[4] or 0), *row[5:]]


def _below(part, whole, ratio: float):
    """A SQL pre-filter: part / whole < ratio, loosened by a millionth (the exact test is the float
    ratio of the exact sums, in Python); integers only, which the gram-exact mass type keeps."""
    return func.coalesce(part, 0) * 1_000_000 < whole * (int(ratio * 1_000_000) + 1)


ONE = literal(1, Integer)


def _rolled(
    whole: list[Period],
    edges: list[tuple[datetime, datetime]],
    month: tuple[Any, Any, Any, Any, Any],
    day: tuple[Any, Any, Any, Any, Any],
) -> tuple[list[tuple[Any, Any]], list[tuple[datetime, datetime]]]:
    """The parts of a period that roll-ups answer, and the pieces left to read raw.

    ``month`` and ``day`` name a roll-up's enterprise, its count, its two sums and its month
    (or day) column. Whole months come from the month roll-up, the whole days of a partial month
    from the day roll-up; what is left are the hours before the first and after the last
    midnight of a partial month."""
    parts: list[tuple[Any, Any]] = []
    if whole:
        enterprise, n, a, b, key = month
        parts.append(
            (
                select(enterprise.label("enterprise_id"), n.label("n"), a.label("a"), b.label("b")).where(
                    key.in_([m.label for m in whole])
                ),
                enterprise,
            )
        )
    pieces: list[tuple[datetime, datetime]] = []
    for start, end in edges:
        days, around = split_days(start, end)
        pieces += around
        if days is not None:
            enterprise, n, a, b, key = day
            parts.append(
                (
                    select(enterprise.label("enterprise_id"), n.label("n"), a.label("a"), b.label("b")).where(
                        key >= days[0], key <= days[1]
                    ),
                    enterprise,
                )
            )
    return parts, pieces


def _replacements(scoped: _Scoped, whole: list[Period], edges: list[tuple[datetime, datetime]], ratio: float):
    """Per enterprise: replacements that had a previous fill, the waste carbon weighed at them and
    the previous fills' mass (the carbon they removed)."""
    parts, pieces = _rolled(
        whole,
        edges,
        (FillMonth.enterprise_id, FillMonth.replaced_count, FillMonth.replaced_weighed_kg, FillMonth.replaced_kg,
         FillMonth.month),
        (FillDay.enterprise_id, FillDay.replaced_count, FillDay.replaced_weighed_kg, FillDay.replaced_kg,
         FillDay.day),
    )  # fmt: skip
    # the fill just before, in (filled_at, id) order: the same tie-break as the roll-up's
    previous_mass = previous_fill_mass()
    for a, b in pieces:  # the hours before the first and after the last midnight: raw
        fills = (
            select(Box.enterprise_id, Fill.removed_waste_kg.label("removed"), previous_mass.label("previous"))
            .join(Box, Box.id == Fill.box_id)
            .where(Fill.kind == FillKind.REPLACEMENT, Fill.filled_at >= a, Fill.filled_at < b)
            .subquery()
        )
        parts.append(
            (
                select(
                    fills.c.enterprise_id.label("enterprise_id"),
                    ONE.label("n"),
                    fills.c.removed.label("a"),
                    fills.c.previous.label("b"),
                ).where(fills.c.previous.is_not(None)),
                fills.c.enterprise_id,
            )
        )
    # candidates: replacements of a known fill whose weighed carbon is short of what they removed
    return scoped.summed(parts, lambda n, weighed, removed: and_(n > 0, removed > 0, _below(weighed, removed, ratio)))


def _deliveries(scoped: _Scoped, whole: list[Period], edges: list[tuple[datetime, datetime]], ratio: float):
    """Per enterprise: manifests (with lines) picked up in the period and received (or further),
    their shipped and their received kg."""
    parts, pieces = _rolled(
        whole,
        edges,
        (ConsignmentMonth.enterprise_id, ConsignmentMonth.delivered_count, ConsignmentMonth.delivered_shipped_kg,
         ConsignmentMonth.delivered_received_kg, ConsignmentMonth.month),
        (ConsignmentDay.enterprise_id, ConsignmentDay.delivered_count, ConsignmentDay.delivered_shipped_kg,
         ConsignmentDay.delivered_received_kg, ConsignmentDay.day),
    )  # fmt: skip
    for a, b in pieces:  # the hours before the first and after the last midnight: raw
        manifests = (
            select(
                Manifest.consignor_id.label("enterprise_id"),
                func.sum(ManifestLine.quantity_kg).label("shipped"),
                func.sum(ManifestLine.received_kg).label("received"),
            )
            .join(ManifestLine, ManifestLine.manifest_id == Manifest.id)
            .where(Manifest.status.in_(RECEIVED_STATES), Manifest.picked_up_at >= a, Manifest.picked_up_at < b)
            .group_by(Manifest.consignor_id, Manifest.id)
            .subquery()
        )
        parts.append(
            (
                select(
                    manifests.c.enterprise_id.label("enterprise_id"),
                    ONE.label("n"),
                    manifests.c.shipped.label("a"),
                    manifests.c.received.label("b"),
                ),
                manifests.c.enterprise_id,
            )
        )
    # candidates: delivered manifests whose received kg are short of the shipped (or nothing shipped)
    return scoped.summed(
        parts,
        lambda n, shipped, received: and_(n > 0, or_(func.coalesce(shipped, 0) == 0, _below(received, shipped, ratio))),
    )


def anomalies(
    session: Session,
    actor: Principal,
    *,
    enterprise: int | None = None,
    start: date | None = None,
    end: date | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Mass-balance anomalies per enterprise in the caller's jurisdiction, each with its numbers."""
    if enterprise and not session.scalar(
        select(Organization.id).where(Organization.id == enterprise, enterprise_scope(actor))
    ):  # another jurisdiction's enterprise is not found, as on every route
        raise NotFound(f"企业 {enterprise} 不存在或无权查看 (enterprise {enterprise} not found)")
    now = now or utcnow()
    cfg = rules(session)
    since, until = _period(session, start, end, now)
    whole, edges = split_months(since, until)
    scoped = _Scoped(session, actor, enterprise)
    found: list[dict[str, Any]] = []

    # 1. Carbon gone missing: waste carbon weighed at replacements vs the carbon those replacements removed.
    for org, (count, removed, filled) in _replacements(scoped, whole, edges, cfg.min_removed_to_filled_ratio):
        if not count or not filled:
            continue
        filled, removed = kg(filled), kg(removed)
        ratio = float(removed / filled)  # a ratio of exact sums
        if ratio < cfg.min_removed_to_filled_ratio:
            found.append(
                _anomaly(
                    org,
                    "carbon_missing",
                    f"期内更换 {count} 次，被换下的活性炭装填量合计 {float(filled):g} kg，称重废炭仅 {float(removed):g} kg"
                    f"（{ratio:.0%}，低于 {cfg.min_removed_to_filled_ratio:.0%}）：活性炭去向不明",
                    f"{count} replacement(s) removed carbon filled at {float(filled):g} kg but only {float(removed):g} kg of waste "
                    f"carbon was weighed ({ratio:.0%}, below {cfg.min_removed_to_filled_ratio:.0%}): carbon gone missing",
                    {"replacements": count, "filled_kg": filled, "removed_kg": removed, "ratio": round(ratio, 4)},
                    {"min_ratio": cfg.min_removed_to_filled_ratio},
                )
            )

    # 2. Generated but never shipped: batches still on site beyond the storage limit.
    limit_at = now - timedelta(days=cfg.storage_limit_days)
    # The batches still on site are a few rows among millions: the condition is spelt as the
    # partial index's own (ix_ledger_records_waste_on_site), so the planner reads that index and
    # not every record (a bound EPS travels as 0.000, which the index's predicate does not imply).
    on_site = select(
        *ORG_COLUMNS, func.count(), func.sum(LedgerRecord.on_site_kg), func.min(LedgerRecord.occurred_at)
    ).where(text(WASTE_ON_SITE), LedgerRecord.occurred_at < limit_at)
    for org, (count, kept_kg, oldest) in scoped.rows(on_site, LedgerRecord.enterprise_id):
        kept_kg = kg(kept_kg)
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
        days = (now - oldest).total_seconds() / 86400
        found.append(
            _anomaly(
                org,
                "stored_too_long",
                f"{count} 个产生批次共 {float(kept_kg):g} kg 危险废物在厂内贮存超过 {cfg.storage_limit_days} 天未转移（最久 {days:.0f} 天）",
                f"{count} batch(es), {float(kept_kg):g} kg in all, generated but not shipped for more than "
                f"{cfg.storage_limit_days} days (oldest {days:.0f} days)",
                {"batches": count, "on_site_kg": kept_kg, "oldest_days": round(days, 1)},
                {"storage_limit_days": cfg.storage_limit_days},
            )
        )

    # 3. More on site than a storage point may hold.
    stock = select(*ORG_COLUMNS, func.sum(WasteStock.on_hand_kg)).having(
        func.sum(WasteStock.on_hand_kg) > cfg.max_on_site_kg
    )
    for org, (on_hand,) in scoped.rows(stock, WasteStock.enterprise_id):
        on_hand = kg(on_hand)
        found.append(
            _anomaly(
                org,
                "storage_over_limit",
                f"厂内贮存危险废物 {float(on_hand):g} kg，超过贮存点上限 {cfg.max_on_site_kg:g} kg",
                f"{float(on_hand):g} kg of hazardous waste on site, above the storage point limit of {cfg.max_on_site_kg:g} kg",
                {"on_hand_kg": on_hand},
                {"max_on_site_kg": cfg.max_on_site_kg},
            )
        )

    # 4. Shipped but not received: in transit past the receipt deadline (manifests with lines).
    in_transit = (
        select(*ORG_COLUMNS, func.count(distinct(Manifest.id)), func.sum(ManifestLine.quantity_kg))
        .select_from(Manifest)
        .join(ManifestLine, ManifestLine.manifest_id == Manifest.id)
        .where(Manifest.status == ManifestStatus.IN_TRANSIT, Manifest.receipt_due_at <= now)
    )
    for org, (count, quantity) in scoped.rows(in_transit, Manifest.consignor_id):
        quantity = kg(quantity)
        found.append(
            _anomaly(
                org,
                "shipped_not_received",
                f"{count} 张联单共 {float(quantity):g} kg 已运出，超过 {cfg.receipt_working_days} 个工作日仍未被接收",
                f"{count} manifest(s), {float(quantity):g} kg, shipped but not received within "
                f"{cfg.receipt_working_days} working days",
                {"manifests": count, "quantity_kg": quantity},
                {"receipt_working_days": cfg.receipt_working_days},
            )
        )

    # 5. Received far less than shipped over the period (lost between consignor and receiver).
    for org, (count, shipped_kg, received_kg) in _deliveries(scoped, whole, edges, cfg.min_received_to_shipped_ratio):
        if not count:
            continue
        shipped_kg, received_kg = kg(shipped_kg), kg(received_kg)
        ratio = float(received_kg / shipped_kg) if shipped_kg else 1.0
        if ratio < cfg.min_received_to_shipped_ratio:
            found.append(
                _anomaly(
                    org,
                    "received_short",
                    f"期内 {count} 张联单运出 {float(shipped_kg):g} kg，接受人仅称重接收 {float(received_kg):g} kg（{ratio:.0%}，"
                    f"低于 {cfg.min_received_to_shipped_ratio:.0%}）",
                    f"{count} manifest(s) shipped {float(shipped_kg):g} kg but the receivers weighed only {float(received_kg):g} kg "
                    f"({ratio:.0%}, below {cfg.min_received_to_shipped_ratio:.0%})",
                    {
                        "manifests": count,
                        "shipped_kg": shipped_kg,
                        "received_kg": received_kg,
                        "ratio": round(ratio, 4),
                    },
                    {"min_ratio": cfg.min_received_to_shipped_ratio},
                )
            )
    found.sort(key=lambda a: (a["enterprise_id"], a["code"]))
    return {"from": since, "to": until, "items": found}
