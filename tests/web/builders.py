"""Helpers of the page tests (no tests here): signed-in test clients, page text, a two-line
manifest in transit to the loop's receiver, a second receiver that is not it, red and yellow
boxes, an overdue manifest."""

from __future__ import annotations

import re
from datetime import timedelta

from app.accounts.models import Organization
from app.accounts.services import Principal
from app.boxes import services as box_services
from app.extensions import db
from app.ledger import services as ledger_services
from tests import factories
from tests.ledger.builders import Loop, ago, manifest_body, walk_to


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def login(app, username: str):
    client = app.test_client()
    r = client.post("/login", data={"username": username, "password": factories.PASSWORD})
    assert r.status_code == 302, r.get_data(as_text=True)
    return client


def two_lines_in_transit(api, loop: Loop, first: float = 1000.0, second: float = 600.0) -> dict:
    """A manifest of two lines of waste carbon (吨袋), submitted and picked up."""
    body = manifest_body(loop, first, submit=True)
    body["lines"].append({**body["lines"][0], "quantity_kg": second, "packaging": "编织袋"})
    r = api.post("/api/v1/manifests", body, as_="ent")
    assert r.status_code == 201, r.get_json()
    return walk_to(api, r.get_json()["number"], "in_transit")


def other_receiver(world, username: str = "plant2"):
    """Another licensed receiver and regeneration plant (Wenling) with a user."""
    plant = factories.org("温岭再生资源有限公司", ["receiver", "regenerator"], county="331081")
    factories.user(plant, username)
    return plant


def coloured_box(enterprise: Organization, service: Organization | None, filled_days_ago: float, **extra):
    """A box filled ``filled_days_ago`` days ago: ~10 days make its design cycle, so 30 days is
    red (saturated, overdue) and 8.5 days yellow (82 % saturated)."""
    box = factories.box(enterprise, service, now=ago(days=filled_days_ago + 10), **extra)
    box_services.record_fill(
        db.session,
        factories.op_principal(),
        box,
        {"filled_at": ago(days=filled_days_ago), "mass_kg": 2000.0, "iodine_mg_g": 900.0},
        now=ago(days=filled_days_ago),
    )
    box_services.refresh_colours(db.session, [box], ago(days=0))
    db.session.commit()
    return box


def overdue_manifest(loop: Loop, consignor: str = "ent", quantity: float = 300.0, picked_days_ago: float = 11) -> str:
    """Submitted, picked up ``picked_days_ago`` days ago and never received: overdue in transit."""
    world = loop.world
    actor = Principal(user=world.users[consignor])
    picked = ago(days=picked_days_ago)
    manifest = ledger_services.create_manifest(
        db.session, actor, manifest_body(loop, quantity), now=picked - timedelta(days=1, hours=1)
    )
    ledger_services.submit(
        db.session, actor, manifest, now=picked - timedelta(days=1), signature=factories.signed(world.users[consignor])
    )
    driver = db.session.query(factories.User).filter_by(username="drv").one()
    ledger_services.pickup(
        db.session,
        Principal(user=driver),
        manifest,
        {"vehicle_plate": "浙J12345", "driver_name": "王师傅", "picked_up_at": picked},
        now=picked,
        signature=factories.signed(driver),
        handover=factories.handed_over(manifest),
    )
    db.session.commit()
    return manifest.number
