"""One action, one record (issue 11): Idempotency-Key on API writes, the idempotency_key field of
page forms; concurrency; expiry and the prune command; the OpenAPI document."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

from sqlalchemy import func, select, update

from app.boxes.models import Fill
from app.common.idempotency import IdempotencyRecord
from app.common.timeutil import utcnow
from app.extensions import db
from app.ledger.models import Manifest
from tests import factories
from tests.ledger.builders import build_loop, manifest_body


def _count(model) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


def _post_manifest(api, loop, key: str | None, quantity: float = 300.0):
    headers = {"Idempotency-Key": key} if key else {}
    return api.post("/api/v1/manifests", manifest_body(loop, quantity), as_="ent", headers=headers)


def test_the_same_manifest_post_twice_with_a_key_creates_one_and_answers_the_same_body(api, world):
    loop = build_loop(world, api, removed_kg=1000)
    first = _post_manifest(api, loop, "tap-1")
    assert first.status_code == 201, first.get_json()
    again = _post_manifest(api, loop, "tap-1")
    assert again.status_code == 201
    assert again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert again.mimetype == first.mimetype == "application/json"
    assert _count(Manifest) == 1
    # A new key is a new action; no key is no protection (two taps, two manifests).
    assert _post_manifest(api, loop, "tap-2").get_json()["number"] != first.get_json()["number"]
    _post_manifest(api, loop, None)
    _post_manifest(api, loop, None)
    assert _count(Manifest) == 4


def test_the_same_key_with_another_body_is_422(api, world):
    loop = build_loop(world, api, removed_kg=1000)
    assert _post_manifest(api, loop, "k-1", 300).status_code == 201
    r = _post_manifest(api, loop, "k-1", 301)
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    assert r.get_json()["code"] == "idempotency_key_reused"
    assert "Idempotency-Key" in r.get_json()["errors"]
    assert _count(Manifest) == 1


def test_keys_are_per_principal_and_route_and_malformed_keys_are_400(api, world):
    loop = build_loop(world, api, removed_kg=1000)
    assert _post_manifest(api, loop, "shared").status_code == 201
    # Another user's identical key is another action (here refused: the operator is no consignor).
    other = api.post("/api/v1/manifests", manifest_body(loop, 300), as_="op", headers={"Idempotency-Key": "shared"})
    assert "Idempotent-Replayed" not in other.headers
    # Another route with the same key is another action.
    r = api.post(
        "/api/v1/ledger",
        {"waste_code": "900-041-49", "quantity_kg": 5},
        as_="ent",
        headers={"Idempotency-Key": "shared"},
    )
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    bad = _post_manifest(api, loop, "x" * 201)
    assert bad.status_code == 400 and bad.mimetype == "application/problem+json"
    assert _count(Manifest) == 1


def test_a_refused_write_keeps_no_key_and_may_be_sent_again(api, world):
    loop = build_loop(world, api, removed_kg=1000)
    refused = api.post(
        "/api/v1/manifests",
        {**manifest_body(loop, 300), "carrier_id": 999999},
        as_="ent",
        headers={"Idempotency-Key": "k"},
    )
    assert refused.status_code >= 400
    assert _count(IdempotencyRecord) == 0
    assert _post_manifest(api, loop, "k").status_code == 201


def test_two_identical_requests_at_once_create_one_manifest(app, api, world):
    loop = build_loop(world, api, removed_kg=1000)
    token = api.token("ent")
    body = manifest_body(loop, 300)
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def run(i):
        client = app.test_client()
        barrier.wait()
        r = client.post(
            "/api/v1/manifests",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "race-1"},
        )
        results[i] = (r.status_code, r.get_data())

    db.session.commit()  # the test's own session holds nothing while the threads run
    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(results), results
    statuses = sorted(status for status, _ in results)
    assert statuses in ([201, 201], [201, 409]), results
    if statuses == [201, 201]:
        assert results[0][1] == results[1][1]  # the loser answered the winner's stored body
    assert _count(Manifest) == 1
    assert _count(IdempotencyRecord) == 1


def _fill_form(page: str) -> dict:
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page)
    assert key, "the scan page's form carries an idempotency key"
    return {"idempotency_key": key[1], "mass_kg": "2000", "iodine_mg_g": "900", "removed_waste_kg": "1800"}


def test_double_submit_of_the_scan_pages_replacement_form_stores_one_fill(app, world):
    box = factories.box(world.enterprise, world.service, now=utcnow() - timedelta(days=40))
    db.session.commit()
    client = app.test_client()
    assert client.post("/login", data={"username": "svc", "password": factories.PASSWORD}).status_code == 302
    first_fill = client.post(
        f"/c/{box.code}",
        data={
            **_fill_form(client.get(f"/c/{box.code}").get_data(as_text=True)),
            "removed_waste_kg": "",
            "filled_at": (utcnow() - timedelta(days=20)).strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert first_fill.status_code == 302, first_fill.get_data(as_text=True)[-2000:]
    form = _fill_form(client.get(f"/c/{box.code}").get_data(as_text=True))
    first = client.post(f"/c/{box.code}", data=form)
    assert first.status_code == 302
    twice = client.post(f"/c/{box.code}", data=form)  # the second tap of "save", or a resent form
    assert twice.status_code == 302 and twice.headers["Location"] == first.headers["Location"]
    assert twice.headers["Idempotent-Replayed"] == "true"
    assert _count(Fill) == 2  # the first fill and ONE replacement
    page = client.get(twice.headers["Location"]).get_data(as_text=True)
    assert "这张表单已经提交过，没有重复保存。" in page
    # The same key with other values is not taken for a new replacement.
    changed = client.post(f"/c/{box.code}", data={**form, "removed_waste_kg": "1700"})
    assert changed.status_code == 422 and "表单已提交过" in changed.get_data(as_text=True)
    assert _count(Fill) == 2


def test_expired_keys_are_forgotten_and_pruned_by_the_cli(app, api, world):
    loop = build_loop(world, api, removed_kg=1000)
    assert _post_manifest(api, loop, "old").status_code == 201
    assert _post_manifest(api, loop, "fresh").status_code == 201
    db.session.execute(
        update(IdempotencyRecord).where(IdempotencyRecord.key == "old").values(expires_at=utcnow() - timedelta(hours=1))
    )
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["idempotency", "prune"])
    assert result.exit_code == 0, result.output
    assert "pruned 1 expired idempotency keys" in result.output
    assert [r.key for r in db.session.scalars(select(IdempotencyRecord))] == ["fresh"]


def test_the_header_is_documented_on_api_writes(api):
    spec = api.client.get("/openapi.json").get_json()
    parameter = spec["components"]["parameters"]["IdempotencyKey"]
    assert parameter["in"] == "header" and parameter["name"] == "Idempotency-Key"
    ref = {"$ref": "#/components/parameters/IdempotencyKey"}
    assert ref in spec["paths"]["/api/v1/manifests"]["post"]["parameters"]
    assert ref not in spec["paths"]["/api/v1/manifests"]["get"].get("parameters", [])
