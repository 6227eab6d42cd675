"""Jobs in the embedded default (no queue): asked for over HTTP, run on the app's thread, followed
and downloaded over HTTP; seen only by the requester and their organisation's admins."""

from __future__ import annotations

import io
from datetime import timedelta

import openpyxl

from app.boxes import services as box_services
from app.boxes.models import Box
from app.extensions import db
from app.jobs.models import Job
from tests import factories
from tests.web.builders import login

LAST_YEAR = "2025"


def statistics_job(fmt: str = "csv", **params):
    return {
        "kind": "export",
        "params": {"export": "statistics", "format": fmt, "scope": "city", "period": LAST_YEAR, **params},
    }


def test_a_statistics_export_runs_in_process_and_downloads_as_the_direct_one(api, world, finish_jobs):
    r = api.post("/api/v1/jobs", statistics_job("csv"), as_="reg_city")
    assert r.status_code == 202, r.get_json()
    job = r.get_json()
    assert job["state"] == "queued" and job["kind"] == "export" and r.headers["Location"] == f"/api/v1/jobs/{job['id']}"
    finish_jobs()
    done = api.get(f"/api/v1/jobs/{job['id']}", as_="reg_city").get_json()
    assert done["state"] == "succeeded", done
    assert (done["progress_done"], done["progress_total"], done["progress_share"]) == (2, 2, 1.0)
    assert done["attempts"] == 1 and done["error"] is None and done["finished_at"]
    assert done["result_url"] == f"/api/v1/jobs/{job['id']}/result"
    result = api.get(done["result_url"], as_="reg_city")
    assert result.status_code == 200 and result.mimetype == "text/csv"
    assert "attachment" in result.headers["Content-Disposition"]
    direct = api.get(f"/api/v1/metrics.csv?period={LAST_YEAR}", as_="reg_city")
    assert result.data == direct.data and result.data.startswith("\ufeff".encode())


def test_an_xlsx_export_is_a_workbook(api, world, finish_jobs):
    job = api.post("/api/v1/jobs", statistics_job("xlsx"), as_="reg_city").get_json()
    finish_jobs()
    result = api.get(f"/api/v1/jobs/{job['id']}/result", as_="reg_city")
    assert result.status_code == 200 and "spreadsheetml" in result.mimetype
    book = openpyxl.load_workbook(io.BytesIO(result.data))
    assert book.sheetnames[0] == "汇总" and "月度填埋占比" in book.sheetnames


def test_only_the_requester_and_their_organisations_admins_see_a_job(api, world, client, finish_jobs):
    job = api.post("/api/v1/jobs", statistics_job(), as_="reg_city").get_json()
    finish_jobs()
    factories.user(world.regulator_city, "reg_city_admin", "admin")
    factories.user(world.regulator_city, "reg_city_colleague", "staff")
    db.session.commit()
    for who in ("reg_city", "reg_city_admin"):
        assert api.get(f"/api/v1/jobs/{job['id']}", as_=who).status_code == 200
        assert [j["id"] for j in api.get("/api/v1/jobs", as_=who).get_json()["items"]] == [job["id"]]
        assert api.get(f"/api/v1/jobs/{job['id']}/result", as_=who).status_code == 200
    for who in ("reg_city_colleague", "reg_tt", "ent", "op"):
        assert api.get(f"/api/v1/jobs/{job['id']}", as_=who).status_code == 404, who
        assert api.get(f"/api/v1/jobs/{job['id']}/result", as_=who).status_code == 404, who
        assert api.get("/api/v1/jobs", as_=who).get_json()["items"] == []
    assert api.get("/api/v1/jobs/999999", as_="reg_city").status_code == 404
    assert api.get(f"/api/v1/jobs/{job['id']}", as_=None).status_code == 401


def test_the_pages_show_progress_in_chinese_and_hide_others_jobs(app, api, world, finish_jobs):
    job = api.post("/api/v1/jobs", statistics_job(), as_="reg_city").get_json()
    page_client = login(app, "reg_city")
    queued = page_client.get(f"/jobs/{job['id']}")
    assert queued.status_code == 200
    finish_jobs()
    page = page_client.get(f"/jobs/{job['id']}").get_data(as_text=True)
    assert "已完成" in page and "下载结果" in page and 'http-equiv="refresh"' not in page
    listing = page_client.get("/jobs").get_data(as_text=True)
    assert f'data-job="{job["id"]}"' in listing and "导出" in listing
    other = login(app, "ent")
    assert other.get(f"/jobs/{job['id']}").status_code == 404
    assert f'data-job="{job["id"]}"' not in other.get("/jobs").get_data(as_text=True)


