"""PostgreSQL: a batch's rows written as ONE statement from a COPYed temporary stage.

``executemany`` of a 1,000-row UPDATE or upsert is 1,000 statements to the server (psycopg 3
pipelines them, but each is planned and executed on its own); binding them as arrays
(``unnest``) costs more in the client than it saves (psycopg dumps lists element by element in
Python). COPY into a temporary table like the target (psycopg's C row writer), then one
``UPDATE … FROM stage`` or ``INSERT … SELECT … FROM stage``, is one statement with one plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Connection


def stage(
    conn: Connection,
    name: str,
    like: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    ddl: str | None = None,
) -> None:
    """Fill the temporary table ``name`` (made like ``like`` on first use on the connection, or
    by ``ddl`` when only some of a table's columns are staged: LIKE copies NOT NULL; emptied at
    each commit) with ``rows`` of ``columns``, by COPY."""
    cursor = cast(Any, conn.connection.dbapi_connection).cursor()
    try:
        cursor.execute(ddl or f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} (LIKE {like}) ON COMMIT DELETE ROWS")
        cursor.execute(f"TRUNCATE {name}")
        with cursor.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
            write = copy.write_row
            for row in rows:
                write(row)
    finally:
        cursor.close()
