"""The regulator's manifest lists: overdue, discrepant and rejected, filtered, searched, sorted, paged.

Built on :func:`app.ledger.services.manifests.list_manifests` (its scope and its flags), with the
consignor's county, park and enterprise as filters, a search by number or consignor name, and the
shipped and received quantities summed in SQL so that the list sorts by them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from app.accounts.models import Organization
from app.accounts.services import Principal
from app.ledger.models import Manifest, ManifestLine
from app.ledger.services.manifests import list_manifests
from app.ledger.services.rules_access import kg, kg_or_none, rules

LIST_FLAGS = ("overdue", "discrepant", "rejected")
SORTS = ("due", "consignor", "quantity", "difference")
PER_PAGE = 50
EXPORT_LIMIT = 5000


@dataclass
class ManifestFilters:
    county: str | None = None
    park: int | None = None
    enterprise: int | None = None
    q: str = ""
    sort: str = "due"


@dataclass
class ManifestRow:
    manifest: Manifest
    shipped_kg: Decimal
    received_kg: Decimal | None

    @property
    def difference_kg(self) -> Decimal | None:
        return None if self.received_kg is None else self.received_kg - self.shipped_kg

    @property
    def difference_share(self) -> float | None:
        if self.received_kg is None or not self.shipped_kg:
            return None
        return float((self.received_kg - self.shipped_kg) / self.shipped_kg)


@dataclass
class ManifestPage:
    flag: str
    rows: list[ManifestRow]
    total: int
    page: int
    per_page: int
    tolerance: float
    pages: int = field(init=False)

    def __post_init__(self) -> None:
        self.pages = max(1, -(-self.total // self.per_page))


def flagged_manifests(
    session: Session,
    actor: Principal,
    flag: str,
    filters: ManifestFilters,
    now: datetime,
    *,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> ManifestPage:
    """One page of the manifests with ``flag`` that ``actor`` may read."""
    base = list_manifests(session, actor, flag=flag, now=now).order_by(None)
    consignor = aliased(Organization)
    totals = (
        select(
            ManifestLine.manifest_id.label("manifest_id"),
            func.sum(ManifestLine.quantity_kg).label("shipped"),
            func.sum(ManifestLine.received_kg).label("received"),
        )
        .group_by(ManifestLine.manifest_id)
        .subquery()
    )
    query = (
        base.add_columns(totals.c.shipped, totals.c.received)
        .join(consignor, consignor.id == Manifest.consignor_id)
        .outerjoin(totals, totals.c.manifest_id == Manifest.id)
    )
    if filters.county:
        query = query.where(consignor.county_code == filters.county)
    if filters.park:
        query = query.where(consignor.park_id == filters.park)
    if filters.enterprise:
        query = query.where(Manifest.consignor_id == filters.enterprise)
    q = filters.q.strip()
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(Manifest.number.ilike(like, escape="\\"), consignor.name.ilike(like, escape="\\")))
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    page = max(1, min(page, max(1, -(-total // per_page))))
    order: tuple[Any, ...]
    if filters.sort == "consignor":
        order = (consignor.name, Manifest.number)
    elif filters.sort == "quantity":
        order = (totals.c.shipped.desc(), Manifest.number)
    elif filters.sort == "difference":
        order = (
            func.abs(func.coalesce(totals.c.received, totals.c.shipped) - totals.c.shipped).desc(),
            Manifest.number,
        )
    else:  # the oldest deadline (or pickup) first: what has waited longest
        order = (func.coalesce(Manifest.receipt_due_at, Manifest.picked_up_at, Manifest.created_at), Manifest.number)
    found = session.execute(query.order_by(*order).limit(per_page).offset((page - 1) * per_page)).all()
    # (Manifest, shipped, received): list_manifests' query is untyped, so its first column is named here.
    rows = [ManifestRow(cast(Manifest, row[0]), kg(row[1] or 0), kg_or_none(row[2])) for row in found]
    return ManifestPage(flag, rows, total, page, per_page, rules(session).quantity_tolerance)
