"""Who is calling: a bearer token (API, gateways) or the signed-in session (pages)."""
from __future__ import annotations

import time
from datetime import datetime
from functools import wraps

from flask import request
from flask_login import current_user

from app.accounts.services import Principal, hash_token, principal_for_token
from app.common.errors import Forbidden, Unauthorized
from app.common.fastread import reader
from app.common.timeutil import from_db, utcnow
from app.extensions import db

_UNSET = object()


# Every API request names its token, and the full lookup (token, user, organisation, roles) is
# the dearest part of a cheap request. A principal is therefore reused for TOKEN_CACHE_SECONDS
# in this process, but only after a one-row check that the token is still valid and its user
# still active: revocation and deactivation take effect at once; a change of an organisation's
# roles or jurisdiction reaches a running token within that time.
TOKEN_CACHE_SECONDS = 60
_token_cache: dict[str, tuple[float, Principal]] = {}
_TOKEN_STILL_VALID = (
    "SELECT t.revoked_at, t.expires_at, u.active FROM api_tokens t "
    "LEFT JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?"
)


def _still_valid(key: str, principal: Principal) -> bool:
    try:
        row = reader.fetchone(db.engine, _TOKEN_STILL_VALID, (key,))
    except LookupError:
        return False
    if row is None:
        return False
    revoked_at, expires_at, active = row
    if revoked_at is not None:
        return False
    if expires_at is not None:
        expires = expires_at if isinstance(expires_at, datetime) else datetime.fromisoformat(expires_at)
        if from_db(expires) <= utcnow():
            return False
    return principal.is_device or bool(active)


def _principal_for_token(token: str) -> Principal:
    key = hash_token(token)
    hit = _token_cache.get(key)
    now = time.monotonic()
    if hit is not None and hit[0] > now and _still_valid(key, hit[1]):
        return hit[1]
    principal = principal_for_token(db.session, token)
    if len(_token_cache) > 10_000:
        _token_cache.clear()
    _token_cache[key] = (now + TOKEN_CACHE_SECONDS, principal)
    return principal


def forget_token(token: str) -> None:
    _token_cache.pop(hash_token(token), None)


def current_principal(optional: bool = False) -> Principal | None:
    cached = request.environ.get("tanxiang.principal", _UNSET)
    if cached is not _UNSET:
        if cached is None and not optional:
            raise Unauthorized("请先登录 (authentication required)")
        return cached
    header = request.headers.get("Authorization", "")
    principal: Principal | None = None
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization 头应为 'Bearer <token>' (expected a bearer token)")
        principal = _principal_for_token(token.strip())
    elif current_user and current_user.is_authenticated and (
        request.method in ("GET", "HEAD", "OPTIONS") or not request.path.startswith("/api/")
    ):
        # The session cookie authenticates pages (CSRF-protected forms) and safe API reads;
        # API writes need a bearer token, so a cross-site form can never write through the API.
        principal = Principal(user=current_user._get_current_object())
    request.environ["tanxiang.principal"] = principal
    if principal is None and not optional:
        raise Unauthorized("请先登录 (authentication required)")
    return principal


def require_user() -> Principal:
    """A person (not a gateway's device token) must be acting."""
    principal = current_principal()
    if principal.is_device:
        raise Forbidden("设备令牌只能上传监测数据 (device tokens may only ingest readings)")
    return principal


def user_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        require_user()
        return view(*args, **kwargs)

    return wrapper
