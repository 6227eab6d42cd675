"""One action, one record: idempotency keys on writes (issue 11).

A client that may send a write twice (a double tap, a resent form, a retry after a timeout)
names the action with a key; the service keeps the first result and answers it again.

* API writes: the ``Idempotency-Key`` header (1–200 visible ASCII characters).
* Page forms: the hidden ``idempotency_key`` field every form carries (``{{ form_tokens() }}``,
  app/web/form_tokens.py), a fresh key per rendered form.

Keys are scoped per principal (the user, or the gateway's organisation) and per route (method and
path). The first successful result (status < 400: its status, body, content type and
``Location``) is stored in ``idempotency_keys`` in the same transaction as the write itself, by the
transaction boundary (app/common/tx.py), so a key is remembered exactly when the action is
committed. A refused request (>= 400) is rolled back with its key: it may be sent again.

The same key again with the same request (body, or the form's fields) answers the stored result,
marked ``Idempotent-Replayed: true``; a page form is redirected again where the first one went.
The same key with a different request is 422 ``idempotency_key_reused``. Two identical requests at
once: both run, the second's commit meets the unique key of the first and is rolled back whole
(nothing of it is stored), and it answers the first's stored result (409 if there is none to
answer). Keys expire after ``IDEMPOTENCY_TTL_HOURS`` (24); ``flask --app wsgi idempotency prune``
deletes the expired ones. Views do nothing special.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import click
from flask import Flask, Response, current_app, request
from sqlalchemy import Integer, LargeBinary, String, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.common.forms import IDEMPOTENCY_FIELD, TOKEN_FIELDS
from app.common.timeutil import utcnow
from app.common.types import UTCDateTime
from app.extensions import Model

HEADER = "Idempotency-Key"
FORM_FIELD = IDEMPOTENCY_FIELD
REPLAYED_HEADER = "Idempotent-Replayed"
DEFAULT_TTL_HOURS = 24
MAX_STORED_BODY = 1_000_000  # bytes; a larger answer is not kept (the write still happens once per commit)
_KEY = re.compile(r"[\x21-\x7e]{1,200}")
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PENDING = "tanxiang.idempotency"
# Pages whose POST is not an action on data: signing in and out (a replayed sign-in would not sign in).
_NOT_ACTIONS = frozenset({"/login", "/logout"})


class IdempotencyRecord(Model):
    """The first result of an action named by a key (per principal and route)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("principal", "route", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    principal: Mapped[str] = mapped_column(String(40))  # "user:12", "device-org:3"
    route: Mapped[str] = mapped_column(String(300))  # "POST /api/v1/manifests"
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the request as sent
    status: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(120), default="")
    location: Mapped[str] = mapped_column(String(500), default="")
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


@dataclass(frozen=True)
class Pending:
    principal: str
    route: str
    key: str
    request_hash: str
    page: bool


# ---------------------------------------------------------------- the request's key


def _principal_key() -> str | None:
    from app.common.auth import current_principal
    from app.common.errors import DomainError

    try:
        principal = current_principal(optional=True)
    except DomainError:
        return None  # a bad bearer token: the request guards answer 401
    if principal is None:
        return None
    if principal.user is not None:
        return f"user:{principal.user.id}"
    if principal.device_org is not None:
        return f"device-org:{principal.device_org.id}"
    return None


def _request_hash(page: bool) -> str:
    digest = hashlib.sha256(request.query_string)
    if page:
        # What the person typed, without the tokens (as app.web.form_tokens.user_fields; common
        # does not import web).
        fields = sorted((k, v) for k, v in request.form.items() if v.strip() and k not in TOKEN_FIELDS)
        digest.update(json.dumps(fields, ensure_ascii=False).encode())
        for name, upload in sorted(request.files.items()):
            digest.update(name.encode())
            digest.update(hashlib.sha256(upload.stream.read()).digest())
            upload.stream.seek(0)
    else:
        digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _pending() -> Pending | None | Response:
    """The key this write carries (None without one), or the answer to a malformed key."""
    if request.method not in _WRITE_METHODS or request.path in _NOT_ACTIONS:
        return None
    page = not request.path.startswith("/api/")
    raw = request.form.get(FORM_FIELD) if page else request.headers.get(HEADER)
    if raw is None or (page and not raw.strip()):
        return None
    if not _KEY.fullmatch(raw):
        from app.common.errors import problem

        return problem(
            400,
            "Bad Request",
            f"{HEADER} must be 1 to 200 visible ASCII characters",
            {HEADER if not page else FORM_FIELD: ["1 to 200 visible ASCII characters"]},
        )
    principal = _principal_key()
    if principal is None:
        return None  # anonymous: nothing to scope the key by (and the guards refuse API writes)
    return Pending(principal, f"{request.method} {request.path}"[:300], raw, _request_hash(page), page)


def _stored(session: Session, pending: Pending, now: datetime) -> IdempotencyRecord | None:
    return session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.principal == pending.principal,
            IdempotencyRecord.route == pending.route,
            IdempotencyRecord.key == pending.key,
            IdempotencyRecord.expires_at > now,
        )
    )


