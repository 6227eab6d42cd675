"""The app as a whole: health and readiness, OpenAPI and the vendored docs, configuration,
problem+json for bad bodies, the request size limit."""

from __future__ import annotations

import pytest


def test_unknown_fields_and_malformed_json(api):
    r = api.post("/api/v1/parks", {"name": "P", "county_code": "331023", "colour": "x"})
    assert r.status_code == 422 and "colour" in r.get_json()["errors"]
    r = api.client.post(
        "/api/v1/parks",
        data="{not json",
        headers={"Authorization": f"Bearer {api.token('op')}", "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.mimetype == "application/problem+json"


def test_healthz_openapi_docs(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {"status": "ok", "database": "up"}
    spec = client.get("/openapi.json").get_json()
    assert "/api/v1/boxes/{code}" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_secret_key_required_outside_development(tmp_path, monkeypatch):
    from app.config import ConfigError, load_config

    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config(str(tmp_path))
    # A weak or placeholder key stops a production start, FLASK_DEBUG or not.
    monkeypatch.setenv("FLASK_DEBUG", "1")
    for weak in ("a", "s3cret", "changeme", "x" * 40, "change-me" + "!" * 30, "0123456701234567012345670123456701"):
        monkeypatch.setenv("SECRET_KEY", weak)
        with pytest.raises(ConfigError, match="SECRET_KEY"):
            load_config(str(tmp_path))
    strong = "9f1c0e6b7a8d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a99"
    monkeypatch.setenv("SECRET_KEY", strong)
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1/x")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://tanxiang.example.cn/")
    config = load_config(str(tmp_path))
    assert config["SECRET_KEY"] == strong
    # Served over TLS: the cookies are Secure, HttpOnly, SameSite=Lax; "remember me" lasts two weeks.
    assert config["SESSION_COOKIE_SECURE"] and config["REMEMBER_COOKIE_SECURE"]
    assert config["REMEMBER_COOKIE_SAMESITE"] == "Lax" and config["REMEMBER_COOKIE_HTTPONLY"]
    assert config["REMEMBER_COOKIE_DURATION"].days == 14
    monkeypatch.delenv("FLASK_DEBUG")
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://postgres@127.0.0.1/x"
    assert config["PUBLIC_BASE_URL"] == "https://tanxiang.example.cn"
    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.delenv("SECRET_KEY")
    first = load_config(str(tmp_path))["SECRET_KEY"]
    assert first and load_config(str(tmp_path))["SECRET_KEY"] == first  # stable across restarts


def test_docs_serve_the_vendored_swagger_ui(client):
    page = client.get("/docs").get_data(as_text=True)
    assert "/vendor/swagger-ui/swagger-ui-bundle.js" in page
    bundle = client.get("/vendor/swagger-ui/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and b"SwaggerUIBundle" in bundle.data
    assert client.get("/vendor/../app/config.py").status_code == 404


def test_a_body_over_the_application_limit_is_413_before_it_is_read(app, api):
    limit = app.config["MAX_CONTENT_LENGTH"]
    assert limit >= 9 * 1024 * 1024  # above the largest legitimate body (8 MiB of readings)
    body = b'{"username": "' + b"x" * limit + b'", "password": "y"}'
    r = api.client.post("/api/v1/auth/token", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.mimetype == "application/problem+json", r.get_data(as_text=True)[:200]
