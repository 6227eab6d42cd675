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
        prepare_stage(cursor, name, like, ddl)
        with cursor.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
            write = copy.write_row
            for row in rows:
                write(row)
    finally:
        cursor.close()


def prepare_stage(cursor: Any, name: str, like: str | None, ddl: str | None = None) -> None:
    """Make the (empty) temporary table ``name`` ready on the connection of psycopg ``cursor``.

    Asked first whether it exists (a catalogue look-up): ``CREATE … IF NOT EXISTS`` of an
    existing table costs ten times as much, and each sends a notice. It is emptied with DELETE,
    not TRUNCATE (which gives the table a new file every time): it is empty but for a second
    batch in one transaction (``ON COMMIT DELETE ROWS`` empties it at each commit). A rolled-back
    transaction takes a table it made with it: the next batch makes it again."""
    cursor.execute("SELECT to_regclass(%s) IS NULL", (f"pg_temp.{name}",))
    if cursor.fetchone()[0]:
        cursor.execute(ddl or f"CREATE TEMPORARY TABLE {name} (LIKE {like}) ON COMMIT DELETE ROWS")
    else:
        cursor.execute(f"DELETE FROM {name}")
