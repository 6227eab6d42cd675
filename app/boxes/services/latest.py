"""The latest fill of one box or many at a moment, and a box's last replacement."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from app.boxes.models import Fill


def last_replacement(session: Session, box_id: int) -> Fill | None:
    return session.scalar(
        select(Fill)
        .where(Fill.box_id == box_id, Fill.kind == "replacement")
        .order_by(Fill.filled_at.desc(), Fill.id.desc())
        .limit(1)
    )


def latest_fill(session: Session, box_id: int, at: datetime | None = None) -> Fill | None:
    query = select(Fill).where(Fill.box_id == box_id)
    if at is not None:
        query = query.where(Fill.filled_at <= at)
    return session.scalar(query.order_by(Fill.filled_at.desc(), Fill.id.desc()).limit(1))


def latest_fills(session: Session, box_ids: list[int], at: datetime) -> dict[int, Fill]:
    """The active fill of each box, in one query."""
    if not box_ids:
        return {}
    latest = (
        select(Fill.box_id, func.max(Fill.filled_at).label("filled_at"))
        .where(Fill.box_id.in_(box_ids), Fill.filled_at <= at)
        .group_by(Fill.box_id)
        .subquery()
    )
    rows = session.scalars(
        select(Fill).join(latest, and_(Fill.box_id == latest.c.box_id, Fill.filled_at == latest.c.filled_at))
    )
    return {f.box_id: f for f in rows}
