"""The steps of a job's state: queued → running → succeeded, or back to queued between attempts,
or failed once its attempts are spent. Each is flushed; the runner commits (app/jobs/runner.py).

``succeeded`` is written in the same transaction as the result (file name or summary): a job that
stops half-way, however it stops, is never shown as done and never offers a partial file.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.jobs.models import Job, JobState

ERROR_LENGTH = 1000


def claim(session: Session, job_id: int, now: datetime) -> Job | None:
    """The job, now running its next attempt; None when there is nothing to run (gone, finished).

    A job found ``running`` lost its worker (killed mid-way, the process ended): the queue hands
    it out again only then, and that attempt counts. The row is locked while it is claimed
    (PostgreSQL), so two workers handed the same job never both start it."""
    job = session.get(Job, job_id, with_for_update=True, populate_existing=True)
    if job is None or job.state.finished:
        return None
    job.state = JobState.RUNNING
    job.attempts += 1
    job.started_at = job.started_at or now
    job.heartbeat_at = now
    job.error = None
    session.flush()
    return job


def record_failure(session: Session, job: Job, error: str, now: datetime) -> bool:
    """The attempt failed with ``error``: queued again while attempts remain (True), else failed.
    Whatever the attempt had written as its result is not the job's (``result_*`` cleared)."""
    job.error = error[:ERROR_LENGTH]
    job.result_path = job.result_name = job.result_mime = None
    job.summary = None
    job.heartbeat_at = now
    if job.attempts < job.max_attempts:
        job.state = JobState.QUEUED
        session.flush()
        return True
    job.state = JobState.FAILED
    job.finished_at = now
    session.flush()
    return False


def record_success(
    session: Session,
    job: Job,
    now: datetime,
    *,
    file: tuple[str, str, str] | None = None,
    summary: dict[str, Any] | None = None,
) -> None:
    """Done: ``file`` is (path relative to the instance folder, download name, media type)."""
    job.state = JobState.SUCCEEDED
    job.finished_at = now
    job.heartbeat_at = now
    job.error = None
    if file is not None:
        job.result_path, job.result_name, job.result_mime = file
    job.summary = summary
    if job.progress_total is not None:
        job.progress_done = job.progress_total
    session.flush()
