"""One attempt of a job, in the current app context: its transactions, its progress, its result.

The runner is the job's transaction boundary, as :func:`app.common.tx.cli_transaction` is a
command's: claiming the job, each step of the work (with the progress reported in it), and the
end (succeeded with its result, or failed) each commit on their own. The audit trail names the
requester and the interface ``job`` (the wiring's ``job_transaction_begins`` hooks).

A file result is written to a temporary name next to its final place and moved there (an atomic
rename) only once the whole file is written; the job is marked succeeded, naming the file, in
the final transaction. An attempt that raises, or a worker that dies, leaves the job queued,
running or failed with no result: never a partial file marked done.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import IO, Any

from flask import current_app
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.accounts.services import Principal
from app.common.errors import DomainError
from app.common.timeutil import utcnow
from app.common.tx import cli_transaction
from app.common.wiring import wiring_of
from app.extensions import db
from app.jobs.models import Job
from app.jobs.services import claim, job_kind, record_failure, record_success

log = logging.getLogger(__name__)

RESULTS_FOLDER = "jobs"  # under the instance folder: jobs/<id>/<name>

SUCCEEDED, RETRY, FAILED, SKIPPED = "succeeded", "retry", "failed", "skipped"


class _Attempt:
    """The :class:`app.jobs.kinds.JobRun` a kind is given."""

    def __init__(self, session: Session, job: Job, principal: Principal | None, now: datetime, instance: str):
        self.session, self.job, self.principal, self.now = session, job, principal, now
        self._instance = instance
        self._in_step = False
        self._temp: str | None = None
        self.file: tuple[str, str, str] | None = None
        self.summary: dict[str, Any] | None = None

    @contextmanager
    def step(self) -> Iterator[Session]:
        with transaction(self.session, self.principal) as session:
            self._in_step = True
            try:
                yield session
            finally:
                self._in_step = False

    def report(self, done: int, total: int | None = None) -> None:
        self.job.progress_done = max(0, done)
        if total is not None:
            self.job.progress_total = max(0, total)
        self.job.heartbeat_at = utcnow()
        if not self._in_step:
            with transaction(self.session, self.principal):
                pass  # the progress alone, so that the user sees it now

    @contextmanager
    def result_file(self) -> Iterator[IO[bytes]]:
        folder = os.path.join(self._instance, RESULTS_FOLDER, str(self.job.id))
        os.makedirs(folder, exist_ok=True)
        self._temp = os.path.join(folder, f".attempt-{self.job.attempts}.part")
        with open(self._temp, "wb") as out:
            yield out

    def finish_with_file(self, ascii_name: str, utf8_name: str, mime: str) -> None:
        if self._temp is None:
            raise RuntimeError("finish_with_file without result_file")
        extension = os.path.splitext(ascii_name)[1][:10]
        relative = os.path.join(RESULTS_FOLDER, str(self.job.id), f"result{extension}")
        self.file = (relative, utf8_name[:200], mime)
        self._final = os.path.join(self._instance, relative)

    def finish_with_summary(self, summary: dict[str, Any]) -> None:
        self.summary = summary

    def publish(self) -> None:
        """Move the complete file to its final name (before the transaction that names it)."""
        if self.file is not None and self._temp is not None:
            os.replace(self._temp, self._final)
            self._temp = None

    def discard(self) -> None:
        if self._temp is not None and os.path.exists(self._temp):
            os.remove(self._temp)
        self._temp = None


@contextmanager
def transaction(session: Session, principal: Principal | None) -> Iterator[Session]:
    """A job's unit of work: :func:`cli_transaction`, with the requester named in the audit trail."""
    with cli_transaction(session) as inside:
        for hook in wiring_of(session).job_transaction_begins:
            hook(inside, principal)
        yield inside


def _principal(session: Session, job: Job) -> Principal | None:
    user = session.get(User, job.requested_by_id) if job.requested_by_id is not None else None
    return Principal(user=user) if user is not None else None


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, DomainError):
        return exc.detail
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def run_attempt(job_id: int) -> str:
    """Run the next attempt of job ``job_id`` in the current app context: SUCCEEDED, RETRY (it
    failed and attempts remain), FAILED (it failed for the last time) or SKIPPED (nothing to run)."""
    session = db.session()
    now = utcnow()
    with transaction(session, None):
        job = claim(session, job_id, now)
        if job is None:
            return SKIPPED
        principal = _principal(session, job)
    attempt = _Attempt(session, job, principal, now, current_app.instance_path)
    try:
        kind = job_kind(session, job.kind)
        kind.run(attempt, dict(job.params))
        attempt.publish()
        with transaction(session, principal):
            record_success(session, job, utcnow(), file=attempt.file, summary=attempt.summary)
        return SUCCEEDED
    except Exception as exc:  # any failure of the work is the job's, recorded on it
        session.rollback()
        attempt.discard()
        log.warning("job %s (%s) attempt %s failed: %s", job_id, job.kind, job.attempts, exc, exc_info=True)
        with transaction(session, principal):
            job = session.get(Job, job_id, populate_existing=True) or job
            again = record_failure(session, job, _error_text(exc), utcnow())
        return RETRY if again else FAILED
