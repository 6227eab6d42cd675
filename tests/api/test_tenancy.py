"""Tenancy and input-handling review: every API route and page probed for another tenant's data,
widening filters, device tokens outside ingest, wrong parties, CSRF gaps and odd input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.extensions import db
from tests import factories
from tests.ledger.builders import build_loop, new_manifest, walk_to
from tests.telemetry.builders import reading


def _device_token(api, org_id: int, as_: str = "ent") -> str:
    r = api.post("/api/v1/device-tokens", {"organization_id": org_id, "name": "gw"}, as_=as_)
    assert r.status_code == 201, r.get_json()
    return r.get_json()["token"]


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@pytest.fixture
def loop(api, world):
    return build_loop(world, api, removed_kg=1800)


@pytest.fixture
def other_box(world):
    box = factories.box(world.other_enterprise)
    db.session.commit()
    return box


# ---------------------------------------------------------------- device tokens: ingest only


def test_device_token_cannot_read_the_api(api, world, loop):
    token = _device_token(api, world.enterprise.id)
    h = _bearer(token)
    for url in [
        "/api/v1/ledger",
        "/api/v1/stock",
        "/api/v1/manifests",
        "/api/v1/boxes",
        f"/api/v1/boxes/{loop.box.code}",
        f"/api/v1/boxes/{loop.box.code}/readings",
        f"/api/v1/boxes/{loop.box.code}/history",
        f"/api/v1/boxes/{loop.box.code}/qr.png",
        f"/api/v1/labels.pdf?codes={loop.box.code}",
        "/api/v1/regeneration-batches",
        "/api/v1/users",
        "/api/v1/anomalies",
        "/api/v1/organizations",
        "/api/v1/telemetry/dead-letters",
    ]:
        assert api.get(url, as_=None, headers=h).status_code == 403, url
    assert (
        api.post("/api/v1/ledger", {"waste_code": "900-039-49", "quantity_kg": 5}, as_=None, headers=h).status_code
        == 403
    )
    assert (
        api.post(
            f"/api/v1/boxes/{loop.box.code}/fills",
            {"mass_kg": 1, "iodine_mg_g": 900, "removed_waste_kg": 1},
            as_=None,
            headers=h,
        ).status_code
        == 403
    )
    assert (
        api.post(
            "/api/v1/device-tokens", {"organization_id": world.enterprise.id, "name": "x"}, as_=None, headers=h
        ).status_code
        == 403
    )


def test_device_token_does_not_open_the_dashboard_or_pages(app, api, world, loop):
    """A gateway's token is no key to the enterprise's ledger and stock on the pages either."""
    token = _device_token(api, world.enterprise.id)
    client = app.test_client()
    r = client.get("/", headers=_bearer(token))
    body = r.get_data(as_text=True)
    assert loop.batch_code not in body and "1,800.0" not in body
    assert r.status_code in (302, 401, 403, 404)
    # Signed in as someone else, the header must not lend the enterprise's view either.
    client.post("/login", data={"username": "other", "password": factories.PASSWORD})
    for url in ["/", f"/ledger?enterprise={world.enterprise.id}", f"/stock?enterprise={world.enterprise.id}", "/boxes"]:
        r = client.get(url, headers=_bearer(token))
        body = r.get_data(as_text=True)
        assert loop.batch_code not in body and "1,800.0" not in body and loop.box.code not in body, url
    assert client.get(f"/boxes/{loop.box.code}", headers=_bearer(token)).status_code == 404
    assert client.get(f"/boxes/{loop.box.code}").status_code == 404  # and "other" alone does not see it


def test_device_token_ingests_only_its_own_boxes(api, world, loop, other_box):
    token = _device_token(api, world.enterprise.id)
    ts = _now_iso()
    r = api.post(
        "/api/v1/readings", [reading(loop.box.code, ts), reading(other_box.code, ts)], as_=None, headers=_bearer(token)
    )
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["accepted"] == 1 and [i["index"] for i in body["rejected_items"]] == [1]
    # A user of another enterprise, and a regulator, cannot write readings for the box either.
    later = datetime.now(UTC).replace(microsecond=0).isoformat()
    r = api.post("/api/v1/readings", [reading(loop.box.code, later)], as_="other")
    assert r.status_code == 200 and r.get_json()["accepted"] == 0
    assert r.get_json()["rejected_items"][0]["errors"] == {"box_code": ["unknown box"]}
    assert api.post("/api/v1/readings", [reading(loop.box.code, later)], as_="reg_tt").status_code == 403
    assert api.post("/api/v1/readings", [reading(loop.box.code, later)], as_="svc").status_code == 403


def test_device_tokens_only_for_own_organisation(api, world):
    for who in ("ent_staff", "other", "svc", "reg_city", "park"):
        r = api.post("/api/v1/device-tokens", {"organization_id": world.enterprise.id, "name": "gw"}, as_=who)
        assert r.status_code == 403, who
    r = api.post("/api/v1/device-tokens", {"organization_id": 999999, "name": "gw"}, as_="op")
    assert r.status_code == 422 and "organization_id" in r.get_json()["errors"]


# ---------------------------------------------------------------- ledger, stock, anomalies


def test_ledger_and_stock_of_another_tenant_are_not_found(api, world, loop):
    ent = world.enterprise.id
    for who in ("other", "svc", "ent_staff"):
        expected = 200 if who == "ent_staff" else 404
        assert api.get(f"/api/v1/ledger?enterprise={ent}", as_=who).status_code == expected, who
        assert api.get(f"/api/v1/stock?enterprise={ent}", as_=who).status_code == expected, who
    for who in ("reg_tt", "reg_city", "park", "op"):
        assert api.get(f"/api/v1/ledger?enterprise={ent}", as_=who).get_json()["total"] >= 1, who
    # 温岭's regulator (a county regulator elsewhere) does not see 天台's enterprise.
    wl = factories.org("温岭市生态环境分局", ["regulator"], county="331081")
    factories.user(wl, "reg_wl")
    db.session.commit()
    assert api.get(f"/api/v1/ledger?enterprise={ent}", as_="reg_wl").status_code == 404
    assert api.get(f"/api/v1/stock?enterprise={ent}", as_="reg_wl").status_code == 404
    assert api.get(f"/api/v1/anomalies?enterprise={ent}", as_="other").status_code == 404  # not visible
    assert api.get(f"/api/v1/anomalies?enterprise={ent}", as_="reg_wl").status_code == 404
    assert api.get(f"/api/v1/anomalies?enterprise={ent}", as_="reg_tt").status_code == 200
    # Recording by hand for another enterprise is refused and stores nothing.
    r = api.post("/api/v1/ledger", {"enterprise_id": ent, "waste_code": "900-039-49", "quantity_kg": 5}, as_="other")
    assert r.status_code == 403
    r = api.post("/api/v1/ledger", {"enterprise_id": ent, "waste_code": "900-039-49", "quantity_kg": 5}, as_="reg_tt")
    assert r.status_code == 403
    assert api.get("/api/v1/stock", as_="ent").get_json()["total_on_hand_kg"] == 1800


def test_list_filters_never_widen_scope(api, world, loop, other_box):
    other_id, ent = world.other_enterprise.id, world.enterprise.id
    assert api.get(f"/api/v1/boxes?enterprise={other_id}", as_="ent").status_code == 404
    assert api.get("/api/v1/boxes?county=331081", as_="ent").get_json()["total"] == 0
    assert api.get(f"/api/v1/boxes?enterprise={ent}", as_="other").status_code == 404  # not visible
    assert api.get("/api/v1/boxes", as_="other").get_json()["total"] == 1
    assert api.get("/api/v1/boxes", as_="reg_tt").get_json()["total"] == 1
    assert api.get("/api/v1/boxes", as_="reg_city").get_json()["total"] == 2
    assert api.get("/api/v1/boxes", as_="park").get_json()["total"] == 1
    assert api.get(f"/api/v1/boxes?park={world.park.id}", as_="other").status_code == 404  # not visible
    assert api.get("/api/v1/boxes?park=999999", as_="other").status_code == 404  # alike: nothing disclosed
    assert api.get(f"/api/v1/boxes?park={world.park.id}", as_="park").get_json()["total"] == 1
    r = api.get(f"/api/v1/labels.pdf?enterprise={ent}", as_="other")
    assert r.status_code == 404
    r = api.get(f"/api/v1/labels.pdf?codes={loop.box.code}", as_="other")
    assert r.status_code == 404 and loop.box.code in r.get_json()["detail"]
    number = new_manifest(api, loop, 100)["number"]
    assert api.get(f"/api/v1/manifests?enterprise={ent}", as_="other").status_code == 404  # not visible
    assert api.get("/api/v1/manifests?enterprise=999999", as_="other").status_code == 404
    # A party sees the consignors of its own manifests: the receiver filters by its consignor.
    assert api.get(f"/api/v1/manifests?enterprise={ent}", as_="svc").get_json()["total"] == 1
    assert api.get("/api/v1/manifests?party=consignor", as_="reg_tt").get_json()["total"] == 0
    assert api.get("/api/v1/manifests", as_="reg_tt").get_json()["total"] == 1
    assert api.get(f"/api/v1/manifests/{number}.pdf", as_="other").status_code == 404


def test_box_routes_of_another_tenant_are_not_found(api, world, loop):
    code = loop.box.code
    for url in [
        f"/api/v1/boxes/{code}",
        f"/api/v1/boxes/{code}/history",
        f"/api/v1/boxes/{code}/readings",
        f"/api/v1/boxes/{code}/qr.png",
        f"/api/v1/boxes/{code}/qr.svg",
    ]:
        assert api.get(url, as_="other").status_code == 404, url
    # Label sheets too: by codes (also mixed with a visible one), and by enterprise.
    own = factories.box(world.other_enterprise)
    db.session.commit()
    ent = world.enterprise.id
    for url in [
        f"/api/v1/labels.pdf?codes={code}",
        f"/api/v1/labels.pdf?codes={own.code},{code}",
        f"/api/v1/labels.pdf?enterprise={ent}",
        f"/api/v1/labels.pdf?enterprise={ent}&codes={code}",
        "/api/v1/labels.pdf?enterprise=999999",
    ]:
        r = api.get(url, as_="other")
        assert r.status_code == 404, url
    for who in ("ent", "reg_tt", "reg_city", "park", "op"):
        assert api.get(f"/api/v1/labels.pdf?enterprise={ent}", as_=who).status_code == 200, who
    assert api.get(f"/api/v1/labels.pdf?codes={own.code}", as_="other").status_code == 200
    # The carbon service sees the enterprise of the boxes it serves.
    assert api.get(f"/api/v1/labels.pdf?enterprise={ent}", as_="svc").status_code == 200
    assert api.post(f"/api/v1/boxes/{code}/status", {"status": "stopped"}, as_="other").status_code == 404
    assert api.post(f"/api/v1/boxes/{code}/label-reprints", as_="other").status_code == 404
    assert (
        api.post(
            f"/api/v1/boxes/{code}/fills", {"mass_kg": 1, "iodine_mg_g": 900, "removed_waste_kg": 1}, as_="other"
        ).status_code
        == 404
    )
    # Visible to a regulator, but only the enterprise and its carbon service change it.
    assert api.post(f"/api/v1/boxes/{code}/status", {"status": "stopped"}, as_="reg_tt").status_code == 403
    assert api.post(f"/api/v1/boxes/{code}/label-reprints", as_="park").status_code == 403
    # A box registered for another enterprise is refused.
    body = {**factories.BOX_DEFAULTS, "enterprise_id": world.enterprise.id}
    assert api.post("/api/v1/boxes", body, as_="other").status_code == 403


def test_read_cache_never_serves_an_invisible_box(api, world, loop):
    code = loop.box.code
    assert api.get(f"/api/v1/boxes/{code}", as_="op").status_code == 200  # now cached
    assert api.get(f"/api/v1/boxes/{code}", as_="ent").status_code == 200
    for who in ("other",):
        assert api.get(f"/api/v1/boxes/{code}", as_=who).status_code == 404
    wl = factories.org("温岭市生态环境分局", ["regulator"], county="331081")
    factories.user(wl, "reg_wl")
    db.session.commit()
    assert api.get(f"/api/v1/boxes/{code}", as_="reg_wl").status_code == 404
    assert api.get(f"/api/v1/boxes/{code}", as_="reg_city").status_code == 200


# ---------------------------------------------------------------- manifests: parties and states


def test_manifest_actions_check_visibility_party_and_state(api, world, loop):
    number = new_manifest(api, loop, 1000)["number"]
    # Another tenant: not found, for reads and every action.
    assert api.get(f"/api/v1/manifests/{number}", as_="other").status_code == 404
    for action, body in [
        ("submit", {}),
        ("cancel", {}),
        ("pickup", {"vehicle_plate": "浙J12345", "driver_name": "王"}),
        ("receive", {"lines": [{"line_no": 1, "received_kg": 1000}]}),
        ("reject", {"reason": "x"}),
        ("process", {"lines": [{"line_no": 1, "method_code": "R7"}]}),
    ]:
        assert api.post(f"/api/v1/manifests/{number}/{action}", body, as_="other").status_code == 404, action
    # Regulators and the park read it but are no party: 403, whatever the state.
    for who in ("reg_tt", "reg_city", "park"):
        assert api.get(f"/api/v1/manifests/{number}", as_=who).status_code == 200
        assert api.post(f"/api/v1/manifests/{number}/submit", {}, as_=who).status_code == 403, who
        assert api.post(f"/api/v1/manifests/{number}/cancel", {}, as_=who).status_code == 403, who
    # The receiver cannot submit the consignor's draft; the carrier cannot pick up a draft (409).
    assert api.post(f"/api/v1/manifests/{number}/submit", {}, as_="svc").status_code == 403
    r = api.post(f"/api/v1/manifests/{number}/pickup", {"vehicle_plate": "浙J12345", "driver_name": "王"}, as_="drv")
    assert r.status_code == 409
    assert api.post(f"/api/v1/manifests/{number}/submit", {}, as_="ent_staff").status_code == 200
    walk_to(api, number, "in_transit")
    for who in ("reg_tt", "reg_city", "park", "ent", "drv"):
        r = api.post(f"/api/v1/manifests/{number}/receive", {"lines": [{"line_no": 1, "received_kg": 1000}]}, as_=who)
        assert r.status_code == 403, who
        assert api.post(f"/api/v1/manifests/{number}/reject", {"reason": "x"}, as_=who).status_code == 403, who
    # A receiver that is no party to this manifest does not even see it.
    plant = factories.org("温岭再生有限公司", ["receiver", "regenerator"], county="331081")
    factories.user(plant, "plant2")
    db.session.commit()
    assert api.get(f"/api/v1/manifests/{number}", as_="plant2").status_code == 404
    assert (
        api.post(
            f"/api/v1/manifests/{number}/receive", {"lines": [{"line_no": 1, "received_kg": 1000}]}, as_="plant2"
        ).status_code
        == 404
    )
    assert api.post(f"/api/v1/manifests/{number}/cancel", {}, as_="ent").status_code == 409
    r = api.post(f"/api/v1/manifests/{number}/receive", {"lines": [{"line_no": 7, "received_kg": 1000}]}, as_="svc")
    assert r.status_code == 422 and "lines.0.line_no" in r.get_json()["errors"]


def test_manifest_from_another_tenants_stock_or_batches_is_refused(api, world, loop, other_box):
    body = {
        "carrier_id": loop.carrier.id,
        "receiver_id": world.service.id,
        "consignor_id": world.enterprise.id,
        "lines": [{"waste_code": "900-039-49", "quantity_kg": 100}],
    }
    assert api.post("/api/v1/manifests", body, as_="other").status_code == 403
    assert api.post("/api/v1/manifests", body, as_="reg_tt").status_code == 403
    assert api.post("/api/v1/manifests", body, as_="op").status_code == 403
    # Naming the enterprise's batch on the other enterprise's own manifest: the batch is not theirs.
    r = api.post("/api/v1/ledger", {"waste_code": "900-039-49", "quantity_kg": 500}, as_="other")
    assert r.status_code == 201
    own = {
        "carrier_id": loop.carrier.id,
        "receiver_id": world.service.id,
        "lines": [{"waste_code": "900-039-49", "quantity_kg": 100, "source_batches": [loop.batch_code]}],
    }
    r = api.post("/api/v1/manifests", own, as_="other")
    assert r.status_code == 422 and "lines.0.source_batches" in r.get_json()["errors"]


def test_verify_page_shows_no_quantities_and_pickup_checks_the_party(app, api, world, loop):
    number = new_manifest(api, loop, 1234.5, submit=True)["number"]
    client = app.test_client()
    r = client.get(f"/m/{number}")
    assert r.status_code == 200 and "1234.5" not in r.get_data(as_text=True)
    assert loop.world.enterprise.name not in r.get_data(as_text=True)
    client.post("/login", data={"username": "other", "password": factories.PASSWORD})
    r = client.post(f"/m/{number}/pickup", data={"vehicle_plate": "浙J12345", "driver_name": "王"})
    assert r.status_code == 302
    assert api.get(f"/api/v1/manifests/{number}", as_="ent").get_json()["status"] == "submitted"
    assert client.get(f"/manifests/{number}").status_code == 404


# ---------------------------------------------------------------- regeneration batches


def test_regeneration_batches_are_scoped(api, world, loop):
    number = new_manifest(api, loop, 1800, submit=True)["number"]
    walk_to(api, number, "closed")
    body = {
        "batch_no": "ZS-1",
        "method_code": "R7",
        "output_kg": 1000,
        "iodine_mg_g": 950,
        "inputs": [{"manifest_number": number, "line_no": 1, "quantity_kg": 1500}],
    }
    # Only the receiving plant consumes what it received.
    plant = factories.org("温岭再生有限公司", ["receiver", "regenerator"], county="331081")
    factories.user(plant, "plant2")
    db.session.commit()
    r = api.post("/api/v1/regeneration-batches", body, as_="plant2")
    assert r.status_code == 422 and "inputs.0.manifest_number" in r.get_json()["errors"]
    assert api.post("/api/v1/regeneration-batches", body, as_="ent").status_code == 403
    r = api.post("/api/v1/regeneration-batches", body, as_="svc")
    assert r.status_code == 201
    batch_id = r.get_json()["id"]
    for who, status in [("plant2", 404), ("other", 404), ("ent", 404), ("svc", 200), ("reg_tt", 200), ("op", 200)]:
        assert api.get(f"/api/v1/regeneration-batches/{batch_id}", as_=who).status_code == status, who
    assert api.get(f"/api/v1/regeneration-batches?plant={world.service.id}", as_="plant2").get_json()["total"] == 0


# ---------------------------------------------------------------- users, organisations, dead letters


def test_users_and_dead_letters_are_scoped(api, world):
    names = {u["username"] for u in api.get("/api/v1/users", as_="ent").get_json()["items"]}
    assert names == {"ent", "ent_staff"}
    assert [u["username"] for u in api.get("/api/v1/users", as_="ent_staff").get_json()["items"]] == ["ent_staff"]
    body = {
        "username": "intruder",
        "password": "long-enough-1",
        "organization_id": world.other_enterprise.id,
        "role": "admin",
    }
    assert api.post("/api/v1/users", body, as_="ent").status_code == 403
    assert (
        api.post("/api/v1/users", {**body, "organization_id": world.enterprise.id}, as_="ent_staff").status_code == 403
    )
    assert (
        api.post(
            "/api/v1/users", {**body, "organization_id": world.enterprise.id, "is_operator": True}, as_="ent"
        ).status_code
        == 403
    )
    assert api.post("/api/v1/organizations", {"name": "x", "roles": ["generator"]}, as_="ent").status_code == 403
    assert api.get("/api/v1/telemetry/dead-letters", as_="ent").status_code == 403
    assert api.get("/api/v1/telemetry/dead-letters", as_="reg_city").status_code == 403


# ---------------------------------------------------------------- sessions, CSRF, redirects


def test_session_cookie_never_writes_through_the_api(app, world):
    client = app.test_client()
    client.post("/login", data={"username": "ent", "password": factories.PASSWORD})
    assert client.get("/api/v1/stock").status_code == 200
    r = client.post("/api/v1/ledger", json={"waste_code": "900-039-49", "quantity_kg": 5})
    assert r.status_code == 401


def test_page_posts_need_the_csrf_token(app, world, api, loop):
    number = new_manifest(api, loop, 100, submit=True)["number"]
    client = app.test_client()
    client.post("/login", data={"username": "drv", "password": factories.PASSWORD})
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        assert client.post("/login", data={"username": "ent", "password": factories.PASSWORD}).status_code == 400
        assert client.post("/logout").status_code == 400
        r = client.post(f"/m/{number}/pickup", data={"vehicle_plate": "浙J12345", "driver_name": "王"})
        assert r.status_code == 400
        r = client.post(f"/c/{loop.box.code}", data={"mass_kg": "1", "iodine_mg_g": "900", "removed_waste_kg": "1"})
        assert r.status_code == 400
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert api.get(f"/api/v1/manifests/{number}", as_="ent").get_json()["status"] == "submitted"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "///evil.example",
        "////evil.example/x",
        "/\t/evil.example",
        "/\\/evil.example",
    ],
)
def test_login_never_redirects_off_site(app, world, target):
    """Browsers read ``///host`` and ``/\\host`` as another origin: only a plain local path is followed."""
    client = app.test_client()
    r = client.post("/login", query_string={"next": target}, data={"username": "ent", "password": factories.PASSWORD})
    assert r.status_code == 302
    assert r.headers["Location"] == "/", (target, r.headers["Location"])


