"""The loop closes: received waste carbon is regenerated and filled into a box again."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from app.boxes.models import Fill
from app.extensions import db
from tests import factories
from tests.ledger.builders import build_loop, new_manifest, walk_to


def _fills() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Fill))


def _closed_loop(api, world):
    loop = build_loop(world, api, removed_kg=1800)
    number = new_manifest(api, loop, 1800, submit=True)["number"]
    walk_to(api, number, "in_transit")
    r = api.post(f"/api/v1/manifests/{number}/receive", {"lines": [{"line_no": 1, "received_kg": 1790}]}, as_="svc")
    assert r.status_code == 200
    r = api.post(f"/api/v1/manifests/{number}/process", {"lines": [{"line_no": 1, "method_code": "R7"}]}, as_="svc")
    assert r.json["status"] == "closed"
    return loop, number


def test_the_whole_loop_back_into_a_box(api, world):
    loop, number = _closed_loop(api, world)
    body = {
        "batch_no": "ZS-2025-001",
        "method_code": "R7",
        "output_kg": 1500,
        "iodine_mg_g": 950,
        "inputs": [{"manifest_number": number, "line_no": 1, "quantity_kg": 1790}],
    }
    r = api.post("/api/v1/regeneration-batches", body, as_="svc")
    assert r.status_code == 201, r.get_json()
    batch = r.get_json()
    assert batch["input_kg"] == 1790 and batch["remaining_kg"] == 1500 and batch["yield_ratio"] == round(1500 / 1790, 4)
    assert batch["inputs"] == [
        {
            "manifest_number": number,
            "line_no": 1,
            "waste_code": "900-039-49",
            "consignor_id": world.enterprise.id,
            "quantity_kg": 1790,
        }
    ]
    assert api.get(f"/api/v1/manifests/{number}", as_="svc").get_json()["lines"][0]["consumed_kg"] == 1790
    # Nothing left on that line to regenerate again.
    r = api.post(
        "/api/v1/regeneration-batches",
        {
            **body,
            "batch_no": "ZS-2025-002",
            "output_kg": 1,
            "inputs": [{"manifest_number": number, "line_no": 1, "quantity_kg": 1}],
        },
        as_="svc",
    )
    assert r.status_code == 422 and "inputs.0.quantity_kg" in r.get_json()["errors"]

    # The regenerated carbon goes into the box at its next replacement.
    fills = _fills()
    r = api.post(
        f"/api/v1/boxes/{loop.box.code}/fills",
        {"mass_kg": 1000, "iodine_mg_g": 950, "removed_waste_kg": 2050, "regeneration_batch_id": batch["id"]},
        as_="svc",
    )
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["regeneration_batch_id"] == batch["id"] and r.get_json()["ledger_batch_code"]
    # Named by the batch alone, the fill records where the carbon came from.
    assert r.get_json()["supplier_org_id"] == world.service.id and r.get_json()["batch_no"] == "ZS-2025-001"
    assert api.get(f"/api/v1/regeneration-batches/{batch['id']}", as_="svc").get_json()["remaining_kg"] == 500
    # Never more than it produced; an unknown batch is refused; nothing is stored either time.
    other_box = factories.box(world.enterprise, world.service)
    db.session.commit()
    for body_extra, field in [
        ({"regeneration_batch_id": batch["id"], "mass_kg": 600}, "regeneration_batch_id"),
        ({"regeneration_batch_id": 9999, "mass_kg": 100}, "regeneration_batch_id"),
        # Another supplier, or a better iodine value than the batch was measured at.
        (
            {"regeneration_batch_id": batch["id"], "mass_kg": 100, "supplier_org_id": world.other_enterprise.id},
            "supplier_org_id",
        ),
        ({"regeneration_batch_id": batch["id"], "mass_kg": 100, "iodine_mg_g": 951}, "iodine_mg_g"),
    ]:
        r = api.post(f"/api/v1/boxes/{other_box.code}/fills", {"iodine_mg_g": 950, **body_extra}, as_="svc")
        assert r.status_code == 422 and field in r.get_json()["errors"], r.get_json()
    assert _fills() == fills + 1
    assert api.get("/api/v1/regeneration-batches?available=true", as_="reg_tt").get_json()["total"] == 1
    # The loop goes round again: the new waste carbon is in stock.
    assert api.get("/api/v1/stock", as_="ent").get_json()["items"][0]["on_hand_kg"] == 2050


def test_regeneration_batch_bad_input(api, world):
    _loop, number = _closed_loop(api, world)
    good = {
        "batch_no": "ZS-1",
        "output_kg": 1000,
        "iodine_mg_g": 900,
        "inputs": [{"manifest_number": number, "line_no": 1, "quantity_kg": 1200}],
    }
    cases = [
        ({**good, "method_code": "D1"}, "method_code"),
        ({**good, "method_code": "R99"}, "method_code"),
        ({**good, "output_kg": 1300}, "output_kg"),
        ({**good, "inputs": [{"manifest_number": number, "line_no": 2, "quantity_kg": 10}]}, "inputs.0.line_no"),
        (
            {**good, "inputs": [{"manifest_number": "20253310999999", "line_no": 1, "quantity_kg": 10}]},
            "inputs.0.manifest_number",
        ),
        (
            {
                **good,
                "inputs": [
                    {"manifest_number": number, "line_no": 1, "quantity_kg": 1000},
                    {"manifest_number": number, "line_no": 1, "quantity_kg": 900},
                ],
            },
            "inputs.0.quantity_kg",
        ),
        ({**good, "iodine_mg_g": 0}, "iodine_mg_g"),
    ]
    for body, field in cases:
        r = api.post("/api/v1/regeneration-batches", body, as_="svc")
        assert r.status_code == 422, (field, r.get_json())
        assert field in r.get_json()["errors"], (field, r.get_json())
    assert api.post("/api/v1/regeneration-batches", good, as_="ent").status_code == 403
    assert api.get("/api/v1/regeneration-batches", as_="svc").get_json()["total"] == 0
    assert api.get(f"/api/v1/manifests/{number}", as_="svc").get_json()["lines"][0]["consumed_kg"] == 0
    assert api.post("/api/v1/regeneration-batches", good, as_="svc").status_code == 201
    assert api.post("/api/v1/regeneration-batches", good, as_="svc").status_code == 409  # same batch number


def test_two_fills_race_for_the_last_regenerated_carbon(app, api, world):
    _, number = _closed_loop(api, world)
    batch = api.post(
        "/api/v1/regeneration-batches",
        {
            "batch_no": "ZS-R",
            "output_kg": 500,
            "iodine_mg_g": 900,
            "inputs": [{"manifest_number": number, "line_no": 1, "quantity_kg": 600}],
        },
        as_="svc",
    ).get_json()
    boxes = [factories.box(world.enterprise, world.service) for _ in range(2)]
    token = api.token("svc")
    db.session.commit()
    barrier = threading.Barrier(2)
    results = []

    def fill(code):
        client = app.test_client()
        barrier.wait()
        r = client.post(
            f"/api/v1/boxes/{code}/fills",
            json={"mass_kg": 400, "iodine_mg_g": 900, "regeneration_batch_id": batch["id"]},
            headers={"Authorization": f"Bearer {token}"},
        )
        results.append(r.status_code)

    threads = [threading.Thread(target=fill, args=(b.code,)) for b in boxes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [201, 422]
    assert api.get(f"/api/v1/regeneration-batches/{batch['id']}", as_="svc").get_json()["remaining_kg"] == 100
