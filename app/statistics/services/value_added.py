"""Industrial value added (imported per scope and period): reading a period's figure, importing and listing them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, false, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.models import Park
from app.accounts.services import Principal
from app.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.common.periods import Period
from app.common.timeutil import utcnow
from app.statistics.models import VALUE_ADDED_SCOPES, ValueAdded
from app.statistics.services.periods import check_not_future, parse_period
from app.statistics.services.scopes import CITY, Scope, resolve_scope


@dataclass(frozen=True)
class ValueAddedFigure:
    value_10k_yuan: float
    source: str


def _months_of(period: Period) -> list[str]:
    return [month.label for month in period.month_periods()]


def value_added_figures(session: Session, scope: Scope, periods: list[Period]) -> dict[str, ValueAddedFigure]:
    """The imported value added of each period, in one query. A quarter or a year that was not
    imported as such is the sum of its months when every one of them was (statistics bureaux
    publish monthly figures); a partial sum is never used."""
    months = {p.label: _months_of(p) for p in periods if p.kind != "month"}
    labels = {p.label for p in periods} | {m for ms in months.values() for m in ms}
    rows = {
        row.period: row
        for row in session.scalars(
            select(ValueAdded).where(ValueAdded.scope_key == scope.key, ValueAdded.period.in_(sorted(labels)))
        )
    }
    out: dict[str, ValueAddedFigure] = {}
    for p in periods:
        row = rows.get(p.label)
        if row is not None:
            out[p.label] = ValueAddedFigure(row.value_added_10k_yuan, row.source_department)
        elif p.label in months and all(m in rows for m in months[p.label]):
            parts = [rows[m] for m in months[p.label]]
            sources = "、".join(sorted({r.source_department for r in parts}))
            out[p.label] = ValueAddedFigure(
                round(sum(r.value_added_10k_yuan for r in parts), 4),
                f"{sources}（{len(parts)} 个月合计 / sum of {len(parts)} months）",
            )
    return out


def _can_import(actor: Principal, scope: Scope) -> bool:
    if actor.is_operator:
        return True
    org = actor.organization
    if org is None or actor.is_device or not org.has_role("regulator"):
        return False
    return org.county_code is None or (scope.kind != "city" and scope.county_code == org.county_code)


def import_value_added(
    session: Session, actor: Principal, items: list[dict[str, Any]], now: datetime | None = None
) -> dict[str, Any]:
    """Upsert value-added figures. All or nothing: any bad item → 422 with its index and fields."""
    now = now or utcnow()
    if not (
        actor.is_operator or (actor.organization and not actor.is_device and actor.organization.has_role("regulator"))
    ):
        raise Forbidden("只有平台运维和市、区县生态环境部门可以导入工业增加值 (operators and regulators only)")
    errors: dict[str, dict[str, list[str]]] = {}
    resolved: list[tuple[Scope, Period, dict]] = []
    seen: dict[tuple[str, str], int] = {}
    for i, item in enumerate(items):
        problems: dict[str, list[str]] = {}
        kind = item.get("scope")
        scope: Scope | None = None
        try:
            if kind == "park":
                scope = resolve_scope(session, "park", item.get("park_id"))
            elif kind == "county":
                scope = resolve_scope(session, "county", item.get("county_code"))
            elif kind == "city":
                scope = CITY
            else:
                problems["scope"] = [f"one of {', '.join(VALUE_ADDED_SCOPES)}"]
        except NotFound as exc:
            problems["park_id" if kind == "park" else "county_code"] = [exc.detail]
        period = None
        try:
            period = parse_period(item.get("period"))
            check_not_future(period, now)
        except InvalidInput as exc:
            problems.update(exc.errors)
        value = item.get("value_added_10k_yuan")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            problems["value_added_10k_yuan"] = ["a number greater than 0 (10⁴ yuan)"]
        if not (item.get("source_department") or "").strip():
            problems["source_department"] = ["the department the figure comes from is required"]
        if scope is not None and period is not None and not problems:
            key = (scope.key, period.label)
            if key in seen:
                problems["period"] = [f"item {seen[key]} gives the same scope and period"]
            seen[key] = i
        if problems:
            errors[str(i)] = problems
        elif scope is not None and period is not None:
            if not _can_import(actor, scope):
                raise Forbidden(f"第 {i} 项超出您的辖区 (item {i}: {scope.name} is outside your jurisdiction)")
            resolved.append((scope, period, item))
    if errors:
        raise InvalidInput("Some value-added items are invalid; nothing was stored.", errors=errors)
    existing = (
        {
            (r.scope_key, r.period): r
            for r in session.scalars(
                select(ValueAdded).where(
                    or_(*[and_(ValueAdded.scope_key == s.key, ValueAdded.period == p.label) for s, p, _ in resolved])
                )
            )
        }
        if resolved
        else {}
    )
    created = updated = 0
    stored = []
    for scope, period, item in resolved:
        row = existing.get((scope.key, period.label))
        if row is None:
            row = ValueAdded(
                scope=scope.kind,
                scope_key=scope.key,
                park_id=scope.park_id,
                county_code=scope.county_code if scope.kind == "county" else None,
                period=period.label,
            )
            session.add(row)
            created += 1
        else:
            updated += 1
        row.value_added_10k_yuan = float(item["value_added_10k_yuan"])
        row.source_department = item["source_department"].strip()
        row.imported_by_user_id = actor.user.id if actor.user else None
        row.imported_at = now
        stored.append(row)
    try:
        session.flush()
    except Exception as exc:  # a concurrent import of the same scope and period won the race
        if isinstance(exc, IntegrityError):
            raise Conflict("同一范围和期间的工业增加值正被同时导入，请重试 (a concurrent import; retry)") from exc
        raise
    return {"created": created, "updated": updated, "items": stored}


def value_added_scope(actor: Principal):
    """The value-added rows ``actor`` may list: those of the scopes it may read."""
    if actor.is_operator:
        return true()
    org = actor.organization
    if org is None or actor.is_device:
        return false()
    conditions = []
    if org.has_role("regulator"):
        if org.county_code is None:
            return true()
        conditions.append(ValueAdded.county_code == org.county_code)
        conditions.append(ValueAdded.park_id.in_(select(Park.id).where(Park.county_code == org.county_code)))
    if org.has_role("park_admin") and org.park_id is not None:
        conditions.append(ValueAdded.park_id == org.park_id)
    return or_(*conditions) if conditions else false()


def list_value_added(session: Session, actor: Principal, scope: str | None = None, period: str | None = None):
    query = select(ValueAdded).where(value_added_scope(actor))
    if scope:
        query = query.where(ValueAdded.scope == scope)
    if period:
        query = query.where(ValueAdded.period == parse_period(period).label)
    return query.order_by(ValueAdded.period.desc(), ValueAdded.scope_key)
