"""Imported indicator values: the all-or-nothing upsert (with an audit of replaced values) and the listing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.services import Principal
from app.common.errors import Conflict
from app.common.periods import Period
from app.common.timeutil import utcnow
from app.common.wiring import wiring_of
from app.index.importing import RawRows
from app.index.models import IndicatorValue, IndicatorValueRevision
from app.index.services.access import require_importer, require_score_reader
from app.index.services.rules import definition
from app.index.services.validation import validate_rows
from app.ledger.locking import acquire_write_lock

IMPORT_LOCK_KEY = 0x1D3C5A27  # the pg_advisory_xact_lock key of index imports (any constant unused elsewhere)


def import_values(session: Session, actor: Principal, raw: RawRows, now: datetime | None = None) -> dict[str, Any]:
    """Validate every row, then upsert them all (the caller commits). Counts what changed."""
    require_importer(actor)
    now = now or utcnow()
    rows = validate_rows(definition(session), raw, wiring_of(session).plausibility())
    user_id = actor.user.id if actor.user else None
    # One index import at a time. SQLite: the write lock. PostgreSQL: a transaction-scoped advisory
    # lock, taken before the existing values are read, so that a concurrent import of the same new
    # keys waits and then updates them (with an audit) instead of failing on the unique key.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": IMPORT_LOCK_KEY})
    else:
        acquire_write_lock(session)
    periods = sorted({r.period.label for r in rows})
    existing = {
        (v.county_code, v.period, v.indicator): v
        for v in session.scalars(select(IndicatorValue).where(IndicatorValue.period.in_(periods)).with_for_update())
    }
    inserted = updated = unchanged = 0
    for row in rows:
        current = existing.get(row.key)
        if current is None:
            session.add(
                IndicatorValue(
                    county_code=row.county_code,
                    period=row.period.label,
                    indicator=row.indicator,
                    value=row.value,
                    unit=row.unit,
                    source_department=row.source_department,
                    imported_at=now,
                    imported_by_user_id=user_id,
                )
            )
            inserted += 1
            continue
        if (current.value, current.unit, current.source_department) == (row.value, row.unit, row.source_department):
            unchanged += 1
            continue
        session.add(
            IndicatorValueRevision(
                value_id=current.id,
                value=current.value,
                unit=current.unit,
                source_department=current.source_department,
                imported_at=current.imported_at,
                imported_by_user_id=current.imported_by_user_id,
                replaced_at=now,
                replaced_by_user_id=user_id,
            )
        )
        current.value, current.unit, current.source_department = row.value, row.unit, row.source_department
        current.imported_at, current.imported_by_user_id = now, user_id
        updated += 1
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent import inserted one of the same keys first
        raise Conflict(
            "另一个导入同时写入了相同的指标，请重试 (a concurrent import wrote the same values; retry)"
        ) from exc
    return {
        "rows": len(rows),
        "inserted": inserted,
        "updated": updated,
        "unchanged": unchanged,
        "ignored_columns": raw.ignored_columns,
    }


def list_values(session: Session, actor: Principal, period: Period | None = None, county_code: str | None = None):
    """The imported values (a query), for checking what a score was computed from."""
    require_score_reader(actor)
    query = select(IndicatorValue).order_by(IndicatorValue.period, IndicatorValue.county_code, IndicatorValue.indicator)
    if period is not None:
        query = query.where(IndicatorValue.period == period.label)
    if county_code is not None:
        query = query.where(IndicatorValue.county_code == county_code)
    return query
