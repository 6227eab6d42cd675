"""The jobs' rules: who may ask for a job, who sees it, and the steps of its state (no Flask)."""

from app.jobs.services.requests import job_kind, jobs_query, may_see, request_job, visible_job, visible_jobs
from app.jobs.services.states import claim, record_failure, record_success

__all__ = [
    "claim",
    "job_kind",
    "jobs_query",
    "may_see",
    "record_failure",
    "record_success",
    "request_job",
    "visible_job",
    "visible_jobs",
]