def test_a_running_job_page_refreshes_itself(app, world, session):
    job = Job(
        kind="export",
        params={},
        requested_by_id=world.users["ent"].id,
        state="running",
        progress_done=3,
        progress_total=10,
    )
    session.add(job)
    session.commit()
    page_client = login(app, "ent")
    page = page_client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert 'http-equiv="refresh"' in page and "运行中" in page and 'value="30"' in page


def test_params_are_checked_per_kind_with_messages_per_field(api, world):
    def errors(body, as_="reg_city"):
        r = api.post("/api/v1/jobs", body, as_=as_)
        assert r.status_code == 422, r.get_json()
        return r.get_json()["errors"]

    assert "kind" in errors({"kind": "mine_bitcoin"})
    assert "format" in errors(statistics_job("pdf"))["params"]
    assert "park_id" in errors(statistics_job(scope="park"))["params"]
    assert "export" in errors({"kind": "export", "params": {"export": "nope"}})["params"]
    assert "chunk" in errors({"kind": "colour_sweep", "params": {"chunk": 0}}, as_="op")["params"]
    assert "unexpected" in errors({"kind": "colour_sweep", "params": {"unexpected": 1}}, as_="op")["params"]
    future = api.post("/api/v1/jobs", statistics_job(period="2099"), as_="reg_city")
    assert future.status_code == 422 and "period" in future.get_json()["errors"]
    assert db.session.query(Job).count() == 0


def test_a_job_may_be_asked_for_only_by_whoever_may_have_its_result(api, world):
    assert api.post("/api/v1/jobs", statistics_job(), as_="ent").status_code == 403  # not a regulator
    county = statistics_job(scope="county", county_code="331081")
    assert api.post("/api/v1/jobs", county, as_="reg_tt").status_code == 403  # another county
    assert api.post("/api/v1/jobs", {"kind": "colour_sweep"}, as_="reg_city").status_code == 403
    unknown_park = statistics_job(scope="park", park_id=424242)
    assert api.post("/api/v1/jobs", unknown_park, as_="reg_city").status_code == 404
    assert db.session.query(Job).count() == 0


def test_the_colour_sweep_job_reports_progress_chunk_by_chunk(api, world, session, now, finish_jobs):
    boxes = [factories.box(world.enterprise, now=now - timedelta(days=30)) for _ in range(3)]
    for box in boxes:
        box_services.record_fill(
            session,
            factories.op_principal(),
            box,
            {"mass_kg": 2000.0, "iodine_mg_g": 900.0, "filled_at": now - timedelta(days=20)},
            now=now - timedelta(days=20),
        )
    session.commit()
    assert {b.colour for b in boxes} == {"green"}  # as evaluated 20 days ago: due since
    job = api.post("/api/v1/jobs", {"kind": "colour_sweep", "params": {"chunk": 2}}, as_="op").get_json()
    finish_jobs()
    done = api.get(f"/api/v1/jobs/{job['id']}", as_="op").get_json()
    assert done["state"] == "succeeded" and (done["progress_done"], done["progress_total"]) == (3, 3)
    assert done["summary"] == {"boxes_evaluated": 3} and done["result_url"] is None
    assert api.get(f"/api/v1/jobs/{job['id']}/result", as_="op").status_code == 404  # a summary, no file
    assert {session.get(Box, b.id).colour for b in boxes} == {"red"}


