"""Row locks that work on PostgreSQL and SQLite.

PostgreSQL: ``SELECT … FOR UPDATE`` on the row that guards a balance (a stock row, a manifest, a
regeneration batch); a concurrent request waits, then reads the committed values.
SQLite ignores FOR UPDATE but has a single writer: taking the write lock before reading (what
``BEGIN IMMEDIATE`` does) serialises the read-check-write sequences the same way. Python's
sqlite3 opens the transaction at the first write statement, so a no-op UPDATE takes the lock.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def acquire_write_lock(session: Session) -> None:
    if dialect(session) == "sqlite":
        session.execute(text("UPDATE manifest_counters SET last_serial = last_serial WHERE 1 = 0"))


def insert_ignore(session: Session, model, values: dict, keys: list[str]) -> None:
    """INSERT … ON CONFLICT DO NOTHING (a concurrent insert of the same key simply wins)."""
    if dialect(session) == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(model.__table__).values(**values).on_conflict_do_nothing(index_elements=keys))
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(model.__table__).values(**values).on_conflict_do_nothing(index_elements=keys))
