"""Races: manifests submitted at once for the same stock, manifest numbers issued at once.

Each thread uses its own test client, hence its own app context, session and database
connection, like concurrent requests to gunicorn workers. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading

from app.extensions import db
from tests.factories import PASSWORD
from tests.ledger.builders import (
    build_loop,
    manifest_body,
    manifest_status,
    new_manifest,
    stock_api,
    stock_row,
    walk_to,
)

SIGNATURE = {"password": PASSWORD}  # the token user signs each step


def _race(app, calls):
    """Run ``calls`` [(method, url, json, token)] at the same moment; return (status, body) in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, url, body, token):
        client = app.test_client()
        barrier.wait()
        r = client.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
        results[i] = (r.status_code, r.get_json())

    db.session.commit()  # the test's own session holds nothing while the threads run
    threads = [threading.Thread(target=run, args=(i, *call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r is not None for r in results), results
    return results


def test_concurrent_submissions_never_ship_more_than_stock(app, api, world):
    loop = build_loop(world, api, removed_kg=1000)
    numbers = [new_manifest(api, loop, 400)["number"] for _ in range(5)]
    token = api.token("ent")
    results = _race(app, [(f"/api/v1/manifests/{n}/submit", {"signature": SIGNATURE}, token) for n in numbers])
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 200, 409, 409, 409], results
    losers = [body for status, body in results if status == 409]
    assert all("lines.0.quantity_kg" in body["errors"] for body in losers)
    assert stock_row(world.enterprise.id) == (1000, 800)
    assert sorted(manifest_status(n) for n in numbers) == ["draft"] * 3 + ["submitted"] * 2
    item = stock_api(api)
    assert item["available_kg"] == 200 and item["available_kg"] >= 0


def test_concurrent_creations_get_distinct_consecutive_numbers(app, api, world):
    loop = build_loop(world, api, removed_kg=1000)
    first = new_manifest(api, loop, 10)["number"]
    token = api.token("ent")
    results = _race(app, [("/api/v1/manifests", manifest_body(loop, 10), token) for _ in range(8)])
    assert all(status == 201 for status, _ in results), results
    serials = sorted(int(body["number"][8:]) for _, body in results)
    start = int(first[8:]) + 1
    assert serials == list(range(start, start + 8))


def test_receive_and_reject_at_once_apply_one_step(app, api, world):
    loop = build_loop(world, api, removed_kg=1000)
    number = new_manifest(api, loop, 1000, submit=True)["number"]
    walk_to(api, number, "in_transit")
    token = api.token("svc")
    results = _race(
        app,
        [
            (
                f"/api/v1/manifests/{number}/receive",
                {"lines": [{"line_no": 1, "received_kg": 1000}], "signature": SIGNATURE},
                token,
            ),
            (f"/api/v1/manifests/{number}/reject", {"reason": "拒收", "signature": SIGNATURE}, token),
            (f"/api/v1/manifests/{number}/reject", {"reason": "拒收", "signature": SIGNATURE}, token),
        ],
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409, 409], results
    state = manifest_status(number)
    # Waste came back exactly once if the refusal won, not at all if the receipt won.
    assert stock_row(world.enterprise.id) == ((1000, 0) if state == "rejected" else (0, 0))
    assert len(api.get(f"/api/v1/manifests/{number}", as_="svc").get_json()["events"]) == 4
