"""Retries, failures and jobs stopped half-way (in-process; the RQ twin is test_rq.py)."""

from __future__ import annotations

import os
from datetime import timedelta

from app.boxes import services as box_services
from app.extensions import db
from app.jobs import dispatch
from app.jobs.kinds import ExportKind, ExportMeta
from app.jobs.models import Job, JobState
from app.jobs.schemas import StatisticsExportParams
from tests import factories
from tests.jobs.conftest import make_kind


def _flaky(failures: int):
    """A kind that fails its first ``failures`` attempts, after some progress, then succeeds."""
    seen = {"attempts": 0}

    def run(attempt, params):
        seen["attempts"] += 1
        attempt.report(1, 3)
        if seen["attempts"] <= failures:
            raise RuntimeError(f"boom {seen['attempts']}")
        attempt.report(3, 3)
        attempt.finish_with_summary({"ok": True})

    return run


def _job(api, kind: str, as_: str = "op") -> int:
    r = api.post("/api/v1/jobs", {"kind": kind}, as_=as_)
    assert r.status_code == 202, r.get_json()
    return r.get_json()["id"]


def test_a_failing_attempt_is_retried_and_the_job_then_succeeds(api, world, extra_kinds, finish_jobs):
    extra_kinds({"flaky": make_kind("flaky", _flaky(failures=2))})
    job_id = _job(api, "flaky")
    finish_jobs()
    body = api.get(f"/api/v1/jobs/{job_id}", as_="op").get_json()
    assert body["state"] == "succeeded" and body["attempts"] == 3 and body["error"] is None
    assert body["summary"] == {"ok": True} and body["progress_done"] == 3


def test_a_job_that_always_fails_ends_failed_with_its_error_after_its_attempts(api, world, extra_kinds, finish_jobs):
    extra_kinds({"broken": make_kind("broken", _flaky(failures=99))})
    job_id = _job(api, "broken")
    finish_jobs()
    body = api.get(f"/api/v1/jobs/{job_id}", as_="op").get_json()
    assert body["state"] == "failed" and body["attempts"] == 3 == body["max_attempts"]
    assert body["error"] == "RuntimeError: boom 3" and body["finished_at"]
    assert body["progress_done"] == 1  # as far as it got; never shown as done
    assert body["summary"] is None and body["result_url"] is None
    assert api.get(f"/api/v1/jobs/{job_id}/result", as_="op").status_code == 409


def _half_written(stop: bool):
    """An export that writes part of its file, reports progress, and dies half-way (or not)."""

    def write(session, actor, params, fmt, out, report):
        out.write(b"first half;")
        report(1, 2)
        if stop:
            raise SystemError("worker killed half-way")
        out.write(b"second half")
        report(2, 2)
        return ExportMeta("half.csv", "一半.csv", "text/csv")

    return ExportKind(name="half", params_schema=StatisticsExportParams, authorise=lambda *_: None, write=write)


def _export(api, as_="reg_city"):
    body = {"kind": "export", "params": {"export": "half", "scope": "city", "period": "2025"}}
    r = api.post("/api/v1/jobs", body, as_=as_)
    assert r.status_code == 202, r.get_json()
    return r.get_json()["id"]


def test_a_job_stopped_half_way_leaves_no_result_marked_done(app, api, world, extra_kinds, finish_jobs):
    extra_kinds(exports={"half": _half_written(stop=True)})
    job_id = _export(api)
    finish_jobs()
    body = api.get(f"/api/v1/jobs/{job_id}", as_="reg_city").get_json()
    assert body["state"] == "failed" and body["error"] == "SystemError: worker killed half-way"
    assert body["result_url"] is None and body["result_name"] is None
    assert api.get(f"/api/v1/jobs/{job_id}/result", as_="reg_city").status_code == 409
    folder = os.path.join(app.instance_path, "jobs", str(job_id))
    assert not os.path.isdir(folder) or os.listdir(folder) == []  # the partial file is gone too


def test_a_complete_file_replaces_nothing_until_it_is_whole(app, api, world, extra_kinds, finish_jobs):
    extra_kinds(exports={"half": _half_written(stop=False)})
    job_id = _export(api)
    finish_jobs()
    result = api.get(f"/api/v1/jobs/{job_id}/result", as_="reg_city")
    assert result.status_code == 200 and result.data == b"first half;second half"
    assert os.listdir(os.path.join(app.instance_path, "jobs", str(job_id))) == ["result.csv"]


def test_a_job_whose_worker_died_is_resumed_and_its_attempt_counted(app, world, session, extra_kinds):
    extra_kinds({"flaky": make_kind("flaky", _flaky(failures=0))})
    # As a worker killed after claiming it leaves it: running, one attempt spent, no result.
    job = Job(kind="flaky", params={}, requested_by_id=None, state=JobState.RUNNING, attempts=1, max_attempts=3)
    session.add(job)
    session.commit()
    result = app.test_cli_runner().invoke(args=["jobs", "resume"])
    assert result.exit_code == 0 and f"job {job.id}: succeeded" in result.output, result.output
    db.session.expire_all()
    again = db.session.get(Job, job.id)
    assert again.state == JobState.SUCCEEDED and again.attempts == 2
    assert "no unfinished jobs" in app.test_cli_runner().invoke(args=["jobs", "resume"]).output


def test_a_finished_job_handed_out_again_is_not_run_again(app, world, session, extra_kinds):
    calls = []
    extra_kinds({"counted": make_kind("counted", lambda attempt, params: calls.append(1))})
    job = Job(kind="counted", params={}, state=JobState.SUCCEEDED, attempts=1, max_attempts=3)
    session.add(job)
    session.commit()
    assert dispatch.run_in_process(app, job.id) == "skipped" and calls == []


def test_boxes_sweep_queue_runs_the_sweep_as_a_job_without_a_queue(app, api, world, session, now):
    box = factories.box(world.enterprise, now=now - timedelta(days=30))
    box_services.record_fill(
        session,
        factories.op_principal(),
        box,
        {"mass_kg": 2000.0, "iodine_mg_g": 900.0, "filled_at": now - timedelta(days=20)},
        now=now - timedelta(days=20),
    )
    session.commit()
    result = app.test_cli_runner().invoke(args=["boxes", "sweep", "--queue", "--chunk", "10"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    job = db.session.query(Job).one()
    assert f"job {job.id}: succeeded" in result.output
    assert job.kind == "colour_sweep" and job.summary == {"boxes_evaluated": 1} and job.requested_by_id is None
    listed = api.get("/api/v1/jobs", as_="op").get_json()["items"]  # a command's job: the operators'
    assert [j["id"] for j in listed] == [job.id]
    assert api.get(f"/api/v1/jobs/{job.id}", as_="ent").status_code == 404
    plain = app.test_cli_runner().invoke(args=["boxes", "sweep"])
    assert plain.exit_code == 0 and "0 boxes re-evaluated" in plain.output  # run directly, nothing left


def test_the_worker_needs_a_queue(app):
    result = app.test_cli_runner().invoke(args=["jobs", "worker", "--burst"])
    assert result.exit_code != 0 and "JOB_QUEUE_URL" in result.output