def test_a_jobs_work_is_in_the_audit_trail_as_its_requesters_and_verifies(app, api, world, session, now, finish_jobs):
    from app.audit.models import AuditEntry

    box = factories.box(world.enterprise, now=now - timedelta(days=30))
    box_services.record_fill(
        session,
        factories.op_principal(),
        box,
        {"mass_kg": 2000.0, "iodine_mg_g": 900.0, "filled_at": now - timedelta(days=20)},
        now=now - timedelta(days=20),
    )
    session.commit()
    job = api.post("/api/v1/jobs", {"kind": "colour_sweep"}, as_="op").get_json()
    finish_jobs()
    changes = session.query(AuditEntry).filter_by(table_name="colour_changes", interface="job").all()
    assert changes and {e.user_id for e in changes} == {world.users["op"].id}
    job_entries = session.query(AuditEntry).filter_by(table_name="jobs").order_by(AuditEntry.seq).all()
    assert job_entries[0].interface == "api" and "job" in {e.interface for e in job_entries}
    assert all('"progress_done"' not in (e.before or "") for e in job_entries)  # progress is not audited
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert api.get(f"/api/v1/jobs/{job['id']}", as_="op").get_json()["state"] == "succeeded"


def test_the_regulators_red_box_list_exports_as_a_job_as_the_page_downloads_it(
    app, api, world, session, now, finish_jobs
):
    import csv

    box = factories.box(world.enterprise, now=now - timedelta(days=30))
    box_services.record_fill(
        session,
        factories.op_principal(),
        box,
        {"mass_kg": 2000.0, "iodine_mg_g": 900.0, "filled_at": now - timedelta(days=20)},
        now=now - timedelta(days=20),
    )
    session.commit()
    body = {"kind": "export", "params": {"export": "colour_boxes", "format": "csv", "colour": "red"}}
    assert api.post("/api/v1/jobs", body, as_="ent").status_code == 403  # not an overseer
    elsewhere = {**body, "params": {**body["params"], "county": "331081"}}
    assert api.post("/api/v1/jobs", elsewhere, as_="reg_tt").status_code == 404  # outside its county
    job = api.post("/api/v1/jobs", body, as_="reg_tt").get_json()
    finish_jobs()
    done = api.get(f"/api/v1/jobs/{job['id']}", as_="reg_tt").get_json()
    assert done["state"] == "succeeded" and done["progress_done"] == done["progress_total"] == 1
    exported = api.get(done["result_url"], as_="reg_tt").data.decode("utf-8-sig")
    page = login(app, "reg_tt").get("/oversight/boxes/red?format=csv").data.decode("utf-8-sig")
    rows, page_rows = list(csv.reader(io.StringIO(exported))), list(csv.reader(io.StringIO(page)))
    assert rows[0] == page_rows[0] and rows[0][0] == "碳箱码"  # the page's headers, in Chinese
    assert [r[0] for r in rows[1:]] == [r[0] for r in page_rows[1:]] == [box.code]
    assert rows[1][4] == "红码" and rows[1][7] == page_rows[1][7] and rows[1][7]


def test_the_rollup_rebuild_job_repairs_tampered_rollups_step_by_step(app, api, world, session, now, finish_jobs):
    from app.statistics.rollup_models import FillMonth

    box = factories.box(world.enterprise, now=now - timedelta(days=30))
    box_services.record_fill(
        session,
        factories.op_principal(),
        box,
        {"mass_kg": 2000.0, "iodine_mg_g": 900.0, "filled_at": now - timedelta(days=20)},
        now=now - timedelta(days=20),
    )
    session.commit()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["statistics", "verify"]).exit_code == 0
    session.query(FillMonth).delete()  # a roll-up lost behind the product's back
    session.commit()
    assert runner.invoke(args=["statistics", "verify"]).exit_code == 1
    assert api.post("/api/v1/jobs", {"kind": "rollup_rebuild"}, as_="reg_city").status_code == 403
    assert (
        "box_chunk"
        in api.post("/api/v1/jobs", {"kind": "rollup_rebuild", "params": {"box_chunk": 0}}, as_="op").get_json()[
            "errors"
        ]["params"]
    )
    job = api.post("/api/v1/jobs", {"kind": "rollup_rebuild", "params": {"box_chunk": 1}}, as_="op").get_json()
    finish_jobs()
    done = api.get(f"/api/v1/jobs/{job['id']}", as_="op").get_json()
    assert done["state"] == "succeeded", done
    assert done["progress_done"] == done["progress_total"] == done["summary"]["steps"] >= 2
    verified = runner.invoke(args=["statistics", "verify"])
    assert verified.exit_code == 0, verified.output
