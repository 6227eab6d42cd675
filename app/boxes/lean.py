"""The lean read of one box: its stored evaluation in one SQL statement, no ORM.

A label scan and ``GET /api/v1/boxes/{code}`` are the most frequent requests, and for nearly
every box the answer is already stored (app.boxes.services.stored): the colour, its reasons,
saturation, predicted date and figures, beside the box's columns. One Core statement reads the
box, its enterprise, the fill the evaluation was made with and (for the scan page) the last
replacement; plain objects carry them to the same presenter (app.boxes.presenters) and template
the ordinary path uses, so the two show the same thing. No session, no identity map, no unit of
work: nothing is loaded that the answer does not show.

When the stored evaluation cannot be shown as it is (never stored, other rules, its next check
has come), :func:`read_box` answers None and the caller takes the ordinary path, which evaluates,
stores and commits (``commit_read_effects``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Subquery, bindparam, select, true
from sqlalchemy.engine import Engine

from app.accounts.models import Organization
from app.boxes.colour import Evaluation, RuleSet
from app.boxes.models import Box, Fill
from app.boxes.services.stored import evaluation_from_stored, is_stored_current
from app.common.fastread import Row, core_reader

_boxes = Box.__table__
_orgs = Organization.__table__
_fills = Fill.__table__
_current = _fills.alias("current_fill")
_last = _fills.alias("last_replacement")
_replacements = _fills.alias("replacements")

BOX_COLUMNS = tuple(c.name for c in _boxes.columns)
FILL_COLUMNS = tuple(c.name for c in _fills.columns)
#: The last replacement's columns the scan page shows (scan.html: when, and the waste weighed).
LAST_REPLACEMENT_COLUMNS = ("id", "filled_at", "removed_waste_kg")


def _statement(with_last_replacement: bool, caller: Subquery | None = None) -> Select:
    columns: list[Any] = [*_boxes.columns]
    columns += [_orgs.c.name.label("enterprise_name"), _orgs.c.county_code, _orgs.c.park_id]
    columns += [c.label(f"fill_{c.name}") for c in _current.columns]
    stored_fill_id = Box.colour_detail["fill_id"].as_integer()
    query = (
        select(*columns)
        .select_from(_boxes)
        .join(_orgs, _orgs.c.id == _boxes.c.enterprise_id)
        .outerjoin(_current, _current.c.id == stored_fill_id)
    )
    if with_last_replacement:
        # services.last_replacement: the box's latest replacement, by when it was made.
        latest = (
            select(_replacements.c.id)
            .where(_replacements.c.box_id == _boxes.c.id, _replacements.c.kind == "replacement")
            .order_by(_replacements.c.filled_at.desc(), _replacements.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        # Only what the page shows of it (and its id: is there one).
        query = query.add_columns(*[_last.c[name].label(f"last_{name}") for name in LAST_REPLACEMENT_COLUMNS])
        query = query.outerjoin(_last, _last.c.id == latest)
    if caller is not None:
        # The caller's token (app.common.auth.LEAN_CALLER) in the same statement: one round
        # trip a request instead of two. At most one row (a token hash is unique), none when
        # the token is unknown; the box's row comes either way.
        query = query.add_columns(*[c.label(f"{CALLER_PREFIX}{c.name}") for c in caller.c])
        query = query.outerjoin(caller, true())
    return query.where(_boxes.c.code == bindparam("code"))


CALLER_PREFIX = "caller_"
BOX_READ = _statement(with_last_replacement=False)
SCAN_READ = _statement(with_last_replacement=True)
_WITH_CALLER: dict[tuple[bool, Subquery], Select] = {}


def _statement_for(with_last_replacement: bool, caller: Subquery | None) -> Select:
    """The read's statement, built once per caller subquery (the reader compiles a statement
    once and keeps it by identity)."""
    if caller is None:
        return SCAN_READ if with_last_replacement else BOX_READ
    key = (with_last_replacement, caller)
    statement = _WITH_CALLER.get(key)
    if statement is None:
        statement = _WITH_CALLER.setdefault(key, _statement(with_last_replacement, caller))
    return statement


class LeanEnterprise:
    __slots__ = ("county_code", "id", "name", "park_id")

    def __init__(self, id: int, name: str, county_code: str | None, park_id: int | None) -> None:
        self.id, self.name, self.county_code, self.park_id = id, name, county_code, park_id


class LeanBox:
    """A box's columns as plain attributes, with the model's derived figures (the same code)."""

    enterprise: LeanEnterprise
    id: int
    code: str
    label_version: int
    revision: int
    enterprise_id: int
    service_org_id: int | None
    capacity_kg = Box.capacity_kg
    design_daily_load_kg = Box.design_daily_load_kg

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


class LeanFill:
    """A fill's columns as plain attributes (what FillOut and the templates read)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


