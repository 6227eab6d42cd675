"""Pages read while the embedded job thread writes (SQLite, the default): every answer is a page,
never the 503 "database is locked" that a new connection's journal-mode change used to cause."""

from __future__ import annotations

import re

from app.extensions import db
from app.jobs import dispatch
from tests.web.builders import login


def test_jobs_pages_answer_while_export_jobs_write(app, world):
    client = login(app, "reg_tt")
    page = client.get("/oversight/boxes/red").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    failures = []
    for _ in range(10):
        r = client.post(
            "/jobs/export", data={"csrf_token": token, "export": "colour_boxes", "colour": "red", "format": "csv"}
        )
        if r.status_code != 303:
            failures.append(("POST /jobs/export", r.status_code))
            continue
        for url in [r.headers["Location"], "/jobs"] * 15:  # while the job claims, reports and finishes
            status = client.get(url).status_code
            if status != 200:
                failures.append((url, status))
    dispatch.wait_in_process(app, timeout=120)
    assert not failures, failures
    # The test's app context spans its requests, and with it one session: a page read ends no
    # transaction, so that session still sees the database as it was before the jobs ran (a
    # server gives each request its own). End it, then read the page as a new request would.
    db.session.remove()
    states = re.findall(r'data-state="([a-z]+)"', client.get("/jobs").get_data(as_text=True))
    assert states.count("succeeded") == 10, states
