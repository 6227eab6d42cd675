"""Accounts: USCC checks, tokens and logins, organisations and users, revocation."""

from __future__ import annotations

import pytest

from app.accounts.uscc import make_uscc, uscc_error


def test_uscc_known_valid_codes():
    # Published codes of real companies (GB 32100-2015 check characters).
    for code in ("91350100M000100Y43", "9144030071526726XG", "91330100716105852F", "914403001922038216"):
        assert uscc_error(code) is None, code


@pytest.mark.parametrize("bad", ["91350100M000100Y44", "9144030071526726X", "9133010071610585IF", "91ABCDEF716105852F"])
def test_uscc_invalid(bad):
    assert uscc_error(bad) is not None


def test_uscc_single_character_errors_are_caught():
    good = make_uscc("91331023MA2AB1234")
    assert uscc_error(good) is None
    for i in range(17):
        for ch in "0123456789ABCDEFGHJKLMNPQRTUWXY":
            if ch == good[i]:
                continue
            mutated = good[:i] + ch + good[i + 1 :]
            if mutated[2:8].isdigit():
                assert uscc_error(mutated) is not None, mutated


def test_token_and_bad_login(api):
    r = api.client.post("/api/v1/auth/token", json={"username": "ent", "password": "wrong-password"})
    assert r.status_code == 401
    assert r.mimetype == "application/problem+json"
    r = api.client.post("/api/v1/auth/token", json={"username": "ent"})
    assert r.status_code == 422
    assert "password" in r.get_json()["errors"]
    assert api.get("/api/v1/boxes", as_=None).status_code == 401
    r = api.get("/api/v1/boxes", headers={"Authorization": "Bearer nope"}, as_=None)
    assert r.status_code == 401


def test_operator_creates_organisation_with_uscc_check(api):
    body = {"name": "临海医化有限公司", "uscc": "91330100716105852G", "roles": ["generator"], "county_code": "331082"}
    r = api.post("/api/v1/organizations", body)
    assert r.status_code == 422
    assert r.mimetype == "application/problem+json"
    assert "uscc" in r.get_json()["errors"]
    body["uscc"] = make_uscc("91331082MA2XY7788")
    r = api.post("/api/v1/organizations", body)
    assert r.status_code == 201, r.get_json()
    org = r.get_json()
    assert org["roles"] == ["generator"] and org["county_name"] == "临海市"
    assert api.get(f"/api/v1/organizations/{org['id']}").get_json()["uscc"] == body["uscc"]
    # Same USCC again: conflict, nothing new stored.
    total = api.get("/api/v1/organizations").get_json()["total"]
    assert api.post("/api/v1/organizations", body).status_code == 409
    assert api.get("/api/v1/organizations").get_json()["total"] == total


def test_only_operators_create_organisations_and_parks(api):
    body = {"name": "X", "roles": ["generator"], "county_code": "331023"}
    assert api.post("/api/v1/organizations", body, as_="ent").status_code == 403
    assert api.post("/api/v1/parks", {"name": "新园区", "county_code": "331023"}, as_="ent").status_code == 403
    r = api.post("/api/v1/parks", {"name": "新园区", "county_code": "331023"})
    assert r.status_code == 201
    assert api.post("/api/v1/parks", {"name": "P2", "county_code": "999999"}).status_code == 422


def test_users_created_by_org_admin_only_in_own_org(api, world):
    body = {"username": "newbie", "password": "long-enough-1", "organization_id": world.enterprise.id}
    assert api.post("/api/v1/users", body, as_="ent_staff").status_code == 403
    assert (
        api.post("/api/v1/users", {**body, "organization_id": world.other_enterprise.id}, as_="ent").status_code == 403
    )
    r = api.post("/api/v1/users", body, as_="ent")
    assert r.status_code == 201
    assert "password" not in r.get_json()
    names = {u["username"] for u in api.get("/api/v1/users", as_="ent").get_json()["items"]}
    assert "newbie" in names and "other" not in names
    assert api.post("/api/v1/users", {**body, "password": "short"}, as_="ent").status_code == 422


def test_revoked_tokens_and_deactivated_users_stop_at_once(api, world, app):
    from app.accounts.models import User
    from app.extensions import db

    token = api.token("ent")
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(2):  # the second read is served from the token cache
        assert api.client.get("/api/v1/boxes", headers=headers).status_code == 200
    assert api.client.post("/api/v1/auth/revoke", headers=headers).status_code == 204
    assert api.client.get("/api/v1/boxes", headers=headers).status_code == 401
    assert api.client.post("/api/v1/auth/revoke", headers=headers).status_code == 401

    other = {"Authorization": f"Bearer {api.token('ent_staff')}"}
    assert api.client.get("/api/v1/boxes", headers=other).status_code == 200
    with app.app_context():
        db.session.query(User).filter_by(username="ent_staff").update({"active": False})
        db.session.commit()
    assert api.client.get("/api/v1/boxes", headers=other).status_code == 401
