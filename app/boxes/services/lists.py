"""The regulator's red and yellow box lists: filtered, searched, sorted, in keyset pages.

Read from what is stored: the box's colour and reasons (``Box.colour``, ``Box.colour_reasons``,
kept current by :mod:`app.boxes.services.colours`) and, for the days in the colour, the moment
of the box's latest entry in its colour history (``ColourChange``). Nothing is evaluated per row,
except the saturation, which the box does not store yet: it is evaluated for the rows of the page
shown (one batch) and, to sort by it, for the whole filtered list, which is bounded by
``SORT_LIMIT`` (see :func:`saturations`, the one place to switch to a stored column).

Pages are keyset pages (:mod:`app.common.pagination`): a cursor names the row a page starts after
(or ends before), by the sort's key ended by the unique box code, so paging stays stable while
boxes change colour and costs the same at any depth; the saturation sort pages the same way over
its bounded, evaluated list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from app.accounts.models import County, Organization, OrganizationRole, Park
from app.accounts.services import Principal, enterprise_scope
from app.boxes.models import Box, ColourChange
from app.boxes.services.access import box_scope
from app.boxes.services.colours import evaluate_boxes, refresh_due
from app.common.pagination import CappedCount, KeysetPage, count_upto, keyset_pages, keyset_slice
from app.common.timeutil import from_db

LIST_COLOURS = ("red", "yellow")
SORTS = ("days", "enterprise", "saturation")
PER_PAGE = 50
#: The most rows an export or a saturation sort reads (a county holds a few hundred red boxes).
SORT_LIMIT = 5000


@dataclass
class BoxFilters:
    """What the regulator asked for; unknown values are dropped by the view before."""

    county: str | None = None
    park: int | None = None
    enterprise: int | None = None
    q: str = ""
    sort: str = "days"


@dataclass
class ColourRow:
    box: Box
    since: datetime | None
    days: float | None
    saturation: float | None = None


@dataclass
class ColourPage:
    colour: str
    rows: list[ColourRow]
    total: CappedCount  # up to COUNT_CAP, "1,000+" beyond (app.common.pagination.count_upto)
    page: KeysetPage  # its cursors (上一页 / 下一页)


def _since():
    """The start of the box's current colour: its latest colour-history entry (else the stored moment)."""
    latest = (
        select(func.max(ColourChange.changed_at))
        .where(ColourChange.box_id == Box.id, ColourChange.colour == Box.colour)
        .correlate(Box)
        .scalar_subquery()
    )
    return func.coalesce(latest, Box.colour_since)


def _boxes_since(result: Any) -> Iterable[tuple[Box, datetime | None]]:
    """The rows of :func:`colour_query`: a box and when it took its colour."""
    return cast("Iterable[tuple[Box, datetime | None]]", result)


def colour_query(actor: Principal, colour: str, filters: BoxFilters):
    """(Box, since) rows of ``colour`` that ``actor`` may see, filtered and searched, unsorted."""
    since = _since().label("since")
    query = (
        select(Box, since)
        .join(Organization, Organization.id == Box.enterprise_id)
        .where(box_scope(actor), Box.colour == colour)
    )
    if filters.county:
        query = query.where(Organization.county_code == filters.county)
    if filters.park:
        query = query.where(Organization.park_id == filters.park)
    if filters.enterprise:
        query = query.where(Box.enterprise_id == filters.enterprise)
    q = filters.q.strip()
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(Box.code.ilike(like.upper(), escape="\\"), Organization.name.ilike(like, escape="\\")))
    return query, since


def saturations(session: Session, boxes: list[Box], now: datetime) -> dict[int, float | None]:
    """Each box's saturation now (one batch evaluation; a stored column will replace it)."""
    if not boxes:
        return {}
    return {box_id: ev.saturation for box_id, ev in evaluate_boxes(session, boxes, now).items()}


def _row(box: Box, since: datetime | None, now: datetime) -> ColourRow:
    since = from_db(since) if since else None
    return ColourRow(box, since, (now - since).total_seconds() / 86400 if since else None)


