"""Jobs on RQ (the machine's Redis): an app with ``JOB_QUEUE_URL`` enqueues after the commit, and a
``SimpleWorker`` burst run (as ``flask jobs worker`` would, in the app's context) works them,
retrying a failed attempt. Locally a missing Redis skips this module; with ``CI=true`` it fails."""

from __future__ import annotations

import dataclasses
import uuid
from types import MappingProxyType

import pytest
import redis

from app.common.wiring import EXTENSION_KEY
from app.extensions import db
from app.jobs.models import Job, JobState
from tests import factories
from tests.jobs.conftest import make_kind

pytestmark = pytest.mark.redis


@pytest.fixture
def queued_app(app, world, redis_url, database_url):
    """A second app on the test database with a queue of this test's own (runs in parallel share
    the Redis database), and a kind that fails its first two attempts."""
    from app import create_app

    name = f"test-jobs-{uuid.uuid4().hex}"
    queued = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": app.config["SECRET_KEY"],
            "SQLALCHEMY_DATABASE_URI": database_url,
            "WTF_CSRF_ENABLED": False,
            "PASSWORD_HASH_METHOD": app.config["PASSWORD_HASH_METHOD"],
            "JOB_QUEUE_URL": redis_url,
            "JOB_QUEUE_NAME": name,
            "JOB_RETRY_SECONDS": "0",
            "JOB_MAX_ATTEMPTS": 3,
        }
    )
    failures = {"left": 2}

    def flaky(attempt, params):
        attempt.report(1, 2)
        if failures["left"] > 0:
            failures["left"] -= 1
            raise RuntimeError("redis-side boom")
        attempt.finish_with_summary({"ok": True})

    wiring = queued.extensions[EXTENSION_KEY]
    queued.extensions[EXTENSION_KEY] = dataclasses.replace(
        wiring,
        job_kinds=MappingProxyType(
            {
                **wiring.job_kinds,
                "flaky": make_kind("flaky", flaky),
                "broken": make_kind("broken", lambda attempt, params: 1 / 0),
            }
        ),
    )
    yield queued
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"*{name}*"):
        client.delete(key)
    client.close()
    with queued.app_context():
        db.session.remove()
        db.engine.dispose()


def work_burst(queued_app) -> None:
    from rq import SimpleWorker

    from app.jobs.dispatch import queue_of

    with queued_app.app_context():
        queue = queue_of(queued_app)
        SimpleWorker([queue], connection=queue.connection).work(burst=True)


def _post(client, token, body):
    r = client.post("/api/v1/jobs", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 202, r.get_json()
    return r.get_json()["id"]


def _token(client, username):
    r = client.post("/api/v1/auth/token", json={"username": username, "password": factories.PASSWORD})
    assert r.status_code == 201
    return r.get_json()["token"]


def _job(queued_app, job_id) -> Job:
    with queued_app.app_context():
        job = db.session.get(Job, job_id)
        db.session.expunge(job)
        return job


def test_a_job_waits_on_the_queue_until_a_worker_runs_it(queued_app):
    client = queued_app.test_client()
    token = _token(client, "reg_city")
    body = {"kind": "export", "params": {"export": "statistics", "format": "csv", "scope": "city", "period": "2025"}}
    job_id = _post(client, token, body)
    from app.jobs.dispatch import queue_of

    with queued_app.app_context():
        assert queue_of(queued_app).count == 1  # enqueued once committed, not run by the web process
    assert _job(queued_app, job_id).state == JobState.QUEUED
    work_burst(queued_app)
    done = client.get(f"/api/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert done["state"] == "succeeded" and done["attempts"] == 1 and done["progress_done"] == 2
    result = client.get(done["result_url"], headers={"Authorization": f"Bearer {token}"})
    assert result.status_code == 200 and "统计范围".encode() in result.data


def test_rq_retries_a_failed_attempt(queued_app):
    client = queued_app.test_client()
    job_id = _post(client, _token(client, "op"), {"kind": "flaky"})
    work_burst(queued_app)
    job = _job(queued_app, job_id)
    assert job.state == JobState.SUCCEEDED and job.attempts == 3 and job.summary == {"ok": True}


def test_a_job_failing_every_attempt_on_rq_ends_failed_with_its_error(queued_app):
    client = queued_app.test_client()
    job_id = _post(client, _token(client, "op"), {"kind": "broken"})
    work_burst(queued_app)
    job = _job(queued_app, job_id)
    assert job.state == JobState.FAILED and job.attempts == 3
    assert job.error == "ZeroDivisionError: division by zero" and job.result_path is None