def test_login_follows_a_local_next(app, world):
    client = app.test_client()
    r = client.post(
        "/login",
        query_string={"next": "/manifests?status=draft"},
        data={"username": "ent", "password": factories.PASSWORD},
    )
    assert r.status_code == 302 and r.headers["Location"] == "/manifests?status=draft"


# ---------------------------------------------------------------- odd input


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/ledger?enterprise=99999999999999999999",
        "/api/v1/stock?enterprise=-1",
        "/api/v1/manifests?enterprise=1e9",
        "/api/v1/anomalies?from=2025-13-01",
        "/api/v1/boxes?park=99999999999",
        "/api/v1/regeneration-batches?plant=abc",
        "/api/v1/boxes/%00/readings?resolution=week",
        "/api/v1/manifests/%F0%9F%92%A9",
        "/api/v1/labels.pdf?codes=,,,",
        "/api/v1/boxes?colour=purple",
    ],
)
def test_odd_query_input_is_never_a_500(api, world, url):
    r = api.get(url, as_="reg_city")
    assert r.status_code in (200, 404, 422), (url, r.status_code)
    if r.status_code == 422:
        assert r.headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "url",
    [
        "/ledger?enterprise=99999999999999999999",
        "/stock?enterprise=abc",
        "/manifests?page=99999999999999999999",
        "/boxes?page=99999999999999999999",
        "/boxes?page=-3",
        "/manifests/abc",
        "/boxes/%00",
        "/ledger?from=2025-02-30",
        "/c?code=%00",
        "/m/99999999999999",
    ],
)
def test_odd_page_input_is_never_a_500(app, world, url):
    client = app.test_client()
    client.post("/login", data={"username": "reg_city", "password": factories.PASSWORD})
    r = client.get(url)
    assert r.status_code < 500, (url, r.status_code)


