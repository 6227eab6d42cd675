"""PostgreSQL: a batch's rows as ONE statement over ``unnest`` of one array per column.

``executemany`` of a 1,000-row UPDATE or upsert is 1,000 statements to the server (psycopg 3
pipelines them, but each is planned and executed on its own); ``unnest(%s::float8[], …)`` makes
them one statement with one plan. Values are given per column, converted to the column's Python
type (psycopg dumps a list by its elements' type: a column of floats must not carry an int).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# SQL array type → the Python conversion of a non-null element.
_CONVERT: dict[str, Any] = {"float8": float, "int4": int, "int8": int, "timestamptz": None, "text": str, "bool": bool}


def columns_of(rows: Sequence[Sequence[Any]], types: Sequence[str]) -> list[list[Any]]:
    """The rows' values column by column, each converted to its SQL type's Python type."""
    out: list[list[Any]] = []
    for i, sql_type in enumerate(types):
        convert = _CONVERT[sql_type]
        values = [row[i] for row in rows]
        if convert is not None:
            values = [None if v is None else convert(v) for v in values]
        out.append(values)
    return out


def unnest_from(names: Sequence[str], types: Sequence[str]) -> str:
    """``unnest(%s::t1[], %s::t2[], …) AS v(name1, name2, …)``."""
    arrays = ", ".join(f"%s::{t}[]" for t in types)
    return f"unnest({arrays}) AS v({', '.join(names)})"
