"""A database that disappears mid-run: requests answer 503 problem+json with Retry-After, the log
has one line per request (no traceback), and the service recovers by itself once it is back.

The app is pointed at a PostgreSQL scratch database of its own, which the test drops (WITH FORCE,
so every open connection is cut) and creates again. No timing is asserted."""

from __future__ import annotations

import logging
import uuid

import pytest

from tests.factories import PASSWORD
from tests.support import _pg_admin, drop_pg_database, pg_scratch_database


@pytest.fixture
def outage_app(worker, tmp_path):
    from app import create_app
    from app.extensions import db

    url = pg_scratch_database("outage", worker)
    application = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "outage-" + uuid.uuid4().hex,
            "SQLALCHEMY_DATABASE_URI": url,
            "WTF_CSRF_ENABLED": False,
        }
    )
    with application.app_context():
        db.create_all()
    yield application, url
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
    drop_pg_database(url)


def _seed(application):
    from app.extensions import db
    from tests.factories import operator

    with application.app_context():
        db.create_all()
        operator()
        db.session.commit()
        db.session.remove()


def _token(client):
    r = client.post("/api/v1/auth/token", json={"username": "op", "password": PASSWORD})
    assert r.status_code == 201, r.get_data(as_text=True)[:300]
    return r.get_json()["token"]


def test_database_outage_answers_503_and_recovers(outage_app, caplog):
    application, url = outage_app
    name = url.rsplit("/", 1)[1]
    _seed(application)
    client = application.test_client()
    token = _token(client)
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/organizations", headers=auth).status_code == 200

    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # the database is gone, connections cut
    caplog.clear()
    with caplog.at_level(logging.INFO):
        answers = [
            client.post("/api/v1/auth/token", json={"username": "op", "password": PASSWORD}),
            client.get("/api/v1/organizations", headers=auth),
            client.post("/api/v1/ledger", json={"waste_code": "900-041-49", "quantity_kg": 1}, headers=auth),
        ]
    for r in answers:
        assert r.status_code == 503, (r.status_code, r.get_data(as_text=True)[:300])
        assert r.mimetype == "application/problem+json"
        assert r.get_json()["status"] == 503
        assert int(r.headers["Retry-After"]) > 0
    outage_lines = [rec for rec in caplog.records if "database unavailable" in rec.getMessage()]
    assert len(outage_lines) == len(answers)
    assert all(rec.exc_info is None for rec in caplog.records), [rec.getMessage() for rec in caplog.records]
    assert not any(rec.levelno >= logging.ERROR for rec in caplog.records)
    assert client.get("/readyz").status_code == 503

    _pg_admin(f'CREATE DATABASE "{name}"')  # back: the same requests work again, no restart
    _seed(application)
    token = _token(client)
    assert client.get("/api/v1/organizations", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/readyz").status_code == 200
