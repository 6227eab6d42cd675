"""The pages' long lists in keyset pages (app/web/paging.py, app/common/pagination.py keyset_pages):
walking every page by its "下一页" links shows each row exactly once, rows inserted meanwhile neither
repeat nor push a row out, the filters stay in the links, "上一页" walks back to the same pages, and a
cursor that does not fit is a 400 page in Chinese, never a 500."""

from __future__ import annotations

import re
from html import unescape

import pytest

from app.boxes.services import lists as box_lists
from app.extensions import db
from app.jobs import dispatch
from app.jobs import views as job_views
from app.ledger.services import registry_lists
from app.web import pages, revision_pages, views
from tests import factories
from tests.ledger.builders import ago, build_loop, new_manifest
from tests.web.builders import coloured_box, login, overdue_manifest

LINK = re.compile(r'<a rel="(?P<rel>next|prev)" data-page="(?:next|prev)" href="(?P<href>[^"]+)"')


def links(response) -> dict[str, str]:
    return {m["rel"]: unescape(m["href"]) for m in LINK.finditer(response.get_data(as_text=True))}


def walk(client, url: str, found, between=None) -> tuple[list[list[str]], list[str]]:
    """Every page from ``url`` by its next links: (the rows of each page, the URLs walked)."""
    seen, urls = [], []
    while url:
        r = client.get(url)
        assert r.status_code == 200, r.get_data(as_text=True)[:500]
        seen.append(found(r))
        urls.append(url)
        if between is not None:
            between(len(seen))
        url = links(r).get("next")
        assert len(seen) < 50, "the pages do not end"
    return seen, urls


def box_codes(response) -> list[str]:
    return re.findall(r'name="codes" value="([^"]+)"', response.get_data(as_text=True))


def manifest_numbers(response) -> list[str]:
    return list(dict.fromkeys(re.findall(r'href="/manifests/([A-Z0-9-]+)"', response.get_data(as_text=True))))


def test_boxes_pages_show_every_box_once_keep_the_filter_and_walk_back(app, world, monkeypatch):
    monkeypatch.setattr(views, "BOXES_PER_PAGE", 3)
    codes = {factories.box(world.enterprise, world.service).code for _ in range(8)}
    db.session.commit()
    client = login(app, "ent")
    pages_seen, urls = walk(client, "/boxes", box_codes)
    rows = [c for page in pages_seen for c in page]
    assert sorted(rows) == sorted(codes) and len(rows) == len(set(rows)) == 8
    assert [len(p) for p in pages_seen] == [3, 3, 2]
    assert all("page=" not in u for u in urls)
    # back from the last page by "上一页": the same pages in the same order
    last = client.get(urls[-1])
    back = client.get(links(last)["prev"])
    assert box_codes(back) == pages_seen[-2]
    assert links(back)["prev"] and box_codes(client.get(links(back)["prev"])) == pages_seen[0]
    # a filter stays in the links (all grey: a filter that keeps every box)
    grey_pages, grey_urls = walk(client, "/boxes?colour=grey", box_codes)
    assert all("colour=grey" in u for u in grey_urls) and [c for p in grey_pages for c in p] == rows


def test_manifests_pages_stay_stable_while_manifests_are_created(app, world, api, monkeypatch):
    """Newest first: a manifest created while a reader walks the pages lands before the first page,
    so OFFSET pages would show the boundary row twice; the cursor pages show every row once."""
    monkeypatch.setattr(pages, "PER_PAGE", 2)
    loop = build_loop(world, api, removed_kg=1800, replaced_at=ago(days=20))
    numbers = {new_manifest(api, loop, 100.0)["number"] for _ in range(5)}
    db.session.commit()
    client = login(app, "ent")
    created = []

    def insert(pages_read: int):
        if pages_read <= 2:
            created.append(new_manifest(api, loop, 50.0)["number"])

    pages_seen, _urls = walk(client, "/manifests", manifest_numbers, between=insert)
    rows = [n for page in pages_seen for n in page]
    assert len(rows) == len(set(rows)) == 5 and set(rows) == numbers  # the new ones are before page 1
    # a new walk from the first page shows the new ones too, each once
    again, _ = walk(client, "/manifests", manifest_numbers)
    rows = [n for page in again for n in page]
    assert len(rows) == len(set(rows)) and set(rows) == numbers | set(created) and len(created) == 2


def section(response, status: str) -> str:
    """The HTML of one group of the to-do page (its ``<section id="todo-…">``)."""
    html = response.get_data(as_text=True)
    found = re.search(rf'<section[^>]*id="todo-{status}".*?</section>', html, re.S)
    assert found, html[:500]
    return found.group(0)


