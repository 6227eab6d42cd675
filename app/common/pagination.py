"""Keyset pagination of the API's lists (``cursor``), with ``page`` kept for compatibility.

A list's order is its query's ``ORDER BY`` (ended by the primary key, added when missing, so the
order is total). A page's ``next_cursor`` is the base64 of the last item's sort key; the next page
is the rows after that key (``(a, b) > (x, y)`` spelt out per column and direction), so reading a
10⁶-row list costs the same per page at the end as at the start, and rows inserted meanwhile never
make a row appear twice or push one out of the pages (OFFSET does both). The cursor is opaque to
clients: it is not signed because it grants nothing (the query keeps its visibility filter), but a
cursor that does not fit the list is a 422 on ``cursor``, never a 500.

``page`` still works up to :data:`MAX_OFFSET` rows deep (OFFSET is linear in the depth); ``total``
is counted only for ``page`` requests (the count reads every row the caller may see), not per cursor.

The pages' lists (:func:`keyset_pages`, :func:`keyset_slice`; app/web/paging.py shows them) page
the same way in both directions, "下一页" and "上一页": their cursor carries the direction too. No
page list uses OFFSET.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import and_, false, func, inspect, or_, select
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from app.common.errors import InvalidInput

MAX_OFFSET = 10_000
MAX_PER_PAGE = 500


class PageArgs(Schema):
    page = fields.Int(
        load_default=1,
        validate=validate.Range(min=1, max=MAX_OFFSET),
        metadata={
            "description": f"compatibility: page number, at most {MAX_OFFSET:,} rows deep "
            "((page - 1) × per_page); use `cursor` to read further"
        },
    )
    per_page = fields.Int(load_default=50, validate=validate.Range(min=1, max=MAX_PER_PAGE))
    cursor = fields.Str(
        validate=validate.Length(min=1, max=2000),
        metadata={"description": "keyset: the `next_cursor` of the previous page (then `page` must be 1 or absent)"},
    )

    @validates_schema
    def _bounded(self, data, **kwargs):
        page, per_page = data.get("page", 1), data.get("per_page", 50)
        if (page - 1) * per_page >= MAX_OFFSET:
            raise ValidationError(f"at most {MAX_OFFSET:,} rows deep: use `cursor` (next_cursor)", "page")
        if data.get("cursor") and page != 1:
            raise ValidationError("give either `page` or `cursor`", "page")


# ---------------------------------------------------------------- cursors


def encode_cursor(values: list[Any]) -> str:
    tagged: list[Any] = []
    for value in values:
        if isinstance(value, datetime):
            tagged.append({"t": value.isoformat()})
        elif isinstance(value, Decimal):
            tagged.append({"d": str(value)})
        elif isinstance(value, str):  # StrEnum states too, as their text
            tagged.append(str(value))
        else:
            tagged.append(value)
    raw = json.dumps(tagged, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, size: int) -> list[Any]:
    """The values of a cursor of ``size`` keys; 422 on ``cursor`` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        tagged = json.loads(raw)
        if not isinstance(tagged, list) or len(tagged) != size:
            raise ValueError("wrong size")
        values: list[Any] = []
        for item in tagged:
            if isinstance(item, dict) and set(item) == {"t"}:
                values.append(datetime.fromisoformat(item["t"]))
            elif isinstance(item, dict) and set(item) == {"d"}:
                values.append(Decimal(item["d"]))
            elif item is None or isinstance(item, (int, str, bool)):
                values.append(item)
            else:
                raise ValueError("not a key")
            if isinstance(values[-1], Decimal) and not values[-1].is_finite():
                raise ValueError("not finite")
    except (ValueError, TypeError, binascii.Error, ArithmeticError, UnicodeDecodeError) as exc:
        raise InvalidInput.field("cursor", "not a cursor of this list (use the `next_cursor` it returned)") from exc
    return values


# ---------------------------------------------------------------- keys of a query


def sort_keys(query) -> list[tuple[Any, bool, str]] | None:
    """``(column, descending, attribute)`` per ORDER BY term, ended by the primary key; None when
    the order is not plain columns of the listed entity (the list then pages by OFFSET only)."""
    descriptions = query.column_descriptions
    if len(descriptions) != 1 or descriptions[0].get("entity") is None:
        return None
    mapper = inspect(descriptions[0]["entity"])
    attribute_of = {prop.columns[0].key: prop.key for prop in mapper.column_attrs if len(prop.columns) == 1}
    keys: list[tuple[Any, bool, str]] = []
    for clause in query._order_by_clauses:
        descending = False
        element = clause
        if isinstance(clause, UnaryExpression) and clause.modifier in (operators.desc_op, operators.asc_op):
            descending = clause.modifier is operators.desc_op
            element = clause.element
        key = getattr(element, "key", None)
        table = getattr(element, "table", None)
        if key not in attribute_of or table is None or table not in mapper.tables:
            return None
        keys.append((element, descending, attribute_of[key]))
    pk = mapper.primary_key
    if len(pk) != 1 or pk[0].key not in attribute_of:
        return None
    if not keys or keys[-1][0].key != pk[0].key:
        keys.append((pk[0], False, attribute_of[pk[0].key]))
    return keys


