"""A page form sent with an expired session or CSRF token (issue 11).

Flask-WTF refuses such a POST with ``CSRFError`` ("400 Bad Request – The CSRF session token is
missing."), and what the person typed is lost. Here instead the page says, in the page's
language, that nothing was saved, and keeps what was typed as hidden fields (never a password,
never the old tokens): signed in, a tap sends it again with fresh tokens; signed out, the same
page asks for the user name and password first (``/session/resume``, a CSRF-protected form of its
own), then offers the resend. The resend goes to the original page's own view, which checks it as
it checks any form; its fresh idempotency key keeps a double tap one action.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_login import current_user, login_user
from flask_wtf.csrf import CSRFError

from app.common.errors import Unauthorized
from app.extensions import db
from app.web.form_tokens import user_fields

bp = Blueprint("session_resume", __name__, template_folder="../templates")

TARGET_FIELD = "_resume_target"
KEPT_PREFIX = "kept."  # the kept fields, on the sign-in form, apart from its own user name and password
_NEVER_KEPT = ("password", "secret", "token")


def _kept(form) -> list[tuple[str, str]]:
    """What the person typed, without passwords, tokens or the sign-in form's own fields."""
    return [
        (name, value)
        for name, value in user_fields(form).items()
        if not any(word in name.lower() for word in _NEVER_KEPT) and name != TARGET_FIELD
    ]


def _target(raw: str | None) -> str:
    from app.web.views import _safe_next

    return _safe_next(raw)


def _render(target: str, kept: list[tuple[str, str]], error: str | None = None, status: int = 400):
    return (
        render_template(
            "session_resume.html",
            target=target,
            kept=kept,
            kept_prefix=KEPT_PREFIX,
            target_field=TARGET_FIELD,
            signed_in=current_user.is_authenticated,
            error=error,
        ),
        status,
    )


@bp.app_errorhandler(CSRFError)
def _expired(err: CSRFError):
    if request.path.startswith("/api/"):  # the API is CSRF-exempt; keep its problem documents anyway
        from app.common.errors import problem

        return problem(400, "Bad Request", err.description)
    target = _target(request.full_path.rstrip("?") if request.query_string else request.path)
    if request.path == "/login":  # an expired sign-in form: simply sign in again
        target = _target(request.args.get("next"))
    return _render(target, _kept(request.form))


@bp.route("/session/resume", methods=["POST"])
def resume():
    """Sign in again (if the session ended), then offer the kept form to send again."""
    from app.accounts import services as account_services
    from app.accounts import throttle

    target = _target(request.form.get(TARGET_FIELD))
    kept = [(k[len(KEPT_PREFIX) :], v) for k, v in request.form.items() if k.startswith(KEPT_PREFIX)]
    kept = [(k, v) for k, v in kept if not any(word in k.lower() for word in _NEVER_KEPT)]
    if not current_user.is_authenticated:
        username = request.form.get("username", "")
        wait = throttle.check(username)
        if wait is not None:
            return _render(target, kept, _("登录失败次数过多，请 %(minutes)s 分钟后再试。", minutes=wait.minutes), 429)
        try:
            user = account_services.authenticate(db.session(), username, request.form.get("password", ""))
        except Unauthorized:
            throttle.failed(username)
            return _render(target, kept, _("用户名或密码错误"), 401)
        login_user(user, remember=True)
    return _render(target, kept, status=200)
