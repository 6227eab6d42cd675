"""Helpers for the test harness that tests may import (conftest files are never imported):
the backends under test, PostgreSQL scratch databases, and skip-locally/fail-in-CI."""

from __future__ import annotations

import contextlib
import os

import pytest
import sqlalchemy as sa

CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
BACKENDS = [b for b in os.environ.get("TEST_BACKENDS", "sqlite,postgresql").split(",") if b]


def service_missing(what: str, why: str):
    """Skip locally, fail in CI: the suites for external services must run there."""
    message = f"{what} is not available: {why}"
    if CI:
        pytest.fail(message + " (CI=true: this suite must run)", pytrace=False)
    pytest.skip(message)


def _pg_admin(sql: str) -> None:
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(sql))
    finally:
        admin.dispose()


def pg_scratch_database(purpose: str, worker: str) -> str:
    """A fresh PostgreSQL database for this run alone (runs in parallel must not share one)."""
    name = f"tanxiang_{purpose}_{worker}_{os.getpid()}"
    try:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _pg_admin(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        service_missing("PostgreSQL at 127.0.0.1:5432", str(exc).splitlines()[0])
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with contextlib.suppress(sa.exc.OperationalError):
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
