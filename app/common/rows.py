"""Result rows as the type checker should see them.

SQLAlchemy 2.1 types a row as ``Row[*tuple[Any, ...]]`` when the column types of a statement are
not known (subquery columns, ``func`` aggregates, ``exec_driver_sql``), and mypy unpacks such a
row into ``object``s. These pass the rows through unchanged and tell the checker they are plain
tuples of ``Any``, which is what a row behaves as (``Result.tuples()`` did this, deprecated in 2.1).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast


def tuples(rows: Iterable[Any]) -> Iterable[tuple[Any, ...]]:
    return cast("Iterable[tuple[Any, ...]]", rows)


def as_tuple(row: Any) -> tuple[Any, ...]:
    return cast("tuple[Any, ...]", row)