def colour_list(
    session: Session,
    actor: Principal,
    colour: str,
    filters: BoxFilters,
    now: datetime,
    *,
    cursor: str | None = None,
    per_page: int = PER_PAGE,
    page: int = 1,  # the first page (exports pass 1); later pages by ``cursor``
) -> ColourPage:
    """One page of the ``colour`` boxes ``actor`` may see (``per_page=SORT_LIMIT`` for an export);
    a ``cursor`` that does not fit is :class:`InvalidInput` on ``cursor``."""
    refresh_due(session, now)  # colours that time alone changed since the last sweep
    query, since = colour_query(actor, colour, filters)
    total = count_upto(session, query)
    if filters.sort == "saturation":
        rows = [_row(b, s, now) for b, s in _boxes_since(session.execute(query.order_by(Box.id).limit(SORT_LIMIT)))]
        found = saturations(session, [r.box for r in rows], now)
        for r in rows:
            r.saturation = found.get(r.box.id)
        rows.sort(key=_by_saturation)
        shown = keyset_slice(rows, _by_saturation, cursor, per_page)
        return ColourPage(colour, shown.items, total, shown)
    if filters.sort == "enterprise":
        keyed = query.add_columns(Organization.name.label("sort_name"))
        keys = [(Organization.name, False, lambda row: row.sort_name), (Box.code, False, lambda row: row[0].code)]
    else:  # longest in the colour first
        keyed = query
        keys = [(since, False, lambda row: row[1]), (Box.code, False, lambda row: row[0].code)]
    shown = keyset_pages(session, keyed, cursor, per_page, keys)
    rows = [_row(row[0], row[1], now) for row in shown.items]
    found = saturations(session, [r.box for r in rows], now)
    for r in rows:
        r.saturation = found.get(r.box.id)
    return ColourPage(colour, rows, total, shown)


def _by_saturation(row: ColourRow) -> tuple[Decimal, str]:
    """The saturation sort's key: fullest first (none last), then the code; exact, for the cursor."""
    saturation = Decimal(str(round(row.saturation, 6))) if row.saturation is not None else Decimal(-1)
    return (-saturation, row.box.code)


#: The most enterprises the filter offers as choices. A city holds 10,000: past this the choice is
#: narrowed by county or park first (or the list searched by name), not a select of 10,000 options
#: loaded and rendered on every page.
ENTERPRISE_CHOICES = 300


def _visible_enterprises(actor: Principal):
    """The enterprises ``actor`` may filter by: the generators of its jurisdiction and the
    enterprises of the boxes it sees (a condition on ``Organization``)."""
    generators = select(OrganizationRole.organization_id).where(OrganizationRole.role == "generator")
    return or_(
        and_(enterprise_scope(actor), Organization.id.in_(generators)),
        Organization.id.in_(select(Box.enterprise_id).where(box_scope(actor))),
    )


def filter_choices(
    session: Session, actor: Principal, county: str | None = None, park: int | None = None
) -> dict[str, Any]:
    """The counties, parks and enterprises ``actor`` may filter by (see :func:`_visible_enterprises`).
    The enterprises are those of the chosen county and park, at most :data:`ENTERPRISE_CHOICES`:
    ``enterprises_more`` says there are more (the page then asks to narrow first)."""
    visible = _visible_enterprises(actor)
    county_codes = select(Organization.county_code).where(visible)
    park_ids = select(Organization.park_id).where(visible)
    counties = list(session.scalars(select(County).where(County.code.in_(county_codes)).order_by(County.code)))
    parks = list(session.scalars(select(Park).where(Park.id.in_(park_ids)).order_by(Park.county_code, Park.name)))
    narrowed = select(Organization).where(visible)
    if county:
        narrowed = narrowed.where(Organization.county_code == county)
    if park:
        narrowed = narrowed.where(Organization.park_id == park)
    enterprises = list(
        session.scalars(narrowed.order_by(Organization.county_code, Organization.name).limit(ENTERPRISE_CHOICES + 1))
    )
    more = len(enterprises) > ENTERPRISE_CHOICES
    return {
        "counties": counties,
        "parks": parks,
        "enterprises": [] if more else enterprises,
        "enterprises_more": more,
    }


def may_filter_by(session: Session, actor: Principal, enterprise_id: int) -> bool:
    """Whether ``enterprise_id`` is one of the enterprises ``actor`` may filter by (one row read,
    not the list of them)."""
    found = select(Organization.id).where(Organization.id == enterprise_id, _visible_enterprises(actor))
    return session.scalar(found) is not None
