"""Keyset pagination of the API's lists (`cursor`, `next_cursor`, `next`, `Link`), `page` bounded."""

from __future__ import annotations

import pytest

from app.extensions import db
from tests import factories
from tests.ledger.builders import insert_manifests


def follow(api, url: str, as_: str, between=None) -> list[dict]:
    items: list[dict] = []
    while url:
        r = api.get(url, as_=as_)
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        items += body["items"]
        if body["next"]:
            assert r.headers["Link"] == f'<{body["next"]}>; rel="next"'
            assert body["total"] is None or "cursor=" not in url
        if between:
            between()
        url = body["next"] and body["next"].removeprefix("http://localhost")
    return items


@pytest.fixture
def shipments(world):
    carrier = factories.org("台州危运物流有限公司", ["carrier"])
    db.session.commit()
    return carrier, insert_manifests(world.enterprise, carrier, world.service, 7)


def test_manifest_pages_by_cursor_cover_every_row_once_under_concurrent_inserts(api, world, shipments):
    carrier, manifests = shipments
    added = iter(range(200, 300, 3))

    def someone_ships():
        insert_manifests(world.enterprise, carrier, world.service, 3, start=next(added))

    listed = follow(api, "/api/v1/manifests?per_page=3", "ent", between=someone_ships)
    numbers = [m["number"] for m in listed]
    assert len(numbers) == len(set(numbers))  # OFFSET would repeat rows pushed down by the new ones
    assert {m.number for m in manifests} <= set(numbers)
    created = [m["created_at"] for m in listed]
    assert created == sorted(created, reverse=True)  # the list's own order, newest first


def test_cursor_pages_equal_the_offset_pages(api, world, shipments):
    by_cursor = [m["number"] for m in follow(api, "/api/v1/manifests?per_page=2&status=submitted", "reg_city")]
    by_page = []
    for page in range(1, 5):
        r = api.get(f"/api/v1/manifests?per_page=2&status=submitted&page={page}", as_="reg_city")
        by_page += [m["number"] for m in r.get_json()["items"]]
        assert r.get_json()["total"] == 7
    assert by_cursor == by_page and len(by_cursor) == 7


def test_boxes_and_organisations_page_by_cursor(api, world):
    codes = {factories.box(world.enterprise, world.service).code for _ in range(5)}
    db.session.commit()
    listed = follow(api, "/api/v1/boxes?per_page=2", "ent")
    assert {b["code"] for b in listed} >= codes and len(listed) == len({b["code"] for b in listed})
    orgs = [o["id"] for o in follow(api, "/api/v1/organizations?per_page=2", "op")]
    everything = api.get("/api/v1/organizations?per_page=500", as_="op").get_json()
    assert orgs == [o["id"] for o in everything["items"]] and len(orgs) == everything["total"] > 4


def test_the_next_link_keeps_the_filters(api, world, shipments):
    r = api.get("/api/v1/manifests?page=1&per_page=2&status=submitted", as_="ent")
    nxt = r.get_json()["next"]
    assert "status=submitted" in nxt and "per_page=2" in nxt and "&page=" not in nxt


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=201&per_page=50", "page"),  # deeper than 10,000 rows: OFFSET is linear in the depth
        ("page=2&cursor=WzFd", "page"),  # either page or cursor
        ("cursor=not-base64!", "cursor"),
        ("cursor=WzFd", "cursor"),  # [1]: a cursor of another list (manifests sort by 2 keys)
        ("cursor=W3siZCI6Ik5hTiJ9LDFd", "cursor"),  # [{"d":"NaN"},1]
    ],
)
def test_bad_pages_and_cursors_are_field_errors(api, world, shipments, query, field):
    r = api.get(f"/api/v1/manifests?{query}", as_="ent")
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["errors"]


def test_deep_pages_still_work_within_the_bound(api, world, shipments):
    r = api.get("/api/v1/manifests?page=200&per_page=50", as_="ent")
    assert r.status_code == 200 and r.get_json()["items"] == [] and r.get_json()["next_cursor"] is None
