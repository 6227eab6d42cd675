"""The mass-balance anomalies computed from the raw records only, with the jurisdiction as a list
of ids: app/statistics/services/anomalies.py as it was before it read the roll-ups, kept here as the
oracle the roll-up path must equal (tests/statistics/test_anomalies_rollups.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import Organization
from app.accounts.services import Principal, enterprise_scope
from app.boxes.models import Box, Fill, FillKind
from app.common.errors import NotFound
from app.common.rows import tuples
from app.common.timeutil import utcnow
from app.ledger.models import RECEIVED_STATES, LedgerRecord, Manifest, ManifestLine, ManifestStatus, Stage, WasteStock
from app.ledger.services.rules_access import EPS, kg, rules
from app.statistics.services.anomalies import _period


def _anomaly(
    org: Organization, code: str, zh: str, en: str, values: dict[str, Any], thresholds: dict[str, Any]
) -> dict:
    return {
        "enterprise_id": org.id,
        "enterprise_name": org.name,
        "county_code": org.county_code,
        "park_id": org.park_id,
        "code": code,
        "zh": zh,
        "en": en,
        "values": values,
        "thresholds": thresholds,
    }


def raw_anomalies(
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
    orgs_q = select(Organization).where(enterprise_scope(actor))
    if enterprise:
        orgs_q = orgs_q.where(Organization.id == enterprise)
    orgs = {o.id: o for o in session.scalars(orgs_q)}
    ids = list(orgs)
    found: list[dict[str, Any]] = []
    if not ids:
        return {"from": since, "to": until, "items": []}

    # 1. Carbon gone missing: waste carbon weighed at replacements vs the carbon those replacements removed.
    previous_mass = func.lag(Fill.mass_kg).over(partition_by=Fill.box_id, order_by=(Fill.filled_at, Fill.id))
    fills = (
        select(
            Box.enterprise_id.label("enterprise_id"),
            Fill.kind.label("kind"),
            Fill.filled_at.label("at"),
            Fill.removed_waste_kg.label("removed"),
            previous_mass.label("previous"),
        )
        .join(Box, Box.id == Fill.box_id)
        .where(Box.enterprise_id.in_(ids), Fill.filled_at < until)
        .subquery()
    )
    rows = session.execute(
        select(fills.c.enterprise_id, func.count(), func.sum(fills.c.removed), func.sum(fills.c.previous))
        .where(fills.c.kind == FillKind.REPLACEMENT, fills.c.at >= since, fills.c.previous.is_not(None))
        .group_by(fills.c.enterprise_id)
    )
    for org_id, count, removed, filled in tuples(rows):
        if not filled:
            continue
        filled, removed = kg(filled), kg(removed)
        ratio = float(removed / filled)  # a ratio of exact sums
        if ratio < cfg.min_removed_to_filled_ratio:
            found.append(
                _anomaly(
                    orgs[org_id],
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
    rows = session.execute(
        select(
            LedgerRecord.enterprise_id,
            func.count(),
            func.sum(LedgerRecord.on_site_kg),
            func.min(LedgerRecord.occurred_at),
        )
        .where(
            LedgerRecord.enterprise_id.in_(ids),
            LedgerRecord.stage == Stage.GENERATION,
            LedgerRecord.on_site_kg > EPS,
            LedgerRecord.occurred_at < limit_at,
        )
        .group_by(LedgerRecord.enterprise_id)
    )
    for org_id, count, on_site, oldest in tuples(rows):
        on_site = kg(on_site)
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
        days = (now - oldest).total_seconds() / 86400
        found.append(
            _anomaly(
                orgs[org_id],
                "stored_too_long",
                f"{count} 个产生批次共 {float(on_site):g} kg 危险废物在厂内贮存超过 {cfg.storage_limit_days} 天未转移（最久 {days:.0f} 天）",
                f"{count} batch(es), {float(on_site):g} kg in all, generated but not shipped for more than "
                f"{cfg.storage_limit_days} days (oldest {days:.0f} days)",
                {"batches": count, "on_site_kg": on_site, "oldest_days": round(days, 1)},
                {"storage_limit_days": cfg.storage_limit_days},
            )
        )

    # 3. More on site than a storage point may hold.
    rows = session.execute(
        select(WasteStock.enterprise_id, func.sum(WasteStock.on_hand_kg))
        .where(WasteStock.enterprise_id.in_(ids))
        .group_by(WasteStock.enterprise_id)
        .having(func.sum(WasteStock.on_hand_kg) > cfg.max_on_site_kg)
    )
    for org_id, on_hand in tuples(rows):
        on_hand = kg(on_hand)
        found.append(
            _anomaly(
                orgs[org_id],
                "storage_over_limit",
                f"厂内贮存危险废物 {float(on_hand):g} kg，超过贮存点上限 {cfg.max_on_site_kg:g} kg",
                f"{float(on_hand):g} kg of hazardous waste on site, above the storage point limit of {cfg.max_on_site_kg:g} kg",
                {"on_hand_kg": on_hand},
                {"max_on_site_kg": cfg.max_on_site_kg},
            )
        )

    # 4. Shipped but not received: in transit past the receipt deadline.
    shipped = (
        select(ManifestLine.manifest_id, func.sum(ManifestLine.quantity_kg).label("kg"))
        .group_by(ManifestLine.manifest_id)
        .subquery()
    )
    rows = session.execute(
        select(Manifest.consignor_id, func.count(), func.sum(shipped.c.kg), func.min(Manifest.picked_up_at))
        .join(shipped, shipped.c.manifest_id == Manifest.id)
        .where(
            Manifest.consignor_id.in_(ids), Manifest.status == ManifestStatus.IN_TRANSIT, Manifest.receipt_due_at <= now
        )
        .group_by(Manifest.consignor_id)
    )
    for org_id, count, quantity, _oldest in tuples(rows):
        quantity = kg(quantity)
        found.append(
            _anomaly(
                orgs[org_id],
                "shipped_not_received",
                f"{count} 张联单共 {float(quantity):g} kg 已运出，超过 {cfg.receipt_working_days} 个工作日仍未被接收",
                f"{count} manifest(s), {float(quantity):g} kg, shipped but not received within "
                f"{cfg.receipt_working_days} working days",
                {"manifests": count, "quantity_kg": quantity},
                {"receipt_working_days": cfg.receipt_working_days},
            )
        )

    # 5. Received far less than shipped over the period (lost between consignor and receiver).
    received = (
        select(
            ManifestLine.manifest_id,
            func.sum(ManifestLine.quantity_kg).label("shipped"),
            func.sum(ManifestLine.received_kg).label("received"),
        )
        .group_by(ManifestLine.manifest_id)
        .subquery()
    )
    rows = session.execute(
        select(Manifest.consignor_id, func.count(), func.sum(received.c.shipped), func.sum(received.c.received))
        .join(received, received.c.manifest_id == Manifest.id)
        .where(
            Manifest.consignor_id.in_(ids),
            Manifest.status.in_(RECEIVED_STATES),
            Manifest.picked_up_at >= since,
            Manifest.picked_up_at < until,
        )
        .group_by(Manifest.consignor_id)
    )
    for org_id, count, shipped_kg, received_kg in tuples(rows):
        shipped_kg, received_kg = kg(shipped_kg), kg(received_kg)
        ratio = float(received_kg / shipped_kg) if shipped_kg else 1.0
        if ratio < cfg.min_received_to_shipped_ratio:
            found.append(
                _anomaly(
                    orgs[org_id],
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
