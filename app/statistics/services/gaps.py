"""Why a month of the landfill chart has no point: the words the statistics page shows under it.

A month has a landfill share only when waste of the scope was processed in it. Without one, the
reason is the first that holds: waste was recorded in the scope's ledgers in that month but none
of it was processed then (``not_processed``); no enterprise (产废单位) of the scope was registered
yet by the month's end (``not_registered``); nothing was recorded (``no_records``). One query for the registrations, one per empty month (at most 12).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import Organization, OrganizationRole
from app.common.timeutil import from_db
from app.statistics.rollup_models import WasteMonth
from app.statistics.services.periods import Period
from app.statistics.services.scopes import Scope

REASONS = ("not_registered", "no_records", "not_processed")


def empty_months(session: Session, scope: Scope, series: list[dict[str, Any]]) -> dict[str, str]:
    """Period label → reason, for the months of ``series`` without a landfill share."""
    empty = [Period.parse(p["period"]) for p in series if p["landfill_share"] is None]
    if not empty:
        return {}
    generators = select(OrganizationRole.organization_id).where(OrganizationRole.role == "generator")
    first = session.scalar(
        select(func.min(Organization.created_at)).where(
            scope.enterprises(Organization.id), Organization.id.in_(generators)
        )
    )
    out: dict[str, str] = {}
    for month in empty:
        records = session.scalar(  # the ledger roll-up of the month (app/statistics/rollup_models.py)
            scope.restrict(
                select(func.coalesce(func.sum(WasteMonth.ledger_count), 0)).where(WasteMonth.month == month.label),
                WasteMonth.enterprise_id,
            )
        )
        if records:  # records entered afterwards for a month before the registration count as data
            out[month.label] = "not_processed"
        elif first is None or from_db(first) >= month.end_utc:
            out[month.label] = "not_registered"
        else:
            out[month.label] = "no_records"
    return out
