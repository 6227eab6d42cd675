"""The sweep's write: every swept box's stored evaluation in one statement a chunk.

A box the sweep evaluates always has something new to store: its next check had come (it was
at or before ``now``) and an evaluation at ``now`` names a next check after ``now``, or none; a
box never stored has no stored evaluation at all. So every evaluated box is written, all the
stored columns at once, and nothing is compared with what was stored (the stored reasons and
figures need not even be read).

On PostgreSQL the chunk travels as one JSON document, turned into rows by
``json_to_recordset`` and joined to the boxes by primary key: one parameter, one statement, no
per-value escaping (an ``unnest`` of text arrays had psycopg quote every JSON document
character by character: 6 of the 29 s a profile of 10,000 boxes took). The document is written
by orjson: a tenth of ``json.dumps``'s time, and the reasons' Chinese messages as UTF-8 rather
than ``\\uXXXX`` escapes (half the bytes to send, parse and store; the same JSON values as the
ORM's ``json.dumps`` writes). Elsewhere (SQLite, the embedded default) an executemany of an
UPDATE by primary key.
"""

from __future__ import annotations

import math
from datetime import UTC
from decimal import Decimal
from typing import Any, cast

import orjson
from sqlalchemy import Table, bindparam, text, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from app.boxes.models import Box

_BOXES = cast(Table, Box.__table__)

# The columns a swept box's evaluation sets (the revision is bumped beside them), with the SQL
# type ``json_to_recordset`` reads each as.
WRITTEN = {
    "colour": "text",
    "colour_since": "timestamptz",
    "colour_reasons": "json",
    "colour_next_check_at": "timestamptz",
    "colour_evaluated_at": "timestamptz",
    "saturation": "float8",
    "predicted_replacement_at": "timestamptz",
    "colour_detail": "json",
}
_TIMES = tuple(k for k, t in WRITTEN.items() if t == "timestamptz")

_SETS = ", ".join(f"{key} = given.{key}" for key in WRITTEN)
_RECORD = ", ".join(["box_pk integer", *(f"{key} {sql_type}" for key, sql_type in WRITTEN.items())])
_UPDATE_FROM_JSON = text(
    f"UPDATE boxes SET {_SETS}, revision = COALESCE(boxes.revision, 0) + 1 "
    f"FROM json_to_recordset(CAST(:rows AS json)) AS given({_RECORD}) WHERE boxes.id = given.box_pk"
)
_UPDATE_BY_PK = (
    update(_BOXES)
    .where(_BOXES.c.id == bindparam("box_pk"))
    .values({**{key: bindparam(key) for key in WRITTEN}, "revision": _BOXES.c.revision + 1})
)


def _plain(value: Any) -> Any:
    """Masses as the nearest float, as the JSON columns store them (app.common.columns.json_default)."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _as_json_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` as orjson may write it: its times aware (orjson writes a naive one without an
    offset, which the database would read in its own time zone) and UTC, a non-finite saturation
    spelt as float8 reads it (orjson writes it as null)."""
    out = row
    for key in _TIMES:
        value = row[key]
        if value is not None and value.tzinfo is not UTC:
            if value.tzinfo is None:
                raise ValueError("naive datetime reached the database; convert with as_utc() first")
            out = out if out is not row else dict(row)
            out[key] = value.astimezone(UTC)
    saturation = row["saturation"]
    if isinstance(saturation, float) and not math.isfinite(saturation):
        out = out if out is not row else dict(row)
        out["saturation"] = str(saturation).replace("inf", "Infinity").replace("nan", "NaN")  # float8's spelling
    return out


def write_evaluations(session: Session, rows: list[dict[str, Any]]) -> None:
    """Store each row (``box_pk`` and every :data:`WRITTEN` column) on its box, bumping the
    box's revision; the boxes the session holds get the same values as stored."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        payload = orjson.dumps([_as_json_row(row) for row in rows], default=_plain).decode()
        connection.execute(_UPDATE_FROM_JSON, {"rows": payload})
    else:
        connection.execute(_UPDATE_BY_PK, rows)
    _sync_held_boxes(session, rows)


def _sync_held_boxes(session: Session, rows: list[dict[str, Any]]) -> None:
    """A box of the rows that the session holds (loaded before the sweep in the same
    transaction) has the written columns expired: read again when next asked, it shows the
    stored evaluation, not the one it held (nor flushes that back)."""
    identity_map = session.identity_map
    if not len(identity_map):
        return
    key_of = sa_inspect(Box).identity_key_from_primary_key
    columns = [*WRITTEN, "revision"]
    for row in rows:
        box = identity_map.get(key_of((row["box_pk"],)))
        if box is not None:
            session.expire(box, columns)