def after_key(keys: list[tuple[Any, bool, str]], values: list[Any]):
    """Rows strictly after ``values`` in the order ``keys`` (see :func:`ordered` for the NULLs)."""
    terms = []
    for i, (column, descending, _) in enumerate(keys):
        value = values[i]
        equal_before = [c.is_(None) if v is None else c == v for (c, _, _), v in zip(keys[:i], values[:i], strict=True)]
        nullable = getattr(column, "nullable", True)
        if value is None:  # NULLs come last ascending, first descending
            step = column.is_not(None) if descending else false()
        elif descending:
            step = and_(column < value, column.is_not(None)) if nullable else column < value
        else:
            step = or_(column > value, column.is_(None)) if nullable else column > value
        terms.append(and_(*equal_before, step))
    return or_(*terms)


def ordered(query, keys: list[tuple[Any, bool, str]]):
    """``query`` ordered by ``keys``, NULLs last ascending and first descending on every backend
    (PostgreSQL's default, which its indexes serve)."""
    terms = []
    for column, descending, _ in keys:
        term = column.desc() if descending else column.asc()
        if getattr(column, "nullable", True):  # SQLite sorts NULLs first, PostgreSQL last: say it
            term = term.nulls_first() if descending else term.nulls_last()
        terms.append(term)
    return query.order_by(None).order_by(*terms)


# ---------------------------------------------------------------- pages


def keyset_page(session, query, args: dict[str, Any]) -> dict[str, Any]:
    """One page of ``query`` as {items, total, page, per_page, next_cursor}."""
    per_page = args.get("per_page", 50)
    page = args.get("page", 1)
    cursor = args.get("cursor")
    keys = sort_keys(query)
    if keys is None:
        if cursor:
            raise InvalidInput.field("cursor", "this list pages by `page` only")
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        items = list(session.scalars(query.limit(per_page).offset((page - 1) * per_page)))
        return {"items": items, "total": total, "page": page, "per_page": per_page, "next_cursor": None}
    total = None
    paged = ordered(query, keys)
    if cursor:
        paged = paged.where(after_key(keys, decode_cursor(cursor, len(keys))))
    else:
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        paged = paged.offset((page - 1) * per_page)
    items = list(session.scalars(paged.limit(per_page + 1)))
    next_cursor = None
    if len(items) > per_page:
        items = items[:per_page]
        next_cursor = encode_cursor([getattr(items[-1], attribute) for _, _, attribute in keys])
    return {"items": items, "total": total, "page": page, "per_page": per_page, "next_cursor": next_cursor}


def page_fields(item_schema) -> dict[str, Any]:
    return {
        "items": fields.List(fields.Nested(item_schema)),
        "total": fields.Int(
            allow_none=True, metadata={"description": "rows in the list; null on `cursor` pages (not counted)"}
        ),
        "page": fields.Int(),
        "per_page": fields.Int(),
        "next_cursor": fields.Str(
            allow_none=True, metadata={"description": "pass as `cursor` for the next page; null on the last page"}
        ),
        "next": fields.Str(allow_none=True, metadata={"description": "the next page's URL (also the `Link` header)"}),
    }


# ---------------------------------------------------------------- the pages' lists (上一页 / 下一页)


class BadPageCursor(Exception):
    """A page list's ``cursor`` that does not fit the list: the pages answer it with a 400 page
    (app/web/paging.py), whichever package's page helper read it. ``name``: the query-string
    name it came in (``cursor``, or a second list's own)."""

    def __init__(self, detail: str, name: str = "cursor") -> None:
        super().__init__(detail)
        self.name = name


#: A sort key of a list: (column or expression, descending, the item's value: attribute name or function).
Key = tuple[Any, bool, Any]


@dataclass
class KeysetPage:
    """One page of a page list: its items and the cursors of the pages before and after (None at an end)."""

    items: list[Any]
    per_page: int
    next_cursor: str | None = None
    prev_cursor: str | None = None

    @property
    def paged(self) -> bool:
        return self.next_cursor is not None or self.prev_cursor is not None


#: The most rows a page list's total counts (:func:`count_upto`).
COUNT_CAP = 1000


@dataclass(frozen=True)
class CappedCount:
    """A list's total counted up to a cap: ``n`` rows, and whether there are more than that.
    Its text is the number, or "1,000+" past the cap (what the pages show after "共")."""

    n: int
    more: bool = False

    def __str__(self) -> str:
        return f"{self.n:,}+" if self.more else str(self.n)

    def __int__(self) -> int:
        return self.n


