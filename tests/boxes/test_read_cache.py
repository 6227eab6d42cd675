"""The box read cache never serves what another writer changed, nor hides what time changed."""

from __future__ import annotations

from sqlalchemy import select

from app.accounts.services import Principal
from app.boxes import services as box_services
from app.boxes.models import Box
from app.common.timeutil import utcnow
from app.extensions import db
from tests import factories
from tests.boxes.builders import register


def test_cached_box_follows_writes_from_elsewhere(api, app, now):
    code = register(api)["code"]
    api.post(f"/api/v1/boxes/{code}/fills", {"mass_kg": 2000, "iodine_mg_g": 900}, as_="ent")
    first = api.get(f"/api/v1/boxes/{code}", as_="ent").get_json()
    assert first["colour"] == "green"
    assert api.get(f"/api/v1/boxes/{code}", as_="ent").get_json() == first  # served from the cache
    # Another process (a second gunicorn worker) records an old fill directly in the database.
    with app.app_context():
        box = db.session.scalar(select(Box).where(Box.code == code))
        box_services.record_fill(
            db.session,
            factories.op_principal(),
            box,
            {"mass_kg": 2000.0, "iodine_mg_g": 700.0, "removed_waste_kg": 2100.0},
            now=utcnow(),
        )
        db.session.commit()
    again = api.get(f"/api/v1/boxes/{code}", as_="ent").get_json()
    assert again["colour"] == "red" and again["current_fill"]["iodine_mg_g"] == 700
    page = api.client.get(f"/c/{code}").get_data(as_text=True)
    assert 'data-colour="red"' in page


def test_cache_respects_visibility(api):
    code = register(api)["code"]
    assert api.get(f"/api/v1/boxes/{code}", as_="ent").status_code == 200
    # The entry is now cached; another tenant still gets 404.
    assert api.get(f"/api/v1/boxes/{code}", as_="other").status_code == 404
    assert api.get(f"/api/v1/boxes/{code}", as_="reg_city").status_code == 200


def test_can_see_agrees_with_box_scope(app, world, session):
    boxes = [factories.box(world.enterprise, world.service), factories.box(world.other_enterprise)]
    session.commit()
    for username, user in world.users.items():
        actor = Principal(user=user)
        visible = set(session.scalars(select(Box.id).where(box_services.box_scope(actor))))
        for box in boxes:
            expected = box.id in visible
            got = box_services.can_see(
                actor,
                enterprise_id=box.enterprise_id,
                service_org_id=box.service_org_id,
                county_code=box.enterprise.county_code,
                park_id=box.enterprise.park_id,
            )
            assert got == expected, (username, box.code)


def test_scan_page_cache_shows_label_problems_each_time(api, client):
    code = register(api)["code"]
    assert "data-label-state" not in client.get(f"/c/{code}").get_data(as_text=True)
    for _ in range(2):
        assert 'data-label-state="forged"' in client.get(f"/c/{code}?v=1&s=BADBADBADBADBADB").get_data(as_text=True)
    kinds = [e["kind"] for e in api.get(f"/api/v1/boxes/{code}/history", as_="ent").get_json()["events"]]
    assert kinds.count("label_forged_scan") == 1  # counted in one event per hour (record_scan_problem)


def test_lean_viewer_agrees_with_box_scope(app, world, session):
    """The box API's lean read decides on a plain viewer built from the caller's token row
    (app.common.auth.visibility_from_row), not on ORM objects: the same answer as box_scope."""
    from app.accounts.services import issue_user_token
    from app.common.auth import _LEAN_TOKEN, visibility_from_row
    from app.common.fastread import core_reader

    boxes = [factories.box(world.enterprise, world.service), factories.box(world.other_enterprise)]
    tokens = {name: issue_user_token(session, user, 1)[1].token_hash for name, user in world.users.items()}
    session.commit()
    checked = 0
    for username, user in world.users.items():
        visible = set(session.scalars(select(Box.id).where(box_services.box_scope(Principal(user=user)))))
        viewer = visibility_from_row(core_reader.first(db.engine, _LEAN_TOKEN, {"token_hash": tokens[username]}))
        assert viewer is not None, username
        for box in boxes:
            got = box_services.can_see(
                viewer,
                enterprise_id=box.enterprise_id,
                service_org_id=box.service_org_id,
                county_code=box.enterprise.county_code,
                park_id=box.enterprise.park_id,
            )
            assert got == (box.id in visible), (username, box.code)
            checked += got
    assert checked > 0  # some user sees some box
