"""A page form sent with an expired session or CSRF token (issue 11), over HTTP with CSRF on: a
page in the page's language that keeps what was typed (never a password), signs in again and
sends it again."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.boxes.models import Fill
from app.common.timeutil import utcnow
from app.extensions import db
from tests import factories


@pytest.fixture
def guarded(app, world, database_url):
    """The test database served by an app with CSRF protection on (as in production)."""
    from app import create_app

    served = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "csrf-" + uuid.uuid4().hex,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "PASSWORD_HASH_METHOD": app.config["PASSWORD_HASH_METHOD"],
        }
    )
    assert served.config.get("WTF_CSRF_ENABLED", True)
    yield served
    with served.app_context():
        db.session.remove()
        db.engine.dispose()


def _hidden(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))


def _sign_in(client):
    token = _hidden(client.get("/login").get_data(as_text=True))["csrf_token"]
    r = client.post("/login", data={"csrf_token": token, "username": "svc", "password": factories.PASSWORD})
    assert r.status_code == 302


def _fills(guarded) -> int:
    with guarded.app_context():
        return db.session.scalar(select(func.count()).select_from(Fill))


def _box(world):
    box = factories.box(world.enterprise, world.service, now=utcnow() - timedelta(days=5))
    db.session.commit()
    return box.code


TYPED = {"mass_kg": "2000", "iodine_mg_g": "905", "batch_no": "ZS-0042", "supplier_name": "天台再生炭"}


def test_a_form_sent_after_the_session_expired_is_kept_signed_in_again_and_sent_again(guarded, world):
    code = _box(world)
    client = guarded.test_client()
    _sign_in(client)
    form = _hidden(client.get(f"/c/{code}").get_data(as_text=True))
    # The browser was left open: its session and remember cookies are gone (expired, signed out).
    client.delete_cookie("session")
    client.delete_cookie("remember_token")
    r = client.post(f"/c/{code}", data={**form, **TYPED, "password": "never-kept"})
    assert r.status_code == 400
    page = r.get_data(as_text=True)
    assert "会话已过期" in page and "Bad Request" not in page and "CSRF" not in page
    kept = _hidden(page)
    assert {k: kept[f"kept.{k}"] for k in TYPED} == TYPED  # what was typed, as hidden fields
    assert not any("password" in name for name in kept) and "never-kept" not in page
    assert kept["_resume_target"] == f"/c/{code}"
    assert _fills(guarded) == 0
    # Signing in on that page offers the same values to send again, with fresh tokens.
    resumed = client.post("/session/resume", data={**kept, "username": "svc", "password": factories.PASSWORD})
    assert resumed.status_code == 200
    resend = _hidden(resumed.get_data(as_text=True))
    assert {k: resend[k] for k in TYPED} == TYPED and resend["csrf_token"] != form["csrf_token"]
    assert f'action="/c/{code}"' in resumed.get_data(as_text=True)
    sent = client.post(f"/c/{code}", data=resend)
    assert sent.status_code == 302, sent.get_data(as_text=True)[-1500:]
    assert _fills(guarded) == 1


def test_an_expired_csrf_token_while_signed_in_offers_the_resend_directly_in_english(guarded, world):
    code = _box(world)
    client = guarded.test_client()
    _sign_in(client)
    form = _hidden(client.get(f"/c/{code}").get_data(as_text=True))
    r = client.post(f"/c/{code}?lang=en", data={**form, **TYPED, "csrf_token": "expired-token"})
    assert r.status_code == 400
    page = r.get_data(as_text=True)
    assert "Session expired" in page and "会话" not in page
    resend = _hidden(page)
    assert {k: resend[k] for k in TYPED} == TYPED
    assert client.post(f"/c/{code}", data=resend).status_code == 302
    assert _fills(guarded) == 1


def test_a_wrong_password_on_the_resume_page_keeps_the_values(guarded, world):
    code = _box(world)
    client = guarded.test_client()
    r = client.post(f"/c/{code}", data=TYPED)  # no session at all, no token
    kept = _hidden(r.get_data(as_text=True))
    wrong = client.post("/session/resume", data={**kept, "username": "svc", "password": "wrong-password"})
    assert wrong.status_code == 401 and "用户名或密码错误" in wrong.get_data(as_text=True)
    assert {k: _hidden(wrong.get_data(as_text=True))[f"kept.{k}"] for k in TYPED} == TYPED
    # An outside target is never followed.
    evil = client.post(
        "/session/resume",
        data={**kept, "_resume_target": "//evil.example/x", "username": "svc", "password": factories.PASSWORD},
    )
    assert "evil.example" not in evil.get_data(as_text=True)
