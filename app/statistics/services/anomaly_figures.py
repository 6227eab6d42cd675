"""The figures behind each mass-balance anomaly, for the regulator's anomalies page.

:func:`app.statistics.services.anomalies.anomalies` names each anomaly with its own values and the
rule's threshold; this adds, per enterprise, the balance of the period they came from (generated,
shipped, on site now) and, per anomaly, the difference the rule judged and the rule's tolerance.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.services import Principal
from app.ledger.models import LedgerRecord, Stage, WasteStock
from app.ledger.services.rules_access import ZERO_KG, kg
from app.statistics.services.anomalies import anomalies


def _balances(session: Session, ids: list[int], since: datetime, until: datetime) -> dict[int, dict[str, Decimal]]:
    out = {i: {"generated_kg": ZERO_KG, "shipped_kg": ZERO_KG, "on_site_kg": ZERO_KG} for i in ids}
    if not ids:
        return out
    rows = session.execute(
        select(LedgerRecord.enterprise_id, LedgerRecord.stage, func.sum(LedgerRecord.quantity_kg))
        .where(
            LedgerRecord.enterprise_id.in_(ids),
            LedgerRecord.stage.in_((Stage.GENERATION, Stage.SENT_OUT)),
            LedgerRecord.occurred_at >= since,
            LedgerRecord.occurred_at < until,
        )
        .group_by(LedgerRecord.enterprise_id, LedgerRecord.stage)
    )
    for org_id, stage, total in rows:
        out[org_id]["generated_kg" if stage == Stage.GENERATION else "shipped_kg"] = kg(total or 0)
    stock = session.execute(
        select(WasteStock.enterprise_id, func.sum(WasteStock.on_hand_kg))
        .where(WasteStock.enterprise_id.in_(ids))
        .group_by(WasteStock.enterprise_id)
    )
    for org_id, total in stock:
        out[org_id]["on_site_kg"] = kg(total or 0)
    return out


def _judged(item: dict[str, Any]) -> dict[str, Any]:
    """(the quantity the rule judged, its limit, the difference between them) for one anomaly."""
    v, t = item["values"], item["thresholds"]
    code = item["code"]
    if code == "carbon_missing":
        return {
            "difference_kg": kg(v["filled_kg"]) - kg(v["removed_kg"]),
            "observed": v["ratio"],
            "tolerance": t["min_ratio"],
            "unit": "ratio",
        }
    if code == "received_short":
        return {
            "difference_kg": kg(v["shipped_kg"]) - kg(v["received_kg"]),
            "observed": v["ratio"],
            "tolerance": t["min_ratio"],
            "unit": "ratio",
        }
    if code == "storage_over_limit":
        return {
            "difference_kg": kg(v["on_hand_kg"]) - kg(t["max_on_site_kg"]),
            "observed": v["on_hand_kg"],
            "tolerance": t["max_on_site_kg"],
            "unit": "kg",
        }
    if code == "stored_too_long":
        return {
            "difference_kg": kg(v["on_site_kg"]),
            "observed": v["oldest_days"],
            "tolerance": t["storage_limit_days"],
            "unit": "days",
        }
    if code == "shipped_not_received":
        return {
            "difference_kg": kg(v["quantity_kg"]),
            "observed": v["manifests"],
            "tolerance": t["receipt_working_days"],
            "unit": "working_days",
        }
    return {"difference_kg": None, "observed": None, "tolerance": None, "unit": ""}


def anomaly_figures(
    session: Session,
    actor: Principal,
    *,
    enterprise: int | None = None,
    county: str | None = None,
    park: int | None = None,
    start: date | None = None,
    end: date | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The anomalies ``actor`` may see, each with its enterprise's balance and the judged figures."""
    found = anomalies(session, actor, enterprise=enterprise, start=start, end=end, now=now)
    items = [
        i for i in found["items"] if (not county or i["county_code"] == county) and (not park or i["park_id"] == park)
    ]
    balances = _balances(session, sorted({i["enterprise_id"] for i in items}), found["from"], found["to"])
    rows = [{**i, **_judged(i), "balance": balances[i["enterprise_id"]]} for i in items]
    return {"from": found["from"], "to": found["to"], "items": rows}
