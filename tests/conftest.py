"""Test harness.

Every test that uses the ``app`` fixture runs once per database backend: SQLite and the
machine's PostgreSQL (``TEST_BACKENDS``, default both). With ``CI=true`` a missing PostgreSQL,
Mosquitto or chromium is a failure, never a skip.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
import sqlalchemy as sa

from tests import factories
from tests.support import BACKENDS, REDIS_URL, drop_pg_database, pg_scratch_database, service_missing

# A cheap password hash for the suite: configuration of the app under test (app.common.wiring),
# never a patched module global, so no test depends on which ran first.
FAST_PASSWORD_HASH = "pbkdf2:sha256:1000"


def pytest_collection_modifyitems(config, items):
    """Deselect the SQLite parameter of tests of a PostgreSQL feature (COPY, partitions): not a skip."""
    sqlite_only_here = [
        item
        for item in items
        if item.get_closest_marker("postgresql_only")
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("database_url") == "sqlite"
    ]
    if sqlite_only_here:
        config.hook.pytest_deselected(items=sqlite_only_here)
        dropped = set(map(id, sqlite_only_here))
        items[:] = [item for item in items if id(item) not in dropped]


@pytest.fixture(scope="session")
def worker(request) -> str:
    return getattr(request.config, "workerinput", {}).get("workerid", "main")


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory, worker):
    if request.param == "postgresql":
        url = pg_scratch_database("test", worker)
        yield url
        drop_pg_database(url)
        return
    yield "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.sqlite3")


@pytest.fixture(scope="session")
def app(database_url, tmp_path_factory):
    from app import create_app
    from app.extensions import db

    instance = tmp_path_factory.mktemp("instance")
    os.environ["INSTANCE_PATH"] = str(instance)
    application = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret-" + uuid.uuid4().hex,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "PUBLIC_BASE_URL": "http://testserver.local",
            "WTF_CSRF_ENABLED": False,
            "PASSWORD_HASH_METHOD": FAST_PASSWORD_HASH,
        }
    )
    with application.app_context():
        db.create_all()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_database(request):
    """Each test starts from empty tables (plus the reference data)."""
    if "app" not in request.fixturenames:
        yield
        return
    application = request.getfixturevalue("app")
    from app.accounts.reference import ensure_counties
    from app.extensions import db

    with application.app_context():
        ensure_counties(db.session)
        db.session.commit()
        application.extensions["tanxiang.limiter"].reset()  # failed sign-ins counted per test
    yield
    with application.app_context():
        db.session.rollback()
        db.session.remove()
        tables = [t for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if db.engine.dialect.name == "postgresql":
                conn.execute(
                    sa.text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables) + " RESTART IDENTITY CASCADE")
                )
            else:
                for table in tables:
                    conn.execute(table.delete())


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


@pytest.fixture
def session(ctx):
    from app.extensions import db

    return db.session


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def world(app, ctx):
    """A small Taizhou: two counties' enterprises, a carbon service, regulators, a park."""
    return factories.World.build()


@pytest.fixture
def api(app, world):
    return factories.ApiClient(app.test_client())


@pytest.fixture
def now():
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def days():
    return lambda n: timedelta(days=n)


@pytest.fixture
def redis_url():
    """The machine's Redis (database 13, shared by parallel runs: tests use prefixes of their own);
    missing, it skips locally and fails with CI=true."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_missing(f"Redis at {REDIS_URL}", str(exc))
    yield REDIS_URL
    client.close()