def test_todo_groups_page_on_their_own_and_say_how_many_there_are(app, world, api, monkeypatch):
    """Each group of /manifests/todo is a page list of its own (``?draft=``, ``?in_transit=``):
    every manifest of a group once, paging one group keeps the other's page, and the heading counts
    the whole group, not the page."""
    from app.web import manifest_forms

    monkeypatch.setattr(manifest_forms, "PENDING_PER_PAGE", 2)
    loop = build_loop(world, api, removed_kg=1800, replaced_at=ago(days=20))
    drafts = {new_manifest(api, loop, 50.0 + i)["number"] for i in range(5)}
    moving = {overdue_manifest(loop, quantity=100.0 + i) for i in range(3)}
    db.session.commit()
    client = login(app, "ent")

    def group_walk(status: str, start: str = "/manifests/todo") -> tuple[list[list[str]], list[str]]:
        seen, urls, url = [], [], start
        while url:
            html = section(client.get(url), status)
            seen.append(re.findall(r'<li data-number="([^"]+)"', html))
            urls.append(url)
            url = {m["rel"]: unescape(m["href"]) for m in LINK.finditer(html)}.get("next")
            assert len(seen) < 10, "the pages do not end"
        return seen, urls

    first = client.get("/manifests/todo")
    assert "共 5 份" in section(first, "draft") and "共 3 份" in section(first, "in_transit")
    seen, urls = group_walk("draft")
    rows = [n for page in seen for n in page]
    assert [len(p) for p in seen] == [2, 2, 1] and len(rows) == len(set(rows)) and set(rows) == drafts
    assert all("draft=" in u and u.endswith("#todo-draft") for u in urls[1:])
    # the in-transit group's second page, then the drafts paged: the in-transit page stays
    transit_next = {m["rel"]: unescape(m["href"]) for m in LINK.finditer(section(first, "in_transit"))}["next"]
    seen, urls = group_walk("draft", transit_next)
    second = re.findall(r'<li data-number="([^"]+)"', section(client.get(urls[-1]), "in_transit"))
    assert len(second) == 1 and second[0] in moving and all("in_transit=" in u for u in urls)
    assert client.get("/manifests/todo?draft=garbage").status_code == 400


def test_a_long_list_says_how_many_up_to_the_cap(app, world, api, monkeypatch):
    """Past the cap the total is "N+" (counted up to the cap, not over the whole list)."""
    from app.common import pagination

    monkeypatch.setattr(pagination, "COUNT_CAP", 3)
    loop = build_loop(world, api, removed_kg=1800, replaced_at=ago(days=20))
    for i in range(4):
        new_manifest(api, loop, 50.0 + i)
    db.session.commit()
    client = login(app, "ent")
    assert "共 3+ 张" in client.get("/manifests").get_data(as_text=True)
    assert 'data-total="3+"' in section(client.get("/manifests/todo"), "draft")
    monkeypatch.setattr(pagination, "COUNT_CAP", 10)
    assert "共 4 张" in client.get("/manifests").get_data(as_text=True)


def test_ledger_and_revisions_walk_every_row_once(app, world, api, monkeypatch):
    monkeypatch.setattr(pages, "PER_PAGE", 1)
    monkeypatch.setattr(revision_pages, "PER_PAGE", 1)
    build_loop(world, api, removed_kg=1800, replaced_at=ago(days=20))
    client = login(app, "ent")
    first = client.get("/ledger")
    assert first.status_code == 200
    total = int(re.search(r"共 (\d+) 条", first.get_data(as_text=True)).group(1))
    pages_seen, _ = walk(
        client,
        "/ledger",
        lambda r: re.findall(r'data-record="(\d+)"', r.get_data(as_text=True)),
    )
    rows = [n for page in pages_seen for n in page]
    assert total >= 2 and len(pages_seen) == total and len(rows) == len(set(rows)) == total
    assert client.get("/revisions").status_code == 200


def test_regulator_lists_page_by_cursor_in_every_sort(app, world, api, monkeypatch):
    monkeypatch.setattr(box_lists, "PER_PAGE", 2)
    monkeypatch.setattr(registry_lists, "PER_PAGE", 2)
    reds = {coloured_box(world.enterprise, world.service, 20 + i).code for i in range(5)}
    loop = build_loop(world, api, removed_kg=1800, replaced_at=ago(days=20))
    overdue = {overdue_manifest(loop, quantity=100.0 + i) for i in range(3)}
    db.session.commit()
    client = login(app, "reg_tt")

    def codes(r):
        return re.findall(r'data-code="([^"]+)"', r.get_data(as_text=True)) or re.findall(
            r'list-card-key" href="/boxes/([^"]+)"', r.get_data(as_text=True)
        )

    for sort in box_lists.SORTS:
        seen, urls = walk(client, f"/oversight/boxes/red?sort={sort}", codes)
        rows = [c for page in seen for c in page]
        assert len(rows) == len(set(rows)) and set(rows) >= reds, sort
        assert all(f"sort={sort}" in u for u in urls)
    for sort in registry_lists.SORTS:
        seen, _ = walk(client, f"/oversight/manifests/overdue?sort={sort}", manifest_numbers)
        rows = [n for page in seen for n in page]
        assert len(rows) == len(set(rows)) and set(rows) == overdue, sort


