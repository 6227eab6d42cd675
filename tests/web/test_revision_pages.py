"""The revisions' pages: the manifest page's request form and decisions, and /revisions."""

from __future__ import annotations

import re

from tests import factories
from tests.ledger.builders import build_loop, new_manifest, stock_api, walk_to


def login(app, username: str):
    client = app.test_client()
    r = client.post("/login", data={"username": username, "password": factories.PASSWORD})
    assert r.status_code == 302, r.get_data(as_text=True)
    return client


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def _closed(world, api) -> str:
    loop = build_loop(world, api)
    number = new_manifest(api, loop, 1500.0, submit=True)["number"]
    walk_to(api, number, "closed")
    return number


def _pending_id(html: str) -> int:
    found = re.search(r'data-revision="(\d+)" data-state="pending"', html)
    assert found, html
    return int(found.group(1))


def test_a_party_requests_on_the_manifest_page_and_the_others_approve_there(app, world, api):
    number = _closed(world, api)
    ent = login(app, "ent")
    page = ent.get(f"/manifests/{number}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="revisions"' in html and 'data-form="revision"' in html
    assert "申请更正" in html and "暂无更正申请" in html
    form = {
        "line1_quantity_kg": "1600",
        "line1_received_kg": "1600",
        "line1_accepted_kg": "1600",
        "line1_packaging": "吨袋",
        "route": "",
        "note": "",
        "reason": "过磅单录错",
    }
    r = ent.post(f"/manifests/{number}/revisions", data=form)
    assert r.status_code == 302 and "revision_error" not in r.headers["Location"]
    html = ent.get(f"/manifests/{number}").get_data(as_text=True)
    rid = _pending_id(html)
    assert "过磅单录错" in html and "1600.000" in html
    assert 'data-form="revision"' not in html  # one pending at a time
    assert 'data-action="cancel"' in html and 'data-action="approve"' not in html  # the requester cancels
    drv = login(app, "drv")
    html = drv.get(f"/manifests/{number}").get_data(as_text=True)
    assert 'data-action="approve"' in html and 'data-action="refuse"' in html
    assert drv.post(f"/revisions/{rid}/approve", data={}).status_code == 302
    svc = login(app, "svc")
    r = svc.post(f"/revisions/{rid}/approve", data={})
    assert r.status_code == 302 and "revision_error" not in r.headers["Location"]
    page = text(svc.get(f"/manifests/{number}"))
    assert "已批准" in page and "当前版本 2" in page and "更正（新版本）" in page
    assert stock_api(api)["on_hand_kg"] == 200.0


def test_a_refused_form_comes_back_with_the_reason_in_the_pages_language(app, world, api):
    number = _closed(world, api)
    ent = login(app, "ent")
    r = ent.post(f"/manifests/{number}/revisions", data={"line1_quantity_kg": "1600", "reason": ""})
    assert r.status_code == 302 and "revision_error" in r.headers["Location"]
    page = ent.get(r.headers["Location"])
    assert "data-revision-error" in page.get_data(as_text=True)
    assert "原因" in text(page)
    r = ent.post(f"/manifests/{number}/revisions?lang=en", data={"line1_quantity_kg": "99999", "reason": "typo"})
    page = ent.get(r.headers["Location"] + "&lang=en")
    assert "data-revision-error" in page.get_data(as_text=True)
    # Nothing was stored.
    assert api.get("/api/v1/revisions", as_="ent").get_json()["total"] == 0


def test_a_refusal_from_the_page_needs_a_note(app, world, api):
    number = _closed(world, api)
    rid = api.post(
        f"/api/v1/manifests/{number}/revisions", {"reason": "备注有误", "changes": {"note": "新备注"}}, as_="ent"
    ).get_json()["id"]
    svc = login(app, "svc")
    r = svc.post(f"/revisions/{rid}/refuse", data={"note": ""})
    assert "revision_error" in r.headers["Location"]
    r = svc.post(f"/revisions/{rid}/refuse", data={"note": "备注无误"})
    assert "revision_error" not in r.headers["Location"]
    assert api.get(f"/api/v1/revisions/{rid}", as_="ent").get_json()["state"] == "refused"


def test_the_regulators_list_filters_and_decides_ledger_revisions(app, world, api):
    number = _closed(world, api)
    api.post(f"/api/v1/manifests/{number}/revisions", {"reason": "路线", "changes": {"route": "G15"}}, as_="ent")
    record = api.post("/api/v1/ledger", {"waste_code": "900-041-49", "quantity_kg": 500.0}, as_="ent").get_json()
    rid = api.post(
        f"/api/v1/ledger/{record['id']}/revisions", {"reason": "称重有误", "changes": {"quantity_kg": 450.0}}, as_="ent"
    ).get_json()["id"]
    reg = login(app, "reg_tt")
    assert "/revisions" in reg.get("/").get_data(as_text=True)  # in the top bar
    page = reg.get("/revisions?state=pending")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('class="revision"') == 2 and number in html
    only_ledger = reg.get("/revisions?target=ledger_record").get_data(as_text=True)
    assert only_ledger.count('class="revision"') == 1 and record["batch_code"] in only_ledger
    assert reg.get("/revisions?state=cancelled").get_data(as_text=True).count('class="revision"') == 0
    r = reg.post(f"/revisions/{rid}/approve", data={"back": "list"})
    assert r.status_code == 302 and r.headers["Location"].startswith("/revisions")
    assert stock_api(api, code="900-041-49")["on_hand_kg"] == 450.0
    assert "已批准" in text(reg.get("/revisions?state=approved"))
    # Another enterprise sees none of it.
    other = login(app, "other")
    assert other.get("/revisions").get_data(as_text=True).count('class="revision"') == 0
    assert other.post(f"/revisions/{rid}/approve", data={}).status_code == 404


def test_the_revisions_page_speaks_english(app, world, api):
    number = _closed(world, api)
    api.post(f"/api/v1/manifests/{number}/revisions", {"reason": "route", "changes": {"route": "G15"}}, as_="ent")
    reg = login(app, "reg_tt")
    page = text(reg.get("/revisions?lang=en"))
    assert "Corrections" in page and "Pending" in page
    for name in ("中文", world.service.name, "台州危运物流有限公司"):  # the link back and the parties' names
        page = page.replace(name, "")
    assert not re.search(r"[\u4e00-\u9fff]", page), page
