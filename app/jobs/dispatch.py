"""Where a job runs: RQ on Redis (``JOB_QUEUE_URL``), or this process (the embedded default).

A job is handed to its queue only after the transaction that created it has committed (a worker
must find the row): a request names its jobs with :func:`start_after_commit`, and the app's
teardown (after the transaction boundary has committed, app/common/tx.py) hands them over.

Without a queue, jobs run on one background thread per process (a ``ThreadPoolExecutor`` of one
worker, made on first use, so each gunicorn worker makes its own after the fork): the request
answers at once and the user follows the progress, as with a queue. One thread, because the
embedded database (SQLite) has one writer anyway, and the sweep and exports are not urgent.
Retries wait ``JOB_RETRY_SECONDS`` on that thread. A job whose process ended before it finished
stays queued or running; ``flask --app wsgi jobs resume`` runs (or enqueues) it again.

With a queue, each job is enqueued with ``Retry(max=JOB_MAX_ATTEMPTS - 1, interval=…)``; the RQ
worker (``flask --app wsgi jobs worker``) runs :func:`rq_entry` in its app, a fresh app context
(and so session) per job.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from flask import Flask, current_app, g

from app.jobs.runner import RETRY, run_attempt

EXTENSION_KEY = "tanxiang.jobs"


class AttemptFailed(Exception):
    """Raised to RQ so that its Retry runs the job's next attempt (the row says why it failed)."""


@dataclass
class InProcess:
    lock: threading.Lock = field(default_factory=threading.Lock)
    executor: ThreadPoolExecutor | None = None
    futures: list[Future] = field(default_factory=list)


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION_KEY] = InProcess()
    app.teardown_request(_hand_over)


def retry_intervals(app: Flask) -> list[int]:
    text = str(app.config.get("JOB_RETRY_SECONDS") or "0")
    return [max(0, int(part)) for part in text.split(",") if part.strip().isdigit()] or [0]


def start_after_commit(job_id: int) -> None:
    g.setdefault("_jobs_to_start", []).append(job_id)


def _hand_over(exc: BaseException | None) -> None:
    job_ids = g.pop("_jobs_to_start", [])
    if exc is None and job_ids:
        app = current_app._get_current_object()  # type: ignore[attr-defined]  # a LocalProxy typed as Flask
        for job_id in job_ids:
            submit(app, job_id)


def queue_of(app: Flask):
    """The app's RQ queue, or None without ``JOB_QUEUE_URL``."""
    url = app.config.get("JOB_QUEUE_URL")
    if not url:
        return None
    from redis import Redis
    from rq import Queue

    return Queue(app.config.get("JOB_QUEUE_NAME") or "tanxiang", connection=Redis.from_url(url))


def submit(app: Flask, job_id: int) -> None:
    """Hand job ``job_id`` (committed) to the app's queue, or to this process's thread."""
    queue = queue_of(app)
    if queue is not None:
        from rq import Retry

        attempts = max(1, int(app.config.get("JOB_MAX_ATTEMPTS") or 1))
        retry = Retry(max=attempts - 1, interval=retry_intervals(app)) if attempts > 1 else None
        try:
            queue.enqueue(
                rq_entry,
                job_id,
                retry=retry,
                job_timeout=int(app.config.get("JOB_TIMEOUT_SECONDS") or 3600),
                description=f"tanxiang job {job_id}",
            )
        except Exception as exc:  # Redis down: the row stays queued; `jobs resume` enqueues it later
            app.logger.warning("job %s could not be enqueued: %s", job_id, exc)
        return
    state: InProcess = app.extensions[EXTENSION_KEY]
    with state.lock:
        if state.executor is None:
            state.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tanxiang-job")
        state.futures = [f for f in state.futures if not f.done()]
        state.futures.append(state.executor.submit(run_in_process, app, job_id))


def run_in_process(app: Flask, job_id: int) -> str:
    """Every attempt of the job, here, waiting between them; its last outcome."""
    intervals = retry_intervals(app)
    failures = 0
    while True:
        with app.app_context():
            outcome = run_attempt(job_id)
        if outcome != RETRY:
            return outcome
        time.sleep(intervals[min(failures, len(intervals) - 1)])
        failures += 1


def wait_in_process(app: Flask, timeout: float | None = None) -> None:
    """Until this process's jobs have run (tests, and the command line's runs)."""
    state: InProcess = app.extensions[EXTENSION_KEY]
    with state.lock:
        pending = list(state.futures)
    wait(pending, timeout=timeout)
    for future in pending:
        if future.done():
            future.result()  # a bug in the runner itself is not swallowed


def rq_entry(job_id: int) -> str:
    """The function RQ runs: one attempt in a fresh app context of the worker's app."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # a LocalProxy typed as Flask
    with app.app_context():
        outcome = run_attempt(job_id)
    if outcome == RETRY:
        raise AttemptFailed(f"job {job_id}: attempt failed, retried")
    return outcome


def request_from_cli(kind: str, params: dict) -> tuple[int, str | None]:
    """A job asked for on the command line (no user: operators see it), committed, then handed to
    the queue: (its id, None). Without a queue it runs here and now, since a command's process
    ends with it: (its id, its outcome)."""
    from app.common.timeutil import utcnow
    from app.common.tx import cli_transaction
    from app.extensions import db
    from app.jobs.services import request_job

    app = current_app._get_current_object()  # type: ignore[attr-defined]  # a LocalProxy typed as Flask
    with cli_transaction(db.session()) as session:
        job = request_job(session, None, kind, params, utcnow(), int(app.config.get("JOB_MAX_ATTEMPTS") or 3))
        job_id = job.id
    if queue_of(app) is not None:
        submit(app, job_id)
        return job_id, None
    return job_id, run_in_process(app, job_id)
