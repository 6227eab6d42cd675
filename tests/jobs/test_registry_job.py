"""The manifest registry as an ``export`` job: the file equals the streamed download."""

from __future__ import annotations

from app.extensions import db
from app.jobs.models import Job
from tests.ledger.test_registry import parties  # noqa: F401 (the fixture)


def registry_job(view: str = "managed", fmt: str = "csv", **params) -> dict:
    return {"kind": "export", "params": {"export": "registry", "format": fmt, "view": view, **params}}


def test_the_registry_exports_as_a_job_equal_to_the_download(api, parties, finish_jobs):  # noqa: F811
    job = api.post("/api/v1/jobs", registry_job(), as_="reg_city")
    assert job.status_code == 202, job.get_json()
    finish_jobs()
    done = api.get(f"/api/v1/jobs/{job.get_json()['id']}", as_="reg_city").get_json()
    assert done["state"] == "succeeded", done
    assert done["progress_done"] == done["progress_total"] == 5  # 天台's 3 and 温岭's 2 lines, no draft
    exported = api.get(done["result_url"], as_="reg_city").get_data()
    assert exported == api.get("/api/v1/registry/managed.csv", as_="reg_city").get_data()
    xlsx = api.post("/api/v1/jobs", registry_job("incoming", "xlsx"), as_="svc").get_json()
    finish_jobs()
    done = api.get(f"/api/v1/jobs/{xlsx['id']}", as_="svc").get_json()
    assert done["state"] == "succeeded" and done["progress_done"] == 5
    assert api.get(done["result_url"], as_="svc").get_data()[:2] == b"PK"


def test_a_registry_job_is_refused_as_the_download_would_be(api, parties):  # noqa: F811
    assert api.post("/api/v1/jobs", registry_job("managed"), as_="ent").status_code == 403  # not a regulator
    bad = api.post("/api/v1/jobs", registry_job("nowhere"), as_="reg_city")
    assert bad.status_code == 422 and "view" in bad.get_json()["errors"]["params"]
    reversed_dates = api.post(
        "/api/v1/jobs", registry_job(**{"from": "2026-11-02", "to": "2026-11-01"}), as_="reg_city"
    )
    assert reversed_dates.status_code == 422 and "to" in reversed_dates.get_json()["errors"]["params"]
    assert db.session.query(Job).count() == 0
