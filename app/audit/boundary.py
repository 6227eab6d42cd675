"""Who acts, and through which interface, for the request boundary (app.common.tx)."""

from __future__ import annotations

from flask import request
from flask_login import current_user

from app.audit import recorder


def bind_request(session) -> None:
    """Page or API, and the request's principal (bearer token or signed-in user), on ``session``."""
    principal = request.environ.get("tanxiang.principal")
    interface = "api" if request.path.startswith("/api/") else "page"
    if principal is None and current_user and getattr(current_user, "is_authenticated", False):
        from app.accounts.services import Principal

        principal = Principal(user=current_user._get_current_object())
    recorder.set_principal(session, interface, principal)
