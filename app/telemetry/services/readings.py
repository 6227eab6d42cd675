"""A batch's readings stored: COPY straight into the (partitioned) readings on PostgreSQL, one
write a reading; INSERT … ON CONFLICT DO NOTHING on SQLite; already stored ones told apart."""

from __future__ import annotations

import sqlite3
from functools import lru_cache
from itertools import chain
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from app.common.rows import tuples
from app.telemetry.models import MEASURES, SensorReading
from app.telemetry.services.bulk import prepare_stage
from app.telemetry.services.states import _marks

READING_COLUMNS = ("box_id", "ts", *MEASURES, "running")
_INSERT_CHUNK = 1000  # rows per statement: 10 columns × 1000 stays under both databases' parameter limits
# PostgreSQL: a batch that carries stored readings is COPYed into this temporary table (one per
# connection, emptied at each commit) and moved into the readings with one INSERT … SELECT …
# ON CONFLICT DO NOTHING.
_STAGE = "ingest_readings_stage"


@lru_cache(maxsize=16)
def _insert_sql(mark: str, n_rows: int, returning: bool) -> str:
    row = "(" + ", ".join([mark] * len(READING_COLUMNS)) + ")"
    return (
        f"INSERT INTO {SensorReading.__tablename__} ({', '.join(READING_COLUMNS)}) VALUES "
        f"{', '.join([row] * n_rows)} ON CONFLICT (box_id, ts) DO NOTHING"
        + (" RETURNING box_id, ts" if returning else "")
    )


def _sqlite_in_transaction(conn: Connection) -> bool:
    # pysqlite: the DBAPI connection is a sqlite3.Connection (the DBAPI protocol has no in_transaction).
    return cast(sqlite3.Connection, conn.connection.dbapi_connection).in_transaction


def insert_readings(session: Session, rows: list[tuple], copy: bool | None = None) -> set[tuple[int, Any]] | None:
    """Store rows ``(box_id, bound ts, *measures, running)`` unless already stored: None when all
    were new, else the keys ``(box_id, ts)`` of the new ones.

    PostgreSQL (``copy`` None or True): the rows are COPYed (psycopg 3 ``cursor.copy``) into the
    readings in a savepoint; if some were stored already (the key refuses the COPY), into a
    temporary stage instead and moved with one ``INSERT … SELECT … ON CONFLICT (box_id, ts) DO
    NOTHING``. SQLite (or ``copy=False``): ``INSERT … ON CONFLICT DO NOTHING`` executed for
    all rows (``executemany``) on SQLite, multi-row statements of up to 1,000 rows on
    PostgreSQL. Either way as driver SQL (SQLAlchemy's per-value bind processing would cost more
    than the insert), in a savepoint: the common case, every row new, is told by the row count
    alone. Otherwise the savepoint is rolled back and the rows are inserted again with
    ``RETURNING box_id, ts`` to learn which were new, paid only by batches that carry stored
    readings.
    """
    conn = session.connection()
    if conn.dialect.name == "postgresql" and copy is not False:
        return _copy_readings(conn, rows)
    mark = _marks(conn)
    sqlite = conn.dialect.name == "sqlite"
    if not sqlite or _sqlite_in_transaction(conn):
        # (On SQLite a savepoint outside a transaction would start one, and its release commit.)
        conn.exec_driver_sql("SAVEPOINT insert_readings")
        if sqlite:
            inserted = conn.exec_driver_sql(_insert_sql(mark, 1, False), rows).rowcount
        else:
            inserted = 0
            for begin in range(0, len(rows), _INSERT_CHUNK):
                chunk = rows[begin : begin + _INSERT_CHUNK]
                inserted += conn.exec_driver_sql(
                    _insert_sql(mark, len(chunk), False), tuple(chain.from_iterable(chunk))
                ).rowcount
        if inserted == len(rows):
            conn.exec_driver_sql("RELEASE SAVEPOINT insert_readings")
            return None
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT insert_readings")
        conn.exec_driver_sql("RELEASE SAVEPOINT insert_readings")
    fresh: set[tuple[int, Any]] = set()
    for begin in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[begin : begin + _INSERT_CHUNK]
        fresh.update(
            (box_id, ts)
            for box_id, ts in tuples(
                conn.exec_driver_sql(_insert_sql(mark, len(chunk), True), tuple(chain.from_iterable(chunk)))
            )
        )
    return None if len(fresh) == len(rows) else fresh


_COLUMN_LIST = ", ".join(READING_COLUMNS)
_MOVE_SQL = (
    f"INSERT INTO {SensorReading.__tablename__} ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM {_STAGE} "
    "ON CONFLICT (box_id, ts) DO NOTHING"
)


def _copy_readings(conn: Connection, rows: list[tuple]) -> set[tuple[int, Any]] | None:
    """PostgreSQL: COPY straight into the readings, in a savepoint: the common case (every row
    new) costs what the COPY baseline does. A batch that carries stored readings fails there on
    the key; it is rolled back to the savepoint and moved through the stage instead, with one
    INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING the new keys."""
    from psycopg.errors import UniqueViolation  # (the PostgreSQL driver: only this path needs it)

    cursor = cast(Any, conn.connection.dbapi_connection).cursor()  # psycopg 3: Cursor.copy
    try:
        cursor.execute("SAVEPOINT insert_readings")
        try:
            with cursor.copy(f"COPY {SensorReading.__tablename__} ({_COLUMN_LIST}) FROM STDIN") as copy:
                write = copy.write_row
                for row in rows:
                    write(row)
        except UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT insert_readings")
            cursor.execute("RELEASE SAVEPOINT insert_readings")
            # (Made by the first such batch of each connection, and again after a rolled-back one.)
            prepare_stage(cursor, _STAGE, SensorReading.__tablename__)
            with cursor.copy(f"COPY {_STAGE} ({_COLUMN_LIST}) FROM STDIN") as copy:
                write = copy.write_row
                for row in rows:
                    write(row)
            cursor.execute(_MOVE_SQL + " RETURNING box_id, ts")
            fresh = {(box_id, ts) for box_id, ts in cursor.fetchall()}
            return None if len(fresh) == len(rows) else fresh
        cursor.execute("RELEASE SAVEPOINT insert_readings")
        return None
    finally:
        cursor.close()
