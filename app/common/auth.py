"""Who is calling: a bearer token (API, gateways) or the signed-in session (pages)."""
from __future__ import annotations

import time
from functools import wraps

from flask import request
from flask_login import current_user

from app.accounts.services import Principal, hash_token, principal_for_token
from app.common.errors import Forbidden, Unauthorized
from app.extensions import db

_UNSET = object()


# Reads are the hot path (label scans, dashboards): a token's principal is reused for reads for
# up to TOKEN_CACHE_SECONDS in this process. Writes always check the token afresh, so a revoked
# token or a deactivated user cannot change anything; it may read for at most that long.
TOKEN_CACHE_SECONDS = 30
_token_cache: dict[str, tuple[float, Principal]] = {}


def _principal_for_token(token: str) -> Principal:
    if request.method not in ("GET", "HEAD"):
        return principal_for_token(db.session, token)
    key = hash_token(token)
    hit = _token_cache.get(key)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
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
        request.method in ("GET", "HEAD", "OPTIONS") or request.blueprint == "web"
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
