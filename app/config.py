"""Configuration from the environment, with safe defaults (product.md, "Operations contract")."""
from __future__ import annotations

import os
import secrets
from pathlib import Path


class ConfigError(RuntimeError):
    pass


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def load_config(instance_path: str, overrides: dict | None = None) -> dict:
    """Build the Flask config dict. ``overrides`` (tests) win over the environment."""
    overrides = overrides or {}
    env = os.environ
    # Production unless told otherwise: a forgotten SECRET_KEY must stop a real deployment, not
    # fall back to a development key. scripts/run sets APP_ENV=development for the demo.
    development = _bool(env.get("FLASK_DEBUG")) or env.get("APP_ENV", "production") == "development"
    db_default = "sqlite:///" + str(Path(instance_path) / "tanxiang.sqlite3")
    secret = overrides.get("SECRET_KEY") or env.get("SECRET_KEY")
    testing = bool(overrides.get("TESTING"))
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
    config = {
        "SECRET_KEY": secret,
        "SQLALCHEMY_DATABASE_URI": env.get("DATABASE_URL") or db_default,
        "SQLALCHEMY_ENGINE_OPTIONS": {},
        "PUBLIC_BASE_URL": (env.get("PUBLIC_BASE_URL") or f"http://127.0.0.1:{port}").rstrip("/"),
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
        "JSON_AS_ASCII": False,
    }
    config.update(overrides)
    uri = config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("postgres://"):
        uri = "postgresql+psycopg://" + uri[len("postgres://"):]
    elif uri.startswith("postgresql://"):
        uri = "postgresql+psycopg://" + uri[len("postgresql://"):]
    config["SQLALCHEMY_DATABASE_URI"] = uri
    if uri.startswith("sqlite"):
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 30}}
    else:
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}
    return config
