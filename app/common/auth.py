"""Who is calling: a bearer token (API, gateways) or the signed-in session (pages)."""
from __future__ import annotations

from functools import wraps

from flask import request
from flask_login import current_user

from app.accounts.services import Principal, principal_for_token
from app.common.errors import Forbidden, Unauthorized
from app.extensions import db

_UNSET = object()


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
        principal = principal_for_token(db.session, token.strip())
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
