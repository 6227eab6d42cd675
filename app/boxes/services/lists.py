"""The regulator's red and yellow box lists: filtered, searched, sorted, in keyset pages.

Read from what is stored: the box's colour and reasons (``Box.colour``, ``Box.colour_reasons``,
kept current by :mod:`app.boxes.services.colours`), for the days in the colour the moment of the
box's latest entry in its colour history (``ColourChange``), and the saturation its read shows
(the stored evaluation's, worked out for now on the design load: :func:`saturation_now`, SQL).
Nothing is evaluated per row; the saturation sort is an ORDER BY over the whole filtered list
(it used to evaluate, in Python, the first ``SORT_LIMIT`` boxes by id: 3 s for a city's red ones,
and a list longer than that was not sorted whole).

Pages are keyset pages (:mod:`app.common.pagination`): a cursor names the row a page starts after
(or ends before), by the sort's key ended by the unique box code, so paging stays stable while
boxes change colour and costs the same at any depth.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import BigInteger, Float, and_, case, func, literal, or_, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session, aliased, lazyload

from app.accounts.models import County, Organization, OrganizationRole, Park
from app.accounts.services import Principal, enterprise_scope
from app.boxes.models import Box, ColourChange, Fill
from app.boxes.services.access import box_scope
from app.boxes.services.colours import refresh_due
from app.common.epoch import EpochSeconds
from app.common.pagination import CappedCount, KeysetPage, count_upto, keyset_pages
from app.common.timeutil import from_db

LIST_COLOURS = ("red", "yellow")
SORTS = ("days", "enterprise", "saturation")
PER_PAGE = 50
#: The most rows an export reads (a county holds a few thousand red boxes).
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
    """(Box, since) rows of ``colour`` that ``actor`` may see, filtered and searched, unsorted.

    The boxes' organisations are not joined to the rows (``lazyload``): the sort then carries the
    boxes alone (a city's 48,000 yellow ones were each joined to two organisations, their counties
    and parks before the sort kept 50); :func:`_with_organisations` reads the page's in one go."""
    since = _since().label("since")
    query = (
        select(Box, since)
        .join(Organization, Organization.id == Box.enterprise_id)
        .where(box_scope(actor), Box.colour == colour)
        .options(lazyload(Box.enterprise), lazyload(Box.service_org))
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


def _with_organisations(session: Session, rows: list[ColourRow]) -> list[ColourRow]:
    """The rows' enterprises and services in one statement, set on their boxes (a many-to-one
    by primary key finds them in the session: no statement per row)."""
    ids = sorted({r.box.enterprise_id for r in rows} | {r.box.service_org_id for r in rows if r.box.service_org_id})
    if ids:
        found = {o.id: o for o in session.scalars(select(Organization).where(Organization.id.in_(ids)))}
        for r in rows:
            assert found[r.box.enterprise_id] is r.box.enterprise  # taken from the session, not read again
            if r.box.service_org_id is not None:
                assert found[r.box.service_org_id] is r.box.service_org
    return rows


#: The value of a saturation without bound (a fill of no capacity) in SQL: the sort's integer key
#: (millionths) holds it.
FULLEST = 1e12


def saturation_now(now: datetime):
    """The saturation a read of the box shows at ``now`` (app.boxes.services.stored), as SQL over
    ``Box`` and the stored evaluation's fill (:func:`with_stored_fill`): the stored figure, or, on
    the design load, the straight line from the fill (``derive_saturation``'s design branch, term
    for term); NULL without a fill; no bound (no capacity) as :data:`FULLEST`."""
    fill = _STORED_FILL
    design_load = Box.design_removed_mg_m3 * 1e-6 * Box.design_airflow_m3_h * Box.hours_per_day
    capacity = sql_cast(fill.mass_kg, Float) * Box.adsorption_capacity
    elapsed = (literal(now.timestamp(), Float) - EpochSeconds(fill.filled_at)) / 86400.0
    design = case(
        (capacity > 0, design_load * case((elapsed > 0, elapsed), else_=literal(0.0, Float)) / capacity),
        else_=literal(FULLEST, Float),
    )
    on_design = and_(Box.colour_detail["saturation_basis"].as_string() == "design", fill.id.is_not(None))
    return case((on_design, design), (Box.saturation > FULLEST, literal(FULLEST, Float)), else_=Box.saturation)


_STORED_FILL = aliased(Fill, name="stored_fill")


def with_stored_fill(query):
    """``query`` joined to the fill the box's stored evaluation names (none: no row joined)."""
    return query.outerjoin(_STORED_FILL, _STORED_FILL.id == Box.colour_detail["fill_id"].as_integer())


def saturations(session: Session, boxes: list[Box], now: datetime) -> dict[int, float | None]:
    """Each box's saturation now as its read shows it, in one statement (:func:`saturation_now`)."""
    if not boxes:
        return {}
    found = session.execute(
        with_stored_fill(select(Box.id, saturation_now(now))).where(Box.id.in_(sorted(b.id for b in boxes)))
    )
    out: dict[int, float | None] = {}
    for box_id, value in cast("Iterable[tuple[int, float | None]]", found):
        out[box_id] = None if value is None else (math.inf if value >= FULLEST else value)
    return out


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
    total = count_upto(session, query.with_only_columns(Box.id))  # the rows, not their since
    if filters.sort == "saturation":  # fullest first, none last, in SQL over every row of the list
        # An integer key (millionths, as the Python sort's was): a cursor holds it exactly and a
        # page's boundary compares equal on both backends (floats went through text and back).
        fullest = (-sql_cast(func.round(func.coalesce(saturation_now(now), -1.0) * 1e6), BigInteger)).label(
            "sort_saturation"
        )
        keyed = with_stored_fill(query).add_columns(fullest)
        keys = [(fullest, False, lambda row: row.sort_saturation), (Box.code, False, lambda row: row[0].code)]
    elif filters.sort == "enterprise":
        keyed = query.add_columns(Organization.name.label("sort_name"))
        keys = [(Organization.name, False, lambda row: row.sort_name), (Box.code, False, lambda row: row[0].code)]
    else:  # longest in the colour first
        keyed = query
        keys = [(since, False, lambda row: row[1]), (Box.code, False, lambda row: row[0].code)]
    shown = keyset_pages(session, keyed, cursor, per_page, keys)
    rows = _with_organisations(session, [_row(row[0], row[1], now) for row in shown.items])
    found = saturations(session, [r.box for r in rows], now)
    for r in rows:
        r.saturation = found.get(r.box.id)
    return ColourPage(colour, rows, total, shown)


#: The most enterprises the filter offers as choices. A city holds 10,000: past this the choice is
#: narrowed by county or park first (or the list searched by name), not a select of 10,000 options
#: loaded and rendered on every page.
ENTERPRISE_CHOICES = 300


def _visible_enterprises(actor: Principal):
    """The enterprises ``actor`` may filter by: the generators of its jurisdiction and the
    enterprises of the boxes it sees (a condition on ``Organization``).

    The boxes it sees are its jurisdiction's and those it serves (:func:`box_scope`), so their
    enterprises are the jurisdiction's that have a box (an index probe per organisation) and
    those of the boxes it serves (an index range): spelt as "enterprise of any box it sees", each
    of the page's three choice queries read every box of a city (100,000) for its 10,000 ids.
    tests/boxes/test_list_choices.py proves it equal to that spelling for every kind of reader."""
    generators = select(OrganizationRole.organization_id).where(OrganizationRole.role == "generator")
    has_box = select(Box.id).where(Box.enterprise_id == Organization.id).exists()
    visible = and_(enterprise_scope(actor), or_(Organization.id.in_(generators), has_box))
    org = actor.organization
    if org is not None and not (actor.is_operator or actor.is_device):
        visible = or_(visible, Organization.id.in_(select(Box.enterprise_id).where(Box.service_org_id == org.id)))
    return visible


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
