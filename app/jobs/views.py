"""Jobs: ask for one (API), follow its progress (API and the /jobs pages), download its result.

Thin: parse, call :mod:`app.jobs.services`, render. A job is handed to its queue after the
request's transaction has committed (:func:`app.jobs.dispatch.start_after_commit`).
"""

from __future__ import annotations

import os

from flask import Blueprint as PageBlueprint
from flask import current_app, redirect, render_template, request, send_file, url_for
from flask.views import MethodView
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import login_required
from flask_smorest import Blueprint
from marshmallow import ValidationError

from app.common.auth import require_user
from app.common.errors import Conflict, DomainError, NotFound
from app.common.timeutil import utcnow
from app.common.tx import rollback_request
from app.common.wiring import current_wiring
from app.extensions import db
from app.jobs import dispatch, schemas, services
from app.jobs.models import Job, JobState
from app.translations import localise_error
from app.web import paging
from app.web.form_tokens import user_fields

blp = Blueprint("jobs", __name__, description="Jobs (后台任务): the colour sweep and exports, run on the queue")


@blp.route("/jobs")
class JobsView(MethodView):
    @blp.arguments(schemas.JobListQuery, location="query")
    @blp.response(200, schemas.JobListOut)
    def get(self, args):
        """The caller's jobs (an organisation's admin: also its staff's), newest first; next page
        with ``before=<next_before>``."""
        items, next_before = services.visible_jobs(db.session(), require_user(), args.get("before"), args["limit"])
        return {"items": items, "next_before": next_before}

    @blp.arguments(schemas.JobIn)
    @blp.response(202, schemas.JobOut)
    def post(self, body):
        """Ask for a job: ``{"kind": "export", "params": {"export": "statistics", "format": "xlsx",
        "scope": "city", "period": "2026"}}`` or ``{"kind": "colour_sweep"}`` (operators). The
        params are checked per kind (422 per field under ``params``), and the caller's right to
        what the job produces as the direct request would (403/404). Answers 202 with the job;
        follow it at ``GET /api/v1/jobs/{id}``."""
        job = services.request_job(
            db.session(),
            require_user(),
            body["kind"],
            body["params"],
            utcnow(),
            max_attempts=int(current_app.config.get("JOB_MAX_ATTEMPTS") or 3),
        )
        dispatch.start_after_commit(job.id)
        return job, 202, {"Location": f"/api/v1/jobs/{job.id}"}


@blp.route("/jobs/<int:job_id>")
@blp.response(200, schemas.JobOut)
def job_detail(job_id: int):
    """A job's state and progress (its requester and their organisation's admins; else 404)."""
    return services.visible_job(db.session(), require_user(), job_id)


@blp.route("/jobs/<int:job_id>/result")
@blp.response(200, content_type="application/octet-stream")
def job_result(job_id: int):
    """The job's result file, once it succeeded (409 before; 404 for a job without a file)."""
    job = services.visible_job(db.session(), require_user(), job_id)
    return _result_file(job)


def _result_file(job: Job):
    if job.state != JobState.SUCCEEDED:
        raise Conflict(f"任务 {job.id} 尚未完成 (job {job.id} has not succeeded: {job.state})")
    path = os.path.join(current_app.instance_path, job.result_path) if job.result_path else None
    if path is None or not os.path.isfile(path):
        raise NotFound(f"任务 {job.id} 没有结果文件 (job {job.id} has no result file)")
    return send_file(path, mimetype=job.result_mime, as_attachment=True, download_name=job.result_name)


# ---------------------------------------------------------------- pages

pages = PageBlueprint("job_pages", __name__, template_folder="../templates")


def kind_title(name: str) -> str:
    kind = current_wiring().job_kinds.get(name)
    if kind is None:
        return name
    return kind.title_zh if str(get_locale() or "zh") == "zh" else (kind.title_en or kind.title_zh)


def job_title(job: Job) -> str:
    """What a person asked for: an export's own name ("导出 · 联单台账 (XLSX)"), else the kind's."""
    title = kind_title(job.kind)
    params = job.params or {}
    export = current_wiring().job_exports.get(str(params.get("export") or "")) if job.kind == "export" else None
    if export is None:
        return title
    name = export.title_zh if str(get_locale() or "zh") == "zh" else (export.title_en or export.title_zh)
    fmt = str(params.get("format") or "").upper()
    return f"{title} · {name}" + (f" ({fmt})" if fmt else "")


def state_names() -> dict[str, str]:
    return {"queued": _("排队中"), "running": _("运行中"), "succeeded": _("已完成"), "failed": _("失败")}


@pages.app_context_processor
def _helpers():
    return {"job_kind_title": kind_title, "job_title": job_title, "job_state_names": state_names}


JOBS_PER_PAGE = 50


@pages.route("/jobs")
@login_required
def job_list():
    page = paging.keyset_page(services.jobs_query(require_user()), JOBS_PER_PAGE)
    return render_template("jobs_list.html", jobs=page.items, page=page)


@pages.route("/jobs/export", methods=["POST"])
@login_required
def start_export():
    """A page's "后台导出" button: an ``export`` job with the form's fields as its params (the
    export named, its format and its filters; empty fields left out), then the job's page."""
    principal = require_user()
    form = {k: v.strip() for k, v in user_fields(request.form).items() if v and v.strip()}
    params = {k: v for k, v in form.items() if k in EXPORT_FIELDS}
    try:
        job = services.request_job(
            db.session(),
            principal,
            "export",
            params,
            utcnow(),
            max_attempts=int(current_app.config.get("JOB_MAX_ATTEMPTS") or 3),
        )
    except ValidationError as exc:
        rollback_request(db.session())
        return _refused(422, _("导出参数有误：%(detail)s", detail=_messages(exc.messages)))
    except DomainError as exc:
        rollback_request(db.session())
        return _refused(exc.status, localise_error(exc))
    dispatch.start_after_commit(job.id)
    return redirect(url_for("job_pages.job_page", job_id=job.id), 303)


#: The fields a page's export form may send (the ``export`` kind's and its exports' params).
EXPORT_FIELDS = frozenset(
    {"export", "format", "view", "status", "colour", "county", "park", "enterprise", "q", "sort", "lang"}
    | {"scope", "park_id", "county_code", "period", "base_year", "from", "to", "waste_code"}
)


def _messages(messages) -> str:
    if isinstance(messages, dict):
        return "；".join(f"{k}: {_messages(v)}" for k, v in messages.items())
    if isinstance(messages, list):
        return "；".join(_messages(m) for m in messages)
    return str(messages)


def _refused(status: int, detail: str):
    return render_template("error.html", status=status, title=_("无法开始导出"), detail=detail), status


@pages.route("/jobs/<int:job_id>")
@login_required
def job_page(job_id: int):
    job = services.visible_job(db.session(), require_user(), job_id)
    return render_template("jobs_detail.html", job=job)


API_BLUEPRINTS = (blp,)
BLUEPRINTS = (pages,)
