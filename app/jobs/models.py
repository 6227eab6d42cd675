"""A job: long work (the colour sweep, an export) run outside the request that asked for it.

The row is the job's whole visible state: who asked, what for (kind and params), where it is
(state, progress, attempts), and what came of it (a file under the instance path, or a JSON
summary). The queue (RQ, or the app's own thread when no queue is configured) only carries the
job's id; whatever the queue loses, the row tells the truth.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.common.columns import state_type
from app.common.timeutil import utcnow
from app.common.types import UTCDateTime
from app.extensions import Model


class JobState(StrEnum):
    QUEUED = "queued"  # waiting for a worker (also between two attempts)
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # the result (file or summary) is complete
    FAILED = "failed"  # every attempt failed; ``error`` says why

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED)


class Job(Model):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("progress_done >= 0", name="progress_done_not_negative"),
        CheckConstraint("progress_total IS NULL OR progress_total >= 0", name="progress_total_not_negative"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # Listing a user's jobs, newest first (GET /api/v1/jobs, /jobs).
        Index("ix_jobs_requested_by_id_id", "requested_by_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # None for a job asked for from the command line (``boxes sweep --queue``): operators' only.
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    state: Mapped[JobState] = mapped_column(state_type(JobState, "state", 12), default=JobState.QUEUED, index=True)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    error: Mapped[str | None] = mapped_column(String(1000))
    # A file result: its path relative to the instance folder, the name to download it as, its type.
    result_path: Mapped[str | None] = mapped_column(String(300))
    result_name: Mapped[str | None] = mapped_column(String(200))
    result_mime: Mapped[str | None] = mapped_column(String(120))
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Written with every progress report: a running job whose heartbeat is old lost its worker.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def progress_share(self) -> float | None:
        if not self.progress_total:
            return 1.0 if self.state == JobState.SUCCEEDED else None
        return min(1.0, self.progress_done / self.progress_total)
