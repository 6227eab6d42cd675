"""Seconds since 1970-01-01 UTC of a timestamp column, on SQLite and PostgreSQL (no other SQL
date function is used, so both backends give the same answers): the statistics' red box-days
and the regulator's lists' saturation now."""

from __future__ import annotations

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import Float


class EpochSeconds(FunctionElement):
    """Seconds since 1970-01-01 UTC of a timestamp column, on SQLite and PostgreSQL."""

    type = Float()
    inherit_cache = True


@compiles(EpochSeconds)
def _epoch_default(element, compiler, **kw):
    return f"EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})"


@compiles(EpochSeconds, "sqlite")
def _epoch_sqlite(element, compiler, **kw):
    # SQLite keeps UTC timestamps as text; julianday() reads them (fractions of seconds too).
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"
