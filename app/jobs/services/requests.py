"""Asking for a job, and who sees it.

A job is seen by the user who asked for it and by the admins of that user's organisation (who
answer for what their staff export); a job asked for from the command line (no user) by
operators. Anyone else gets "not found", as for every object they may not see.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import false, or_, select
from sqlalchemy.orm import Session

from app.accounts.models import UserRole
from app.accounts.services import Principal
from app.common.errors import Forbidden, InvalidInput, NotFound
from app.common.wiring import wiring_of
from app.jobs.kinds import JobKind
from app.jobs.models import Job, JobState


def job_kind(session: Session, name: str) -> JobKind:
    kinds = wiring_of(session).job_kinds
    kind = kinds.get(name)
    if kind is None:
        raise InvalidInput.field("kind", f"unknown job kind {name!r}; one of {', '.join(sorted(kinds))}")
    return kind


def request_job(
    session: Session,
    actor: Principal | None,
    kind_name: str,
    params: dict[str, Any],
    now: datetime,
    max_attempts: int = 3,
) -> Job:
    """A queued job of ``kind_name`` for ``actor`` (None: the command line, trusted). The params
    are validated by the kind's schema (422 per field, under ``params``) and the kind decides
    whether ``actor`` may ask for it (403/404/422 as the same request would answer)."""
    if actor is not None and actor.is_device:
        raise Forbidden("设备令牌只能上传监测数据 (device tokens may only ingest readings)")
    kind = job_kind(session, kind_name)
    try:
        loaded = kind.load_params(session, params)
    except ValidationError as exc:
        raise ValidationError({"params": exc.messages}) from exc
    if actor is not None:
        kind.authorise(session, actor, loaded)
    user = actor.user if actor is not None else None
    org = actor.organization if actor is not None else None
    job = Job(
        kind=kind.name,
        params=_json_params(loaded),
        requested_by_id=user.id if user is not None else None,
        organization_id=org.id if org is not None else None,
        state=JobState.QUEUED,
        progress_done=0,
        attempts=0,
        max_attempts=max(1, max_attempts),
        created_at=now,
    )
    session.add(job)
    session.flush()
    return job


def _json_params(loaded: dict[str, Any]) -> dict[str, Any]:
    # The loaded params as stored (JSON): the schemas of the kinds load plain values only.
    return {k: v for k, v in loaded.items() if v is not None}


def may_see(actor: Principal, job: Job) -> bool:
    user = actor.user
    if user is None:
        return False
    if job.requested_by_id is None:
        return actor.is_operator
    if job.requested_by_id == user.id:
        return True
    return (
        user.role == UserRole.ADMIN and job.organization_id is not None and job.organization_id == user.organization_id
    )


def visible_job(session: Session, actor: Principal, job_id: int) -> Job:
    job = session.get(Job, job_id) if 0 < job_id < 2**31 else None
    if job is None or not may_see(actor, job):
        raise NotFound(f"任务 {job_id} 不存在 (job {job_id} not found)")
    return job


def jobs_query(actor: Principal):
    """The jobs ``actor`` sees, newest first (a select of :class:`Job`)."""
    user = actor.user
    if user is None:
        return select(Job).where(false())
    seen = [Job.requested_by_id == user.id]
    if user.role == UserRole.ADMIN and user.organization_id is not None:
        seen.append(Job.organization_id == user.organization_id)
    if actor.is_operator:
        seen.append(Job.requested_by_id.is_(None))
    return select(Job).where(or_(*seen)).order_by(Job.id.desc())


def visible_jobs(
    session: Session, actor: Principal, before: int | None = None, limit: int = 50
) -> tuple[list[Job], int | None]:
    """The jobs ``actor`` sees, newest first, keyset-paginated by id: (page, next ``before``)."""
    if actor.user is None:
        return [], None
    query = jobs_query(actor).limit(limit + 1)
    if before is not None:
        query = query.where(Job.id < before)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)
