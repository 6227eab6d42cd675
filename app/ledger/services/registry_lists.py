"""The regulator's manifest lists: overdue, discrepant and rejected, filtered, searched, sorted, paged.

Built on :func:`app.ledger.services.manifests.list_manifests` (its scope and its flags), with the
consignor's county, park and enterprise as filters, a search by number or consignor name, and the
shipped and received quantities summed in SQL so that the list sorts by them. Pages are keyset
pages (:mod:`app.common.pagination`): a cursor is the sort's key of the row a page starts after (or
ends before), ended by the unique manifest number, so paging is stable under new manifests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from app.accounts.models import Organization
from app.accounts.services import Principal
from app.common.pagination import CappedCount, KeysetPage, count_upto, keyset_pages
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
    total: CappedCount  # up to COUNT_CAP, "1,000+" beyond (app.common.pagination.count_upto)
    page: KeysetPage  # its cursors (上一页 / 下一页)
    tolerance: float


def flagged_manifests(
    session: Session,
    actor: Principal,
    flag: str,
    filters: ManifestFilters,
    now: datetime,
    *,
    cursor: str | None = None,
    per_page: int = PER_PAGE,
) -> ManifestPage:
    """One page of the manifests with ``flag`` that ``actor`` may read (``per_page=EXPORT_LIMIT``
    for an export); a ``cursor`` that does not fit is :class:`InvalidInput` on ``cursor``."""
    base = list_manifests(session, actor, flag=flag, now=now).order_by(None)
    consignor = aliased(Organization)

    # Each listed manifest's own lines summed (correlated, by the lines' index; SQLite has no
    # LATERAL): a grouped subquery of every line summed all 2·10⁶ lines of the city per page (5 s)
    # before the join kept a few.
    def lines_sum(column):
        return select(func.sum(column)).where(ManifestLine.manifest_id == Manifest.id).correlate(Manifest)

    shipped = lines_sum(ManifestLine.quantity_kg).scalar_subquery()
    received = lines_sum(ManifestLine.received_kg).scalar_subquery()
    query = base.join(consignor, consignor.id == Manifest.consignor_id)
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
    total = count_upto(session, query)  # the flagged manifests, without their lines' sums
    query = query.add_columns(shipped.label("shipped"), received.label("received"))
    sort_key: Any
    descending = False
    if filters.sort == "consignor":
        sort_key = consignor.name
    elif filters.sort == "quantity":
        sort_key, descending = shipped, True
    elif filters.sort == "difference":
        sort_key = func.abs(func.coalesce(received, shipped) - shipped)
        descending = True
    else:  # the oldest deadline (or pickup) first: what has waited longest
        sort_key = func.coalesce(Manifest.receipt_due_at, Manifest.picked_up_at, Manifest.created_at)
    keyed = query.add_columns(sort_key.label("sort_key"))
    keys = [(sort_key, descending, lambda row: row.sort_key), (Manifest.number, False, lambda row: row[0].number)]
    shown = keyset_pages(session, keyed, cursor, per_page, keys)
    # (Manifest, shipped, received, key): list_manifests' query is untyped, so its first column is named here.
    rows = [ManifestRow(cast(Manifest, row[0]), kg(row[1] or 0), kg_or_none(row[2])) for row in shown.items]
    return ManifestPage(flag, rows, total, shown, rules(session).quantity_tolerance)
