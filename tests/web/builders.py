"""Helpers of the page tests (no tests here): signed-in test clients, page text, a two-line
manifest in transit to the loop's receiver, a second receiver that is not it."""

from __future__ import annotations

import re

from tests import factories
from tests.ledger.builders import Loop, manifest_body, walk_to


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
