"""Tiny reads on the hottest paths, over a connection of their own.

One autocommit DBAPI connection per process and thread, outside the SQLAlchemy session and its
pool: for a single indexed lookup on every request (a box's revision, a token's validity), the
session's checkout, transaction, result objects and rollback at teardown cost more than the
query. Statements are written with ``?`` and adapted to the driver's parameter style.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from sqlalchemy.engine import Engine


class _Connection:
    __slots__ = ("conn", "pid", "qmark", "statements")

    def __init__(self, conn, pid: int, qmark: bool) -> None:
        self.conn, self.pid, self.qmark = conn, pid, qmark
        self.statements: dict[str, str] = {}


class AutocommitReader:
    def __init__(self) -> None:
        self._local = threading.local()

    def _connection(self, engine: Engine):
        # One connection per process, thread and database: two apps in one process (each with
        # its engine) never read through each other's connection; only plain rows come back.
        by_url = self._local.__dict__.setdefault("by_url", {})
        local = by_url.get(engine.url)
        if local is None or local.pid != os.getpid():
            cargs, cparams = engine.dialect.create_connect_args(engine.url)
            conn = engine.dialect.loaded_dbapi.connect(*cargs, **cparams)
            if engine.dialect.name == "sqlite":
                conn.isolation_level = None  # autocommit: every read sees the latest commit
            else:
                conn.autocommit = True
            local = by_url[engine.url] = _Connection(conn, os.getpid(), engine.dialect.paramstyle == "qmark")
        return local

    def fetchone(self, engine: Engine, sql: str, params: tuple) -> tuple[Any, ...] | None:
        """The first row, or None when there is none; raises ``LookupError`` when the database
        cannot be read (the caller then takes its ordinary path)."""
        for attempt in (1, 2):
            try:
                local = self._connection(engine)
                statement = local.statements.get(sql)
                if statement is None:
                    statement = local.statements[sql] = sql if local.qmark else sql.replace("?", "%s")
                cursor = local.conn.cursor()
                try:
                    cursor.execute(statement, params)
                    return cursor.fetchone()
                finally:
                    cursor.close()
            except Exception as exc:
                # Reconnect next time (the database may have restarted).
                self._local.__dict__.setdefault("by_url", {}).pop(engine.url, None)
                if attempt == 2:
                    raise LookupError(str(exc)) from exc
        return None


reader = AutocommitReader()


class _CoreConnection:
    __slots__ = ("conn", "pid")

    def __init__(self, conn, pid: int) -> None:
        self.conn, self.pid = conn, pid


class CoreReader:
    """One read statement (SQLAlchemy Core, so the columns' types turn rows into the same
    Decimals, aware datetimes, states and JSON values the ORM gives) on a connection held by
    this process and thread in autocommit: no pool checkout (with its ping), no transaction to
    end, no identity map. For the reads of the hottest pages (a box's stored evaluation)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _connection(self, engine: Engine):
        by_url = self._local.__dict__.setdefault("by_url", {})
        local = by_url.get(engine.url)
        if local is None or local.pid != os.getpid():
            conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            local = by_url[engine.url] = _CoreConnection(conn, os.getpid())
        return local.conn

    def first(self, engine: Engine, statement, params: dict[str, Any]):
        """The first row of ``statement``, or None; raises ``LookupError`` when the database
        cannot be read (the caller then takes its ordinary path)."""
        for attempt in (1, 2):
            try:
                return self._connection(engine).execute(statement, params).first()
            except Exception as exc:
                stale = self._local.__dict__.setdefault("by_url", {}).pop(engine.url, None)
                if stale is not None:
                    with contextlib.suppress(Exception):
                        stale.conn.invalidate()  # never back to the pool: it may be broken
                if attempt == 2:
                    raise LookupError(str(exc)) from exc
        return None


core_reader = CoreReader()
