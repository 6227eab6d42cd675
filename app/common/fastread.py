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


def engine_key(engine: Engine) -> str:
    """The engine's URL as a string, worked out once per engine: the key of the per-process
    caches by database (``str(engine.url)`` renders the URL anew each time, 10 µs a call, and
    the hottest reads asked for it three times)."""
    key = engine.__dict__.get("_tanxiang_url_key")
    if key is None:
        key = engine.__dict__["_tanxiang_url_key"] = str(engine.url)
    return key


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
        # Keyed by the URL's string worked out once (a URL object hashes by rendering itself).
        by_url = self._local.__dict__.setdefault("by_url", {})
        local = by_url.get(engine_key(engine))
        if local is None or local.pid != os.getpid():
            cargs, cparams = engine.dialect.create_connect_args(engine.url)
            conn = engine.dialect.loaded_dbapi.connect(*cargs, **cparams)
            if engine.dialect.name == "sqlite":
                conn.isolation_level = None  # autocommit: every read sees the latest commit
            else:
                conn.autocommit = True
            local = by_url[engine_key(engine)] = _Connection(conn, os.getpid(), engine.dialect.paramstyle == "qmark")
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
                self._local.__dict__.setdefault("by_url", {}).pop(engine_key(engine), None)
                if attempt == 2:
                    raise LookupError(str(exc)) from exc
        return None


reader = AutocommitReader()


class Row(dict):
    """A read's row: its columns by name (``row["code"]``, ``row._mapping["code"]``) and as
    attributes (``row.code``), like SQLAlchemy's Row for the readers of this module."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def _mapping(self) -> Row:
        return self


class _Compiled:
    """A statement compiled once for one dialect: its SQL, how its parameters are bound and,
    after its first execution (they depend on the driver's column types), how each column's
    value is turned into the Python value SQLAlchemy's Core would give."""

    __slots__ = ("binds", "keys", "names", "processors", "sql", "types")

    def __init__(self, statement, dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise TypeError("CoreReader statements take plain bound parameters only")
        self.sql = compiled.string
        self.binds = compiled.construct_params(_check=False), dict(compiled._bind_processors)
        self.keys = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
        self.names = tuple(entry.keyname for entry in compiled._result_columns)
        self.types = tuple(entry.type for entry in compiled._result_columns)
        self.processors: tuple | None = None

    def parameters(self, params: dict[str, Any]):
        defaults, processors = self.binds
        values = {**defaults, **params}
        for name, process in processors.items():
            if values.get(name) is not None:
                values[name] = process(values[name])
        return tuple(values[k] for k in self.keys) if self.keys is not None else values

    def row(self, raw, cursor, dialect) -> Row:
        if self.processors is None:
            # The driver's column types, read once (psycopg builds the description's objects
            # on every access: 0.4 ms for the scan page's 69 columns).
            self.processors = tuple(
                kind._cached_result_processor(dialect, column[1])
                for kind, column in zip(self.types, cursor.description, strict=True)
            )
        return Row(
            {
                name: value if process is None or value is None else process(value)
                for name, process, value in zip(self.names, self.processors, raw, strict=True)
            }
        )


class _CoreConnection:
    __slots__ = ("compiled", "conn", "pid")

    def __init__(self, conn, pid: int) -> None:
        self.conn, self.pid = conn, pid
        self.compiled: dict[Any, _Compiled] = {}


class CoreReader:
    """One read statement (SQLAlchemy Core, so the columns' types turn rows into the same
    Decimals, aware datetimes, states and JSON values the ORM gives) on a connection held by
    this process and thread in autocommit: no pool checkout (with its ping), no transaction to
    end, no identity map. For the reads of the hottest pages (a box's stored evaluation).

    The statement is compiled once per connection and run on the driver's cursor, each column
    through its type's own result processor (what Core applies): Core's execution context,
    compiled-cache lookup and result metadata cost about as much again as the indexed read
    itself (issue 12's profile: 0.75 ms against 0.33 ms for the box read on PostgreSQL)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _connection(self, engine: Engine) -> _CoreConnection:
        by_url = self._local.__dict__.setdefault("by_url", {})
        local = by_url.get(engine_key(engine))
        if local is None or local.pid != os.getpid():
            conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            local = by_url[engine_key(engine)] = _CoreConnection(conn, os.getpid())
        return local

    def first(self, engine: Engine, statement, params: dict[str, Any]) -> Row | None:
        """The first row of ``statement``, or None; raises ``LookupError`` when the database
        cannot be read (the caller then takes its ordinary path)."""
        for attempt in (1, 2):
            try:
                local = self._connection(engine)
                compiled = local.compiled.get(statement)
                if compiled is None:
                    compiled = local.compiled[statement] = _Compiled(statement, engine.dialect)
                cursor = local.conn.connection.dbapi_connection.cursor()
                try:
                    cursor.execute(compiled.sql, compiled.parameters(params))
                    raw = cursor.fetchone()
                    return None if raw is None else compiled.row(raw, cursor, engine.dialect)
                finally:
                    cursor.close()
            except Exception as exc:
                stale = self._local.__dict__.setdefault("by_url", {}).pop(engine_key(engine), None)
                if stale is not None:
                    with contextlib.suppress(Exception):
                        stale.conn.invalidate()  # never back to the pool: it may be broken
                if attempt == 2:
                    raise LookupError(str(exc)) from exc
        return None


core_reader = CoreReader()
