"""Mass-balance anomalies for regulators: each with its numbers, scoped to the jurisdiction."""

from __future__ import annotations

from sqlalchemy import select

from app.accounts.models import User
from app.accounts.services import Principal
from app.extensions import db
from app.ledger import services
from app.ledger.models import Manifest
from tests import factories
from tests.ledger.builders import ago, build_loop, iso, new_manifest, walk_to


def _anomalies(api, who, query=""):
    r = api.get(f"/api/v1/anomalies{query}", as_=who)
    assert r.status_code == 200, r.get_json()
    return {(a["enterprise_id"], a["code"]): a for a in r.get_json()["items"]}


def test_anomalies_explain_their_numbers_and_are_scoped(api, world):
    far = factories.org("温岭市生态环境局", ["regulator"], county="331081")
    factories.user(far, "reg_wl")
    db.session.commit()
    # 2000 kg of carbon replaced, only 500 kg of waste carbon weighed: 25 % < 80 %.
    loop = build_loop(world, api, removed_kg=500, replaced_at=ago(days=25))
    # Waste recorded 400 days ago and never shipped: beyond the 365-day storage limit.
    assert (
        api.post(
            "/api/v1/ledger",
            {"waste_code": "900-041-49", "quantity_kg": 75, "generated_at": iso(ago(days=400))},
            as_="ent",
        ).status_code
        == 201
    )
    # Shipped 20 days ago (≥ 5 working days whatever the holidays) and not received.
    number = new_manifest(api, loop, 300)["number"]
    manifest = db.session.scalar(select(Manifest).where(Manifest.number == number))
    services.submit(
        db.session,
        Principal(user=world.users["ent"]),
        manifest,
        now=ago(days=21),
        signature=factories.signed(world.users["ent"]),
    )
    driver = db.session.scalar(select(User).where(User.username == "drv"))
    services.pickup(
        db.session,
        Principal(user=driver),
        manifest,
        {"vehicle_plate": "浙J12345", "driver_name": "王"},
        now=ago(days=20),
        signature=factories.signed(driver),
        handover=factories.handed_over(manifest),
    )
    db.session.commit()
    # Shipped 200 kg, the receiver weighed 150 kg: 75 % < 95 %.
    short = new_manifest(api, loop, 200, submit=True)["number"]
    walk_to(api, short, "in_transit")
    assert (
        api.post(
            f"/api/v1/manifests/{short}/receive", {"lines": [{"line_no": 1, "received_kg": 150}]}, as_="svc"
        ).status_code
        == 200
    )

    eid = world.enterprise.id
    found = _anomalies(api, "reg_tt")
    assert set(found) == {
        (eid, "carbon_missing"),
        (eid, "stored_too_long"),
        (eid, "shipped_not_received"),
        (eid, "received_short"),
    }
    missing = found[(eid, "carbon_missing")]
    assert missing["values"] == {"replacements": 1, "filled_kg": 2000.0, "removed_kg": 500.0, "ratio": 0.25}
    assert missing["thresholds"] == {"min_ratio": 0.8}
    assert "2000" in missing["zh"] and "500" in missing["zh"] and "25%" in missing["en"]
    assert found[(eid, "stored_too_long")]["values"]["on_site_kg"] == 75
    assert found[(eid, "shipped_not_received")]["values"] == {"manifests": 1, "quantity_kg": 300.0}
    assert found[(eid, "received_short")]["values"]["ratio"] == 0.75
    assert set(_anomalies(api, "reg_city")) == set(found)
    assert _anomalies(api, "reg_wl") == {}  # another county
    assert _anomalies(api, "other") == {}  # an unrelated enterprise sees only itself
    assert set(_anomalies(api, "ent")) == set(found)  # an enterprise sees its own
    # A period before the replacement has no carbon gone missing.
    before = _anomalies(api, "reg_tt", f"?from=2020-01-01&to={ago(days=30).date().isoformat()}")
    assert (eid, "carbon_missing") not in before and (eid, "received_short") not in before


def test_a_balanced_loop_has_no_anomalies(api, world):
    loop = build_loop(world, api, removed_kg=2100)
    number = new_manifest(api, loop, 2100, submit=True)["number"]
    walk_to(api, number, "closed")
    assert _anomalies(api, "reg_tt") == {}