def _replay(record: IdempotencyRecord, pending: Pending) -> Response:
    if record.request_hash != pending.request_hash:
        return _reused(pending)
    if pending.page:
        from flask import flash
        from flask_babel import gettext as _

        flash(_("这张表单已经提交过，没有重复保存。"))
    response = current_app.response_class(record.body, status=record.status, content_type=record.content_type or None)
    if record.location:
        response.headers["Location"] = record.location
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _reused(pending: Pending) -> Response:
    from app.common.errors import problem

    if pending.page:  # a page form: a page, whatever the Accept header
        from flask import render_template
        from flask_babel import gettext as _

        html = render_template(
            "error.html",
            status=422,
            title=_("表单已提交过"),
            detail=_("这张表单已经提交过不同的内容。请重新打开页面后再填写。"),
        )
        return current_app.response_class(html, status=422, content_type="text/html; charset=utf-8")
    return problem(
        422,
        "Invalid input",
        f"this {HEADER} was already used for a different request",
        {HEADER: ["already used with a different body; use a new key for a new action"]},
        code="idempotency_key_reused",
    )


def before_write() -> Response | None:
    """Before the view: answer a key already used (its first result), else remember the key."""
    pending = _pending()
    if pending is None or isinstance(pending, Response):
        return pending
    from app.extensions import db

    record = _stored(db.session(), pending, utcnow())
    if record is not None:
        return _replay(record, pending)
    request.environ[_PENDING] = pending  # the request's own (g may outlive it: a test's app context)
    return None


# ---------------------------------------------------------------- at the boundary


def remember(session: Session, response: Response) -> None:
    """Store the result of a write about to be committed (status < 400) under its key."""
    pending: Pending | None = request.environ.get(_PENDING)
    if pending is None or response.is_streamed:
        return
    body = response.get_data()
    if len(body) > MAX_STORED_BODY:
        return
    now = utcnow()
    # An expired record of the same key would collide with the unique constraint.
    session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.principal == pending.principal,
            IdempotencyRecord.route == pending.route,
            IdempotencyRecord.key == pending.key,
            IdempotencyRecord.expires_at <= now,
        )
    )
    hours = current_app.config.get("IDEMPOTENCY_TTL_HOURS", DEFAULT_TTL_HOURS)
    session.add(
        IdempotencyRecord(
            principal=pending.principal,
            route=pending.route,
            key=pending.key,
            request_hash=pending.request_hash,
            status=response.status_code,
            content_type=(response.content_type or "")[:120],
            location=(response.headers.get("Location") or "")[:500],
            body=body,
            created_at=now,
            expires_at=now + timedelta(hours=float(hours)),
        )
    )


def answer_after_conflict(session: Session) -> Response | None:
    """The commit failed on a unique constraint: if an identical request committed the same key
    meanwhile, answer its result (this request's own writes were rolled back whole)."""
    pending: Pending | None = request.environ.get(_PENDING)
    if pending is None:
        return None
    record = _stored(session, pending, utcnow())
    response = _replay(record, pending) if record is not None else None
    session.rollback()  # the look-up's transaction; nothing of this request is kept
    return response


def forget() -> None:
    """This write's result is not the action's (a refusal answered with a redirect): no key kept."""
    request.environ.pop(_PENDING, None)


# ---------------------------------------------------------------- OpenAPI


def document(api) -> None:
    """Document the header on every API write (call after the blueprints are registered)."""
    api.spec.components.parameter(
        "IdempotencyKey",
        "header",
        {
            "name": HEADER,
            "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[\\x21-\\x7e]+$"},
            "description": (
                "Names this action (e.g. a UUID per tap of 'save'). The first successful result is stored "
                f"for {DEFAULT_TTL_HOURS} h per user and route and answered again, with "
                f"`{REPLAYED_HEADER}: true`, for the same key and body; the same key with another body is "
                "422 `idempotency_key_reused`. Failed requests (>= 400) are not stored and may be retried."
            ),
        },
    )
    ref = {"$ref": "#/components/parameters/IdempotencyKey"}
    for path, operations in api.spec._paths.items():
        if path in ("/api/v1/auth/token",):
            continue
        for method, operation in operations.items():
            if method.upper() in _WRITE_METHODS and isinstance(operation, dict):
                operation.setdefault("parameters", []).append(ref)


# ---------------------------------------------------------------- pruning


def prune(session: Session, now: datetime) -> int:
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now))
    return int(getattr(result, "rowcount", 0) or 0)


def init_app(app: Flask) -> None:
    """Install the look-up after every other check of a request (CSRF, the API's bearer token),
    and the ``idempotency prune`` command."""
    app.before_request(before_write)

    @app.cli.group("idempotency")
    def group() -> None:
        """Idempotency keys of writes (one action, one record)."""

    @group.command("prune")
    def prune_command() -> None:
        """Delete the keys whose time has passed (IDEMPOTENCY_TTL_HOURS after their action)."""
        from app.common.tx import cli_transaction

        with cli_transaction() as session:
            count = prune(session, utcnow())
        click.echo(f"pruned {count} expired idempotency keys")