@pytest.mark.parametrize(
    "url",
    ["/boxes", "/manifests", "/ledger", "/revisions", "/jobs", "/oversight/boxes/red", "/oversight/manifests/overdue"],
)
def test_a_bad_cursor_is_a_400_page_in_chinese(app, world, url):
    client = login(app, "reg_tt" if url.startswith("/oversight") else "ent")
    for cursor in ("garbage", "W10", "WyJ4IiwxXQ", "WyJuIiwieCJd" * 3, "x" * 3000):
        r = client.get(f"{url}?cursor={cursor}")
        body = r.get_data(as_text=True)
        assert r.status_code == 400, (url, cursor, body[:300])
        assert "分页链接无效" in body and "回到列表第一页" in body


def test_jobs_page_pages_and_an_export_starts_from_a_page(app, world, monkeypatch):
    monkeypatch.setattr(job_views, "JOBS_PER_PAGE", 2)
    client = login(app, "reg_tt")
    page = client.get("/oversight/boxes/red")
    assert 'data-form="export-job"' in page.get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    started = []
    for _ in range(3):
        r = client.post(
            "/jobs/export",
            data={"csrf_token": token, "export": "colour_boxes", "colour": "red", "format": "csv"},
        )
        assert r.status_code == 303, r.get_data(as_text=True)[:500]
        dispatch.wait_in_process(app, timeout=120)  # the embedded runner: one job at a time, as SQLite writes
        started.append(int(r.headers["Location"].rsplit("/", 1)[1]))
    seen, _ = walk(
        client, "/jobs", lambda r: [int(i) for i in re.findall(r'data-job="(\d+)"', r.get_data(as_text=True))]
    )
    assert [j for p in seen for j in p] == sorted(started, reverse=True)
    bad = client.post("/jobs/export", data={"csrf_token": token, "export": "colour_boxes", "colour": "blue"})
    assert bad.status_code == 422 and "无法开始导出" in bad.get_data(as_text=True)
    nav = client.get("/jobs").get_data(as_text=True)
    assert 'href="/jobs"' in nav and "导出任务" in nav


def test_a_box_trail_pages_by_its_own_cursor_oldest_first(app, world, api, monkeypatch):
    """A box's trail grows with every fill: its section pages by ``trail`` (the box page's own
    arguments kept), every entry once, in the chain's order; a bad ``trail`` cursor is the 400 page."""
    from app.audit import pages as audit_pages

    monkeypatch.setattr(audit_pages, "TRAIL_PER_PAGE", 2)
    loop = build_loop(world, api, removed_kg=1800, replaced_at=ago(days=20))
    client = login(app, "ent")
    url = f"/boxes/{loop.box.code}"
    first = client.get(url).get_data(as_text=True)
    total = int(re.search(r"共 (\d+) 条，点击展开", first).group(1))
    seen, urls = walk(
        client, url, lambda r: [int(s) for s in re.findall(r'<li data-seq="(\d+)"', r.get_data(as_text=True))]
    )
    seqs = [s for page in seen for s in page]
    assert total >= 3 and len(seqs) == total and seqs == sorted(set(seqs))
    assert all("trail=" in u and u.endswith("#audit-trail") for u in urls[1:])
    r = client.get(f"{url}?trail=garbage")
    assert r.status_code == 400 and "分页链接无效" in r.get_data(as_text=True)


def test_the_manifests_and_statistics_pages_start_their_exports_as_jobs(app, world):
    client = login(app, "ent")
    html = client.get("/manifests").get_data(as_text=True)
    form = html.split('data-form="export-job"')[1].split("</form>")[0]
    assert 'name="export" value="registry"' in form and "后台导出" in form
    r = client.post("/jobs/export", data={"export": "registry", "view": "outgoing", "format": "csv"})
    assert r.status_code == 303
    dispatch.wait_in_process(app, timeout=120)
    job_page = client.get(r.headers["Location"])
    assert job_page.status_code == 200 and "导出 · 联单台账 (CSV)" in job_page.get_data(as_text=True)
    # a view the enterprise has no part in is refused in words, not a 500
    r = client.post("/jobs/export", data={"export": "registry", "view": "managed", "format": "csv"})
    assert r.status_code == 403 and "无法开始导出" in r.get_data(as_text=True)
    city = login(app, "reg_city")
    stats = city.get("/statistics").get_data(as_text=True)
    form = stats.split('data-form="export-job"')[1].split("</form>")[0]
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    assert fields["export"] == "statistics" and fields["scope"] == "city" and fields["period"]
    fields.pop("csrf_token", None)
    r = city.post("/jobs/export", data={**fields, "format": "xlsx"})
    assert r.status_code == 303, r.get_data(as_text=True)[:300]
    dispatch.wait_in_process(app, timeout=120)
    done = city.get(r.headers["Location"]).get_data(as_text=True)
    assert 'data-state="succeeded"' in done and "统计报表 (XLSX)" in done
