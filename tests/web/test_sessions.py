"""Sessions and response headers: sign-out ends cookies on the server, cookie flags, security headers."""

from __future__ import annotations

import re
from datetime import UTC
from http.cookies import SimpleCookie

from tests import factories


def _sign_in(client, username="ent"):
    r = client.post("/login", data={"username": username, "password": factories.PASSWORD})
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    return r


def _cookies(response) -> dict[str, SimpleCookie]:
    out = {}
    for header in response.headers.getlist("Set-Cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        for name, morsel in cookie.items():
            out[name] = (morsel, header)
    return out


def test_sign_out_ends_the_session_and_the_remember_cookie_on_the_server(app, world):
    browser = app.test_client()
    r = _sign_in(browser)
    cookies = _cookies(r)
    assert {"session", "remember_token"} <= set(cookies)
    session_cookie, remember = cookies["session"][0].value, cookies["remember_token"][0].value
    assert browser.get("/boxes").status_code == 200
    logout = browser.post("/logout")
    assert logout.status_code == 302
    # An attacker who copied both cookies before the sign-out: neither opens /boxes any more.
    for name, value in (("session", session_cookie), ("remember_token", remember)):
        thief = app.test_client()
        thief.set_cookie(name, value)
        r = thief.get("/boxes")
        assert r.status_code == 302 and "/login" in r.headers["Location"], name
    thief = app.test_client()
    thief.set_cookie("session", session_cookie)
    thief.set_cookie("remember_token", remember)
    assert thief.get("/boxes").status_code == 302
    # Signing in again works.
    _sign_in(browser)
    assert browser.get("/boxes").status_code == 200


def test_remember_cookie_flags_and_duration(app, world):
    cookies = _cookies(_sign_in(app.test_client()))
    for name in ("session", "remember_token"):
        header = cookies[name][1]
        assert "HttpOnly" in header and "SameSite=Lax" in header, header
    from datetime import datetime, timedelta
    from email.utils import parsedate_to_datetime

    expires = parsedate_to_datetime(cookies["remember_token"][0]["expires"])
    assert timedelta(days=13, hours=23) < expires - datetime.now(UTC) <= timedelta(days=14)
    # The test app is served over http: no Secure flag (the config sets it behind TLS, tests/common/test_app.py).
    assert "Secure" not in cookies["remember_token"][1]


def test_secure_cookies_behind_tls(app, world):
    app.config.update(SESSION_COOKIE_SECURE=True, REMEMBER_COOKIE_SECURE=True)
    try:
        r = app.test_client().post(
            "/login", data={"username": "ent", "password": factories.PASSWORD}, base_url="https://testserver.local"
        )
        cookies = _cookies(r)
        assert "Secure" in cookies["session"][1] and "Secure" in cookies["remember_token"][1]
    finally:
        app.config.update(SESSION_COOKIE_SECURE=False, REMEMBER_COOKIE_SECURE=False)


def _assert_security_headers(response, tls=False):
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert ("Strict-Transport-Security" in headers) == tls
    return csp


def test_security_headers_on_pages_api_errors_and_static(app, api, world):
    client = app.test_client()
    for path in ("/login", "/healthz", "/api/v1/boxes", "/no-such-page", "/openapi.json", "/static/css/app.css"):
        csp = _assert_security_headers(client.get(path))
        if path != "/docs":
            assert "'unsafe-inline'" not in csp and "script-src 'self';" in csp, path
    _assert_security_headers(api.get("/api/v1/boxes", as_="ent"))
    _assert_security_headers(client.get("/login", base_url="https://testserver.local"), tls=True)


def test_pages_have_no_inline_script_or_style(app, api, world):
    from app.extensions import db

    with app.app_context():
        box = factories.box(world.enterprise, world.service)
        db.session.commit()
        code = box.code
    browser = app.test_client()
    _sign_in(browser)
    for path in ("/login", f"/c/{code}", "/boxes", "/"):
        html = (
            (browser if path != "/login" else app.test_client()).get(path, follow_redirects=True).get_data(as_text=True)
        )
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\sstyle=|\son[a-z]+=", html), path


def test_swagger_ui_gets_its_own_csp_and_still_loads(app):
    client = app.test_client()
    r = client.get("/docs")
    assert r.status_code == 200
    csp = _assert_security_headers(r)
    html = r.get_data(as_text=True)
    inline = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert inline, "Swagger UI's page has its configuration script"
    import base64
    import hashlib

    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    for src in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert client.get(src).status_code == 200, src


def test_forged_label_scans_are_counted_not_flooded(app, api, world):
    from app.extensions import db

    with app.app_context():
        box = factories.box(world.enterprise, world.service)
        db.session.commit()
        code = box.code
    anonymous = app.test_client()
    for i in range(50):
        assert anonymous.get(f"/c/{code}?v=1&s=forged{i}").status_code == 200
    for _ in range(3):
        anonymous.get(f"/c/{code}?v=0&s=whatever")
    events = api.get(f"/api/v1/boxes/{code}/history", as_="ent").get_json()["events"]
    forged = [e for e in events if e["kind"] == "label_forged_scan"]
    assert len(forged) == 1, len(forged)
    detail = forged[0].get("detail") or {}
    assert detail.get("count") == 53
