"""Accounts hardening: sign-in throttling, constant-time refusal, the password policy, device tokens."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.accounts import services
from app.accounts.models import ApiToken, User
from app.accounts.passwords import password_problems
from app.common.timeutil import utcnow
from app.common.wiring import wiring_of
from tests import factories


def _wrong(client, username="ent", address="10.0.0.1"):
    return client.post(
        "/api/v1/auth/token",
        json={"username": username, "password": "wrong-password"},
        environ_base={"REMOTE_ADDR": address},
    )


def test_failed_api_sign_ins_are_throttled_per_account(api):
    statuses = [_wrong(api.client).status_code for _ in range(12)]
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429]
    r = _wrong(api.client)
    assert r.mimetype == "application/problem+json" and r.get_json()["status"] == 429
    assert 0 < int(r.headers["Retry-After"]) <= 15 * 60
    # Throttled means throttled: the right password does not get through either, from anywhere.
    right = api.client.post(
        "/api/v1/auth/token",
        json={"username": "ent", "password": factories.PASSWORD},
        environ_base={"REMOTE_ADDR": "10.9.9.9"},
    )
    assert right.status_code == 429
    # Another account is not affected (from another address).
    ok = api.client.post(
        "/api/v1/auth/token",
        json={"username": "svc", "password": factories.PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    assert ok.status_code == 201


def test_failed_sign_ins_are_throttled_per_address(api):
    # Spraying many accounts from one address: the address's budget (30) runs out.
    statuses = [_wrong(api.client, username=f"user{i}", address="10.1.1.1").status_code for i in range(32)]
    assert statuses[:30] == [401] * 30 and statuses[30:] == [429, 429]
    assert _wrong(api.client, username="user99", address="10.1.1.2").status_code == 401


def test_failed_page_sign_ins_are_throttled_with_a_chinese_page(app, world, client):
    for _ in range(10):
        assert client.post("/login", data={"username": "ent", "password": "wrong-password"}).status_code == 401
    r = client.post("/login", data={"username": "ent", "password": factories.PASSWORD})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    page = r.get_data(as_text=True)
    assert "登录失败次数过多" in page and 'value="ent"' in page  # the username is kept
    # The API counts the same failures: the account is throttled there too.
    assert client.post("/api/v1/auth/token", json={"username": "ent", "password": "x"}).status_code == 429


def test_unknown_user_is_refused_after_one_verification_of_the_same_method(session, world, monkeypatch):
    import werkzeug.security

    calls = {"check": [], "generate": 0}
    real_check, real_generate = werkzeug.security.check_password_hash, werkzeug.security.generate_password_hash

    def check(stored, password):
        calls["check"].append(stored.split("$")[0])
        return real_check(stored, password)

    def generate(*args, **kwargs):
        calls["generate"] += 1
        return real_generate(*args, **kwargs)

    services._dummy_hash.cache_clear()
    monkeypatch.setattr(services, "check_password_hash", check)
    monkeypatch.setattr(services, "generate_password_hash", generate)
    method = wiring_of(session).password_hash_method
    for name in ("nobody", "nobody-else"):
        try:
            services.authenticate(session, name, "whatever-it-is")
        except Exception as exc:
            assert type(exc).__name__ == "Unauthorized"
    assert calls["check"] == [method, method]  # one verification each, of the configured method
    assert calls["generate"] == 1  # the dummy hash, once, not per attempt


def test_password_policy():
    assert password_problems("correct-horse-9", "ent") == []
    for common in ("password", "12345678", "1234567890", "qwertyuiop", "password123!", "Iloveyou12"):
        assert any("common" in p or "characters" in p for p in password_problems(common)), common
    assert password_problems("short-1") == ["at least 10 characters"]
    assert "must not be the username" in password_problems("zhangsan2024", "zhangsan")
    assert "must not be the username" in password_problems("Zhangsan-Wei", "zhangsan-wei")
    assert any("simple" in p for p in password_problems("aaaaabbbbbaaaaa"))


def test_weak_passwords_refused_when_creating_a_user_and_changing_one(api, world):
    body = {"username": "newbie", "organization_id": world.enterprise.id}
    for weak in ("password", "12345678", "qwertyuiop", "newbie-newbie", "newbie"):
        r = api.post("/api/v1/users", {**body, "password": weak}, as_="ent")
        assert r.status_code == 422 and "password" in r.get_json()["errors"], weak
    assert api.post("/api/v1/users", {**body, "password": "spring-rain-77"}, as_="ent").status_code == 201
    # A change: the current password first, the policy for the new one, the old tokens end.
    old = api.token("ent")
    r = api.post("/api/v1/auth/password", {"current_password": "wrong", "new_password": "spring-rain-78"}, as_="ent")
    assert r.status_code == 422 and "current_password" in r.get_json()["errors"]
    r = api.post(
        "/api/v1/auth/password", {"current_password": factories.PASSWORD, "new_password": "password1"}, as_="ent"
    )
    assert r.status_code == 422 and "new_password" in r.get_json()["errors"]
    r = api.post(
        "/api/v1/auth/password", {"current_password": factories.PASSWORD, "new_password": "spring-rain-78"}, as_="ent"
    )
    assert r.status_code == 204
    assert api.client.get("/api/v1/boxes", headers={"Authorization": f"Bearer {old}"}).status_code == 401
    assert (
        api.client.post("/api/v1/auth/token", json={"username": "ent", "password": "spring-rain-78"}).status_code == 201
    )


def test_each_user_has_its_own_salt(session, world):
    hashes = [u.password_hash for u in session.scalars(select(User))]
    assert len(hashes) == len(set(hashes)) > 5  # the same password, a different salt and hash each


# ---------------------------------------------------------------- device tokens


def test_device_tokens_expire_are_listed_and_revoked(api, world, session):
    org_id = world.enterprise.id
    r = api.post("/api/v1/device-tokens", {"organization_id": org_id, "name": "gw-1"}, as_="ent")
    assert r.status_code == 201
    made = r.get_json()
    token, token_id = made["token"], made["id"]
    assert made["issued_by_user_id"] == world.users["ent"].id
    assert made["expires_at"] and made["revoked_at"] is None
    row = session.get(ApiToken, token_id)
    assert timedelta(days=364) < row.expires_at - utcnow() <= timedelta(days=365)
    short = api.post(
        "/api/v1/device-tokens", {"organization_id": org_id, "name": "gw-2", "expires_in_days": 7}, as_="ent"
    ).get_json()
    assert timedelta(days=6) < session.get(ApiToken, short["id"]).expires_at - utcnow() <= timedelta(days=7)
    other = api.post(
        "/api/v1/device-tokens", {"organization_id": world.other_enterprise.id, "name": "gw-x"}, as_="other"
    ).get_json()

    # Listing: the organisation's admin sees its own, operators all; never the token itself.
    listed = api.get("/api/v1/device-tokens", as_="ent").get_json()["items"]
    assert {t["id"] for t in listed} == {token_id, short["id"]}
    assert all("token" not in t and "token_hash" not in t for t in listed)
    assert {t["id"] for t in api.get("/api/v1/device-tokens", as_="op").get_json()["items"]} == {
        token_id,
        short["id"],
        other["id"],
    }
    assert api.get("/api/v1/device-tokens", as_="ent_staff").status_code == 403

    # It works for ingest until revoked; its last use is recorded.
    gateway = {"Authorization": f"Bearer {token}"}
    assert api.client.post("/api/v1/readings", json={"readings": []}, headers=gateway).status_code < 400
    session.expire_all()
    assert session.get(ApiToken, token_id).last_used_at is not None
    assert (
        api.client.delete(
            f"/api/v1/device-tokens/{other['id']}", headers={"Authorization": f"Bearer {api.token('ent')}"}
        ).status_code
        == 404
    )
    assert (
        api.client.delete(
            f"/api/v1/device-tokens/{token_id}", headers={"Authorization": f"Bearer {api.token('ent')}"}
        ).status_code
        == 204
    )
    assert api.client.post("/api/v1/readings", json={"readings": []}, headers=gateway).status_code == 401
    listed = {t["id"]: t for t in api.get("/api/v1/device-tokens", as_="ent").get_json()["items"]}
    assert listed[token_id]["revoked_at"] is not None and listed[token_id]["last_used_at"] is not None


def test_expired_device_token_is_refused(api, world, session):
    made = api.post("/api/v1/device-tokens", {"organization_id": world.enterprise.id}, as_="ent").get_json()
    row = session.get(ApiToken, made["id"])
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    r = api.client.post("/api/v1/readings", json={"readings": []}, headers={"Authorization": f"Bearer {made['token']}"})
    assert r.status_code == 401


def test_last_use_is_recorded_at_most_once_a_minute(session, world):
    from app.extensions import db

    _raw, row = services.issue_device_token(session, factories.op_principal(), world.enterprise.id, "gw")
    session.commit()
    now = utcnow()
    with db.engine.begin() as conn:
        services.touch_token(conn, row.token_hash, now)
    with db.engine.begin() as conn:
        services.touch_token(conn, row.token_hash, now + timedelta(seconds=30))  # within the minute: no write
    session.expire_all()
    assert session.get(ApiToken, row.id).last_used_at == now
    with db.engine.begin() as conn:
        services.touch_token(conn, row.token_hash, now + timedelta(seconds=61))
    session.expire_all()
    assert session.get(ApiToken, row.id).last_used_at == now + timedelta(seconds=61)
