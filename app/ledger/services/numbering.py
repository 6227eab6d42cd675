"""National manifest numbers: validation and the per (year, prefecture) serial counter."""

from __future__ import annotations

import re
from datetime import datetime
from typing import cast

from sqlalchemy import Table, case, update
from sqlalchemy.orm import Session

from app.common.errors import Conflict
from app.common.timeutil import local_date
from app.ledger.locking import insert_ignore
from app.ledger.models import ManifestCounter

NUMBER_RE = re.compile(r"^\d{14}$")
# GB/T 2260 province-level codes (the two digits after the year in a manifest number).
PROVINCES = frozenset(
    {
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
    }
)


def number_problem(number: str, now: datetime) -> str | None:
    """Why ``number`` is not a national manifest number (year 4 + province 2 + prefecture 2 + serial 6)."""
    if not NUMBER_RE.match(number or ""):
        return "a manifest number has 14 digits: year, province, prefecture, 6-digit serial"
    year = int(number[:4])
    if not 2000 <= year <= local_date(now).year + 1:
        return f"year {year} is not plausible"
    if number[4:6] not in PROVINCES:
        return f"{number[4:6]} is not a province code (GB/T 2260)"
    if number[6:8] == "00":
        return "the prefecture code cannot be 00"
    if number[8:] == "000000":
        return "the serial cannot be 000000"
    return None


def _counter_row(session: Session, year: int, prefecture: str) -> None:
    insert_ignore(
        session, ManifestCounter, {"year": year, "prefecture": prefecture, "last_serial": 0}, ["year", "prefecture"]
    )


def _counters() -> Table:
    # Declarative types ``__table__`` as any FromClause; a model declared with columns maps a Table.
    return cast(Table, ManifestCounter.__table__)


def issue_number(session: Session, prefecture: str, year: int) -> str:
    """The next serial of (year, prefecture), atomically: UPDATE … RETURNING holds the counter row's
    lock until commit, so concurrent creations get consecutive, distinct serials."""
    _counter_row(session, year, prefecture)
    table = _counters()
    serial: int = session.execute(
        update(table)
        .where(table.c.year == year, table.c.prefecture == prefecture)
        .values(last_serial=table.c.last_serial + 1)
        .returning(table.c.last_serial)
    ).scalar_one()
    if serial > 999_999:
        raise Conflict(f"{year} 年 {prefecture} 的联单编号已用尽 (serials exhausted)")
    return f"{year}{prefecture}{serial:06d}"


def note_external_number(session: Session, number: str) -> None:
    """A number issued elsewhere (national system, paper) moves our counter past it, so that the
    numbers we issue next do not collide with it."""
    year, prefecture, serial = int(number[:4]), number[4:8], int(number[8:])
    _counter_row(session, year, prefecture)
    table = _counters()
    session.execute(
        update(table)
        .where(table.c.year == year, table.c.prefecture == prefecture)
        .values(last_serial=case((table.c.last_serial < serial, serial), else_=table.c.last_serial))
    )