def test_odd_json_bodies_name_the_field(api, world, loop):
    r = api.post("/api/v1/ledger", {"waste_code": "900-039-49", "quantity_kg": True}, as_="ent")
    assert r.status_code == 422 and "quantity_kg" in r.get_json()["errors"]
    # Beyond the databases' integers: 422 naming the field on SQLite and PostgreSQL alike.
    r = api.post("/api/v1/ledger", {"waste_code": "900-039-49", "quantity_kg": 5, "container_count": 2**40}, as_="ent")
    assert r.status_code == 422 and "container_count" in r.get_json()["errors"], r.get_json()
    r = api.post("/api/v1/ledger", {"enterprise_id": 2**40, "waste_code": "900-039-49", "quantity_kg": 5}, as_="ent")
    assert r.status_code == 422 and "enterprise_id" in r.get_json()["errors"], r.get_json()
    r = api.post(
        "/api/v1/manifests",
        {
            "carrier_id": 2**40,
            "receiver_id": -1,
            "consignor_id": 2**40,
            "lines": [{"waste_code": "900-039-49", "quantity_kg": 1}],
        },
        as_="ent",
    )
    assert r.status_code == 422
    assert {"carrier_id", "receiver_id", "consignor_id"} <= set(r.get_json()["errors"]), r.get_json()
    r = api.post("/api/v1/readings", {"readings": "x"}, as_="ent")
    assert r.status_code == 422
    r = api.post(f"/api/v1/manifests/{'1' * 14}/receive", {"lines": [{"line_no": "x"}]}, as_="svc")
    assert r.status_code in (404, 422)


@pytest.mark.parametrize(
    "url, field",
    [
        ("/api/v1/ledger?enterprise={}", "enterprise"),
        ("/api/v1/stock?enterprise={}", "enterprise"),
        ("/api/v1/manifests?enterprise={}", "enterprise"),
        ("/api/v1/anomalies?enterprise={}", "enterprise"),
        ("/api/v1/regeneration-batches?plant={}", "plant"),
    ],
)
def test_id_filters_beyond_the_integer_range_name_the_field(api, world, url, field):
    for value in (2**40, 0):
        r = api.get(url.format(value), as_="reg_city")
        assert r.status_code == 422, (url, value, r.status_code)
        assert r.headers["Content-Type"].startswith("application/problem+json")
        assert field in r.get_json()["errors"], r.get_json()