@dataclass(frozen=True)
class LeanRead:
    box: LeanBox
    evaluation: Evaluation
    fill: LeanFill | None
    last_replacement: LeanFill | None
    #: The caller's token row (its columns without the prefix) when the read was asked with one;
    #: None when there is no such token.
    caller: Row | None = None

    @property
    def visibility(self) -> dict[str, Any]:
        """The facts :func:`app.boxes.services.can_see` decides on."""
        box = self.box
        return {
            "enterprise_id": box.enterprise_id,
            "service_org_id": box.service_org_id,
            "county_code": box.enterprise.county_code,
            "park_id": box.enterprise.park_id,
        }


def _fill(row: dict[str, Any], prefix: str, columns: tuple[str, ...] = FILL_COLUMNS) -> LeanFill | None:
    if row[f"{prefix}id"] is None:
        return None
    return LeanFill({name: row[f"{prefix}{name}"] for name in columns})


def read_stored(
    engine: Engine,
    code: str,
    now: datetime,
    digest: str,
    *,
    with_last_replacement: bool = False,
    caller: Subquery | None = None,
    caller_params: dict[str, Any] | None = None,
) -> Row | None:
    """The row of box ``code`` (normalised) when its stored evaluation may be shown at ``now``
    as it is; None otherwise (no such box, the evaluation must be renewed first, the database
    cannot be read this way). The row alone says whether a cached answer is still the box's
    (its ``revision``): the objects are built by :func:`from_row` only when one is needed."""
    statement = _statement_for(with_last_replacement, caller)
    try:
        row = core_reader.first(engine, statement, {"code": code, **(caller_params or {})})
    except LookupError:
        return None
    if row is None or not is_stored_current(row["colour_detail"], row["colour_next_check_at"], now, digest):
        return None
    return row


def caller_of(row: Row, caller: Subquery) -> Row | None:
    """The caller's token row of a read asked with ``caller`` (its columns without the prefix);
    None when there is no such token."""
    if row[f"{CALLER_PREFIX}kind"] is None:
        return None
    return Row({c.name: row[f"{CALLER_PREFIX}{c.name}"] for c in caller.c})


def visibility_of(row: Row) -> dict[str, Any]:
    """The facts :func:`app.boxes.services.can_see` decides on, from a read's row."""
    return {
        "enterprise_id": row["enterprise_id"],
        "service_org_id": row["service_org_id"],
        "county_code": row["county_code"],
        "park_id": row["park_id"],
    }


def from_row(
    row: Row, now: datetime, rules: RuleSet, *, with_last_replacement: bool = False, caller: Subquery | None = None
) -> LeanRead:
    """The read's objects (box, evaluation, fills, caller) from a row of :func:`read_stored`."""
    box = LeanBox({name: row[name] for name in BOX_COLUMNS})
    box.enterprise = LeanEnterprise(row["enterprise_id"], row["enterprise_name"], row["county_code"], row["park_id"])
    fill = _fill(row, "fill_")
    last = _fill(row, "last_", LAST_REPLACEMENT_COLUMNS) if with_last_replacement else None
    who = caller_of(row, caller) if caller is not None else None
    return LeanRead(box, evaluation_from_stored(box, fill, now, rules), fill, last, who)


def read_box(
    engine: Engine,
    code: str,
    now: datetime,
    rules: RuleSet,
    digest: str,
    *,
    with_last_replacement: bool = False,
    caller: Subquery | None = None,
    caller_params: dict[str, Any] | None = None,
) -> LeanRead | None:
    """Box ``code`` (normalised) as its stored evaluation shows it at ``now``; None when there
    is no such box, when the stored evaluation must be renewed first, or when the database
    cannot be read this way (the caller's ordinary path then decides, and answers 404 itself).
    ``caller`` (a one-row subquery with its ``caller_params``) is read in the same statement and
    comes back as :attr:`LeanRead.caller`."""
    row = read_stored(
        engine,
        code,
        now,
        digest,
        with_last_replacement=with_last_replacement,
        caller=caller,
        caller_params=caller_params,
    )
    if row is None:
        return None
    return from_row(row, now, rules, with_last_replacement=with_last_replacement, caller=caller)
