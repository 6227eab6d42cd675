"""Sign-in throttling shared between workers: Flask-Limiter's counters in Redis (README, Operations).

Two app instances stand for two gunicorn workers (or hosts): they share nothing but the database
and ``RATELIMIT_STORAGE_URI``. Locally a missing Redis skips this module; with ``CI=true`` it fails.
"""

from __future__ import annotations

import uuid

import pytest
import redis

from tests import factories
from tests.support import REDIS_URL

pytestmark = pytest.mark.redis


@pytest.fixture
def two_workers(app, world, redis_url, database_url):
    """Two apps on the test database, counting failed sign-ins in one Redis under a prefix of
    this test's own (runs in parallel share the Redis database)."""
    from app import create_app

    prefix = f"test-{uuid.uuid4().hex}:"
    apps = [
        create_app(
            {
                "TESTING": True,
                "SECRET_KEY": app.config["SECRET_KEY"],
                "SQLALCHEMY_DATABASE_URI": database_url,
                "WTF_CSRF_ENABLED": False,
                "PASSWORD_HASH_METHOD": app.config["PASSWORD_HASH_METHOD"],
                "RATELIMIT_STORAGE_URI": redis_url,
                "RATELIMIT_KEY_PREFIX": prefix,
            }
        )
        for _ in range(2)
    ]
    yield apps
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"*{prefix}*"):
        client.delete(key)
    client.close()
    for each in apps:
        with each.app_context():
            from app.extensions import db

            db.session.remove()
            db.engine.dispose()


def _sign_in(application, password: str, address: str = "10.0.0.1"):
    return application.test_client().post(
        "/api/v1/auth/token",
        json={"username": "ent", "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def test_failed_sign_ins_are_counted_across_workers_in_redis(two_workers):
    first, second = two_workers
    assert first.extensions["tanxiang.limiter"]._storage_uri.startswith("redis://")
    # Ten failures, alternating between the workers: each saw only five.
    statuses = [_sign_in(two_workers[i % 2], "wrong-password").status_code for i in range(10)]
    assert statuses == [401] * 10
    # The eleventh try is refused by either worker, even with the right password, from elsewhere.
    for application in (first, second):
        r = _sign_in(application, factories.PASSWORD, address="10.9.9.9")
        assert r.status_code == 429, r.get_json()
        assert int(r.headers["Retry-After"]) > 0
    # The counters really are in Redis, under this installation's prefix.
    client = redis.Redis.from_url(REDIS_URL)
    prefix = first.config["RATELIMIT_KEY_PREFIX"]
    assert any(prefix.encode() in key for key in client.scan_iter(match=f"*{prefix}*"))
    client.close()


def test_workers_counting_in_memory_do_not_share_the_failures(app, world, database_url):
    # The contrast: with memory:// each worker counts alone, which is why production needs Redis.
    from app import create_app

    apps = [
        create_app(
            {
                "TESTING": True,
                "SECRET_KEY": app.config["SECRET_KEY"],
                "SQLALCHEMY_DATABASE_URI": database_url,
                "PASSWORD_HASH_METHOD": app.config["PASSWORD_HASH_METHOD"],
                "RATELIMIT_STORAGE_URI": "memory://",
            }
        )
        for _ in range(2)
    ]
    try:
        assert [_sign_in(apps[i % 2], "wrong-password").status_code for i in range(12)] == [401] * 12
        assert _sign_in(apps[0], factories.PASSWORD, address="10.9.9.9").status_code == 201
    finally:
        from app.extensions import db

        for each in apps:
            with each.app_context():
                db.session.remove()
                db.engine.dispose()