def count_upto(session, query, cap: int | None = None) -> CappedCount:
    """The rows of ``query`` counted up to ``cap`` (:data:`COUNT_CAP`): a count that reads at most
    ``cap + 1`` rows, whatever the list's size.

    The rule for the pages' totals ("共 N 条"): exact up to ``cap``, "1,000+" beyond. An exact
    count(*) reads every row the reader may see (10⁶ manifests for the city's regulator) on every
    page load, and past a thousand rows nobody pages through to the end: they narrow the filters
    or download the list, so the exact figure buys nothing a page needs. A figure that must be
    exact at any size belongs in a maintained roll-up, not in a list's heading.
    """
    cap = COUNT_CAP if cap is None else cap
    limited = query.order_by(None).limit(cap + 1).subquery()
    n = session.scalar(select(func.count()).select_from(limited)) or 0
    return CappedCount(min(n, cap), n > cap)


def _value(item: Any, key: Key) -> Any:
    source = key[2]
    return source(item) if callable(source) else getattr(item, source)


def _page_cursor(direction: str, item: Any, keys: list[Key]) -> str:
    return encode_cursor([direction, *(_value(item, k) for k in keys)])


def keyset_pages(session, query, cursor: str | None, per_page: int, keys: list[Key] | None = None) -> KeysetPage:
    """One page of ``query`` for a page list: the first page, or the rows after (``下一页``) or before
    (``上一页``) the row a cursor names. The cursor is the direction and that row's sort key, so a page
    costs the same at any depth and rows inserted meanwhile neither repeat nor push a row out.

    ``keys`` defaults to the query's ORDER BY (:func:`sort_keys`, plain columns of one entity); a
    query of several columns (a row and computed figures) names its keys, each ended by a unique
    column. A cursor that does not fit is :class:`InvalidInput` on ``cursor``.
    """
    keys = keys if keys is not None else sort_keys(query)
    if keys is None:
        raise TypeError("keyset_pages needs plain ORDER BY columns or explicit keys")
    single = len(query.column_descriptions) == 1
    backward = False
    if cursor:
        values = decode_cursor(cursor, len(keys) + 1)
        direction, values = values[0], values[1:]
        if direction not in ("n", "p"):
            raise InvalidInput.field("cursor", "not a cursor of this list (use the page's links)")
        backward = direction == "p"
    walk = [(column, not descending, source) for column, descending, source in keys] if backward else keys
    paged = ordered(query, walk)
    if cursor:
        paged = paged.where(after_key(walk, values))
    result = session.execute(paged.limit(per_page + 1))
    items = list(result.scalars()) if single else list(result.all())
    more = len(items) > per_page
    items = items[:per_page]
    if backward:
        items.reverse()
    page = KeysetPage(items, per_page)
    if cursor and not items:  # the rows around the cursor's row are gone (deleted meanwhile)
        if backward:
            return keyset_pages(session, query, None, per_page, keys)
        page.prev_cursor = encode_cursor(["p", *values])
    if items:
        # forward: more rows after when the page overflowed, rows before when it came from a cursor
        has_next = more if not backward else True
        has_prev = bool(cursor) if not backward else more
        page.next_cursor = _page_cursor("n", items[-1], keys) if has_next else None
        page.prev_cursor = _page_cursor("p", items[0], keys) if has_prev else None
    return page


def keyset_slice(rows: list[Any], sort_key, cursor: str | None, per_page: int) -> KeysetPage:
    """:func:`keyset_pages` over rows already in memory and sorted by ``sort_key`` (a tuple of
    comparable, non-null values, ended by a unique one): for an order the database cannot serve,
    such as an evaluated figure of a bounded list."""
    start, stop = 0, len(rows)
    if cursor and rows:
        values = decode_cursor(cursor, 1 + len(sort_key(rows[0])))
        direction, anchor = values[0], tuple(values[1:])
        if direction not in ("n", "p"):
            raise InvalidInput.field("cursor", "not a cursor of this list (use the page's links)")
        try:
            keys = [sort_key(r) for r in rows]
            if direction == "n":
                start = next((i for i, k in enumerate(keys) if k > anchor), len(rows))
                stop = min(len(rows), start + per_page)
            else:
                stop = next((i for i, k in enumerate(keys) if k >= anchor), len(rows))
                start = max(0, stop - per_page)
        except TypeError as exc:  # values of another list's kinds
            raise InvalidInput.field("cursor", "not a cursor of this list (use the page's links)") from exc
    else:
        stop = min(len(rows), per_page)
    page = KeysetPage(rows[start:stop], per_page)
    if page.items:
        page.next_cursor = encode_cursor(["n", *sort_key(rows[stop - 1])]) if stop < len(rows) else None
        page.prev_cursor = encode_cursor(["p", *sort_key(rows[start])]) if start > 0 else None
    return page
