"""Configuration from the environment, with safe defaults (product.md, "Operations contract")."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any


class ConfigError(RuntimeError):
    pass


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


# Placeholders seen in examples and templates: never a production key, whatever their length.
KNOWN_PLACEHOLDERS = frozenset(
    {
        "secret",
        "secret_key",
        "secret-key",
        "secretkey",
        "changeme",
        "change-me",
        "change_me",
        "please-change-me",
        "dev",
        "development",
        "test",
        "testing",
        "default",
        "password",
        "key",
        "your-secret-key",
        "your_secret_key",
        "replace-me",
        "replace-with-a-random-secret",
        "super-secret",
        "supersecret",
        "flask-secret-key",
        "changeme-in-production",
        "change-this-in-production",
        "insecure",
        "not-secret",
        "notsecret",
        "xxx",
    }
)
MIN_SECRET_LENGTH = 32


def secret_key_problem(secret: str) -> str | None:
    """Why ``secret`` cannot sign sessions and labels in production (None when it can)."""
    if len(secret) < MIN_SECRET_LENGTH:
        return f"SECRET_KEY must have at least {MIN_SECRET_LENGTH} characters (e.g. python -c 'import secrets; print(secrets.token_hex(32))')"
    folded = secret.strip().casefold()
    if folded in KNOWN_PLACEHOLDERS or any(
        folded.startswith(p) and len(set(folded[len(p) :])) <= 2 for p in KNOWN_PLACEHOLDERS
    ):
        return "SECRET_KEY is a known placeholder"
    if len(set(secret)) < 10:
        return "SECRET_KEY has too few distinct characters to be random"
    return None


def load_config(instance_path: str, overrides: dict | None = None) -> dict:
    """Build the Flask config dict. ``overrides`` (tests) win over the environment."""
    overrides = overrides or {}
    env = os.environ
    # Production unless told otherwise: a forgotten or weak SECRET_KEY must stop a real deployment,
    # not fall back to a development key. Only APP_ENV=development (scripts/run sets it for the
    # demo) relaxes that: FLASK_DEBUG alone never does, it is too easily left on.
    development = env.get("APP_ENV", "production") == "development"
    db_default = "sqlite:///" + str(Path(instance_path) / "tanxiang.sqlite3")
    secret = overrides.get("SECRET_KEY") or env.get("SECRET_KEY")
    testing = bool(overrides.get("TESTING"))
    if secret and not (development or testing):
        why = secret_key_problem(secret)
        if why:
            raise ConfigError(why)
    if not secret:
        if not (development or testing):
            raise ConfigError("SECRET_KEY is required outside development (set APP_ENV=development for a demo)")
        # A development-only key, stable per instance folder so sessions and label signatures
        # survive restarts of the demo server.
        key_file = Path(instance_path) / "dev-secret-key"
        Path(instance_path).mkdir(parents=True, exist_ok=True)
        if not key_file.exists():
            key_file.write_text(secrets.token_hex(32))
        secret = key_file.read_text().strip()
    port = int(env.get("PORT", "5000"))
    public_base_url = (
        overrides.get("PUBLIC_BASE_URL") or env.get("PUBLIC_BASE_URL") or f"http://127.0.0.1:{port}"
    ).rstrip("/")
    scheme = env.get("PREFERRED_URL_SCHEME") or ("https" if public_base_url.startswith("https://") else "http")
    # Cookies only over TLS when the service is served over TLS (PUBLIC_BASE_URL https, or
    # SECURE_COOKIES=1 explicitly); a demo on http://127.0.0.1 would otherwise never keep a session.
    secure = _bool(env.get("SECURE_COOKIES"), default=scheme == "https")
    config: dict[str, Any] = {
        "SECRET_KEY": secret,
        "SQLALCHEMY_DATABASE_URI": env.get("DATABASE_URL") or db_default,
        "SQLALCHEMY_ENGINE_OPTIONS": {},
        "PUBLIC_BASE_URL": public_base_url,
        "PREFERRED_URL_SCHEME": scheme,
        "MQTT_URL": env.get("MQTT_URL", "mqtt://127.0.0.1:1883"),
        "PORT": port,
        "RULES_DIR": env.get("RULES_DIR"),  # a folder overriding the shipped rule files
        "TOKEN_TTL_HOURS": int(env.get("TOKEN_TTL_HOURS", "12")),
        # werkzeug password hashing method (the test suite lowers the cost through its app config).
        "PASSWORD_HASH_METHOD": env.get("PASSWORD_HASH_METHOD", "scrypt"),
        # No request body is larger than this (the largest legitimate ones: a batch of readings,
        # 8 MiB; an index import, 5 MB); a bigger one is refused with 413 before it is read.
        "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
        "API_TITLE": "台州碳箱码 Carbon Box API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "/docs",
        "OPENAPI_SWAGGER_UI_URL": "/vendor/swagger-ui/",
        "BABEL_DEFAULT_LOCALE": "zh",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure,
        # "Remember me" (Flask-Login): two weeks, with the session cookie's flags. Sign-out or a new
        # password ends it on the server too (User.session_token, app.common.auth.load_user).
        "REMEMBER_COOKIE_DURATION": timedelta(days=int(env.get("REMEMBER_DAYS", "14"))),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": secure,
        # Behind a reverse proxy: how many proxies to trust for X-Forwarded-For / -Proto / -Host
        # (werkzeug ProxyFix, app.common.security). 0: the app faces the clients itself.
        "PROXY_FIX_X_FOR": int(env.get("PROXY_FIX_X_FOR", "0")),
        "PROXY_FIX_X_PROTO": int(env.get("PROXY_FIX_X_PROTO", "0")),
        "PROXY_FIX_X_HOST": int(env.get("PROXY_FIX_X_HOST", "0")),
        # Failed sign-ins (app.accounts.throttle): Flask-Limiter's storage. memory:// counts per
        # process; with several workers or hosts use Redis, e.g. redis://127.0.0.1:6379.
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_KEY_PREFIX": env.get("RATELIMIT_KEY_PREFIX", ""),
        # Idempotency keys of writes (app.common.idempotency): hours a key's first result is kept.
        "IDEMPOTENCY_TTL_HOURS": float(env.get("IDEMPOTENCY_TTL_HOURS", "24")),
        "LOGIN_FAILURES_PER_ACCOUNT": env.get("LOGIN_FAILURES_PER_ACCOUNT", "10 per 15 minutes"),
        "LOGIN_FAILURES_PER_ADDRESS": env.get("LOGIN_FAILURES_PER_ADDRESS", "30 per 15 minutes"),
        "JSON_AS_ASCII": False,
        # Jobs (app/jobs): the RQ queue on Redis, e.g. redis://127.0.0.1:6379/0, worked by
        # `flask --app wsgi jobs worker`. Unset (the embedded default): jobs run in the web process.
        "JOB_QUEUE_URL": env.get("JOB_QUEUE_URL") or None,
        "JOB_QUEUE_NAME": env.get("JOB_QUEUE_NAME", "tanxiang"),
        "JOB_MAX_ATTEMPTS": int(env.get("JOB_MAX_ATTEMPTS", "3")),
        "JOB_RETRY_SECONDS": env.get("JOB_RETRY_SECONDS", "10,60"),  # waits between attempts
        "JOB_TIMEOUT_SECONDS": int(env.get("JOB_TIMEOUT_SECONDS", "3600")),
    }
    config.update(overrides)
    uri: str = config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("postgres://"):
        uri = "postgresql+psycopg://" + uri[len("postgres://") :]
    elif uri.startswith("postgresql://"):
        uri = "postgresql+psycopg://" + uri[len("postgresql://") :]
    config["SQLALCHEMY_DATABASE_URI"] = uri
    if uri.startswith("sqlite"):
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 30}}
    else:
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}
    return config
