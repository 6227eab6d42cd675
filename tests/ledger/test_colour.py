"""The ledger's colour rules: waste carbon not on a manifest (yellow), held on site too long (red)."""

from __future__ import annotations

from tests.ledger.builders import ago, build_loop, new_manifest, walk_to

# A box whose design load takes years to saturate, so only the ledger's rules colour it.
SLOW = {"design_removed_mg_m3": 1.0}


def _box(api, code):
    r = api.get(f"/api/v1/boxes/{code}", as_="ent")
    assert r.status_code == 200
    body = r.get_json()
    return body["colour"], {x["code"]: x for x in body["reasons"]}


def test_waste_not_on_manifest_turns_yellow_until_submitted(api, world):
    loop = build_loop(world, api, removed_kg=1800, replaced_at=ago(days=35), **SLOW)
    colour, reasons = _box(api, loop.box.code)
    assert colour == "yellow" and set(reasons) == {"waste_not_on_manifest"}
    assert reasons["waste_not_on_manifest"]["observed"] == "35 d"
    assert reasons["waste_not_on_manifest"]["threshold"] == "30 d"
    assert "联单" in reasons["waste_not_on_manifest"]["zh"]
    new_manifest(api, loop, 1000, submit=True)
    colour, reasons = _box(api, loop.box.code)  # 800 kg still not on a manifest
    assert colour == "yellow"
    new_manifest(api, loop, 800, submit=True)
    assert _box(api, loop.box.code) == ("green", {})


def test_recent_waste_is_green(api, world):
    loop = build_loop(world, api, removed_kg=1800, replaced_at=ago(days=3), **SLOW)
    assert _box(api, loop.box.code)[0] == "green"


def test_waste_held_on_site_too_long_is_red_until_picked_up(api, world):
    loop = build_loop(world, api, removed_kg=1800, replaced_at=ago(days=95), **SLOW)
    colour, reasons = _box(api, loop.box.code)
    assert colour == "red" and {"waste_held_too_long", "waste_not_on_manifest"} == set(reasons)
    assert reasons["waste_held_too_long"]["level"] == "red"
    number = new_manifest(api, loop, 1800, submit=True)["number"]
    colour, reasons = _box(api, loop.box.code)
    assert colour == "red" and set(reasons) == {"waste_held_too_long"}  # on a manifest, still on site
    walk_to(api, number, "in_transit")
    assert _box(api, loop.box.code) == ("green", {})
    history = api.get(f"/api/v1/boxes/{loop.box.code}/history", as_="ent").get_json()
    assert [c["colour"] for c in history["colour_changes"]][-2:] == ["red", "green"]
    # A refusal brings the old waste back on site: red again.
    api.post(f"/api/v1/manifests/{number}/reject", {"reason": "拒收"}, as_="svc")
    assert _box(api, loop.box.code)[0] == "red"
