"""Who is calling: a bearer token (API, gateways) or the signed-in session (pages)."""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from typing import Literal, overload

from flask import current_app, request
from flask_login import current_user

from app.accounts.models import Organization, User
from app.accounts.services import Principal, hash_token, principal_for_token, touch_token
from app.common.errors import Forbidden, Unauthorized
from app.common.fastread import engine_key, reader
from app.common.timeutil import from_db, utcnow
from app.extensions import db

_UNSET = object()


# Every API request names its token, and the full lookup (token, user, organisation, roles) is
# the dearest part of a cheap request. Who a token stands for is therefore remembered for
# TOKEN_CACHE_SECONDS in this process, but only after a one-row check that the token is still
# valid and its user still active: revocation and deactivation take effect at once.
#
# The cache holds plain values only (ids and the token's kind), keyed by the database and the
# token's hash, never ORM objects: an object outlives its request's session, and once detached
# (its session closed after a rolled-back request) a lazy load fails. Each request binds the
# principal to its own session by primary key (the identity map: no query when the request has
# loaded the row already).
TOKEN_CACHE_SECONDS = 60
TOKEN_CACHE_MAX = 10_000


@dataclass(frozen=True)
class _CachedToken:
    expires: float  # time.monotonic()
    token_kind: str
    user_id: int | None
    device_org_id: int | None


_token_cache: dict[tuple[str, str], _CachedToken] = {}
_token_cache_lock = threading.Lock()
_TOKEN_STILL_VALID = (
    "SELECT t.revoked_at, t.expires_at, u.active FROM api_tokens t "
    "LEFT JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?"
)


def _still_valid(key: str, is_device: bool) -> bool:
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
    return is_device or bool(active)


def _bind(session, hit: _CachedToken) -> Principal | None:
    """The cached principal, with this request's objects (None if a row has gone)."""
    if hit.token_kind == "device":
        org = session.get(Organization, hit.device_org_id) if hit.device_org_id is not None else None
        return Principal(device_org=org, token_kind="device") if org is not None else None
    user = session.get(User, hit.user_id) if hit.user_id is not None else None
    return Principal(user=user) if user is not None else None


def _principal_for_token(token: str) -> Principal:
    token_hash = hash_token(token)
    key = (engine_key(db.engine), token_hash)
    hit = _token_cache.get(key)
    now = time.monotonic()
    if hit is not None and hit.expires > now and _still_valid(token_hash, hit.token_kind == "device"):
        principal = _bind(db.session(), hit)
        if principal is not None:
            return principal
    principal = principal_for_token(db.session(), token)
    _record_use(token_hash)
    entry = _CachedToken(
        expires=now + TOKEN_CACHE_SECONDS,
        token_kind=principal.token_kind,
        user_id=principal.user.id if principal.user is not None else None,
        device_org_id=principal.device_org.id if principal.device_org is not None else None,
    )
    with _token_cache_lock:
        if len(_token_cache) > TOKEN_CACHE_MAX:
            _token_cache.clear()
        _token_cache[key] = entry
    return principal


def _record_use(token_hash: str) -> None:
    """The token's last use, on a cache miss only (so at most about once a minute per process;
    the statement itself skips a use recorded less than a minute ago). Its own short transaction:
    a read never commits, and a refused write must still show the token was used."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with db.engine.begin() as connection:
            touch_token(connection, token_hash, utcnow())
    except SQLAlchemyError as exc:  # bookkeeping only: never fails the request
        current_app.logger.warning("could not record a token's use: %s", exc)


def _lean_token_statement():
    from sqlalchemy import bindparam, exists, select

    from app.accounts.models import ApiToken, OrganizationRole

    def has(role: str):
        return exists().where(OrganizationRole.organization_id == Organization.id, OrganizationRole.role == role)

    return (
        select(
            ApiToken.kind,
            ApiToken.revoked_at,
            ApiToken.expires_at,
            User.id,
            User.active,
            User.is_operator,
            Organization.id.label("org_id"),
            Organization.county_code,
            Organization.park_id,
            has("regulator").label("regulator"),
            has("park_admin").label("park_admin"),
        )
        .join(User, User.id == ApiToken.user_id)
        .outerjoin(Organization, Organization.id == User.organization_id)
        .where(ApiToken.token_hash == bindparam("token_hash"))
    )


_LEAN_TOKEN = _lean_token_statement()
#: The same check as a subquery (parameter ``token_hash``), for a read that takes its caller's
#: token in its own statement (app.boxes.lean: the box API's one statement a request).
LEAN_CALLER = _LEAN_TOKEN.subquery("caller")


def known_user_token() -> str | None:
    """The hash of the caller's bearer token when it is a person's token this process has
    already accepted (so its use is recorded, see :func:`_record_use`); else None (take the
    ordinary path: ``require_user``, which also answers every refusal)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    token_hash = hash_token(token)
    hit = _token_cache.get((engine_key(db.engine), token_hash))
    if hit is None or hit.expires <= time.monotonic() or hit.token_kind != "user":
        return None
    return token_hash


class _ViewerOrganization:
    """What :func:`app.boxes.services.can_see` reads of an organisation: plain values."""

    __slots__ = ("county_code", "id", "park_id", "roles")

    def __init__(self, id: int, county_code: str | None, park_id: int | None, roles: frozenset[str]) -> None:
        self.id, self.county_code, self.park_id, self.roles = id, county_code, park_id, roles

    def has_role(self, role: str) -> bool:
        return role in self.roles


class Viewer:
    """The caller of a read that only decides what it may see: the attributes of a
    :class:`Principal` that ``can_see`` reads (``is_operator``, ``is_device``, ``organization``
    with its id, county, park and regulator/park_admin roles), as plain values. Building the
    ORM objects (a transient User and Organization with role rows) cost more than the rest of
    the check. Never for a write, never put in a session."""

    __slots__ = ("is_operator", "organization")
    is_device = False

    def __init__(self, is_operator: bool, organization: _ViewerOrganization | None) -> None:
        self.is_operator, self.organization = is_operator, organization

    def has_role(self, role: str) -> bool:
        return self.organization is not None and self.organization.has_role(role)


def visibility_from_row(row) -> Viewer | None:
    """The viewer of a :data:`LEAN_CALLER` / ``_LEAN_TOKEN`` row (attributes ``kind``,
    ``revoked_at``, …), or None when the token no longer stands for an active person."""
    if row is None or row.kind != "user" or row.revoked_at is not None or not row.active:
        return None
    if row.expires_at is not None and row.expires_at <= utcnow():
        return None
    org = None
    if row.org_id is not None:
        roles = frozenset(r for r in ("regulator", "park_admin") if getattr(row, r))
        org = _ViewerOrganization(row.org_id, row.county_code, row.park_id, roles)
    return Viewer(bool(row.is_operator), org)


def visibility_principal() -> Viewer | None:
    """The caller of a read that only decides what it may see (``can_see``): a person's bearer
    token this process has already accepted (:func:`known_user_token`), checked in one statement
    against the stored token, user and organisation (revocation, deactivation and a change of
    organisation or role take effect at once). The principal's objects are transient, holding
    only what ``can_see`` reads (the organisation's regulator and park_admin roles): never for a
    write, never put in a session. None: take the ordinary path (``require_user``), which also
    answers every refusal."""
    from app.common.fastread import core_reader

    token_hash = known_user_token()
    if token_hash is None:
        return None
    try:
        row = core_reader.first(db.engine, _LEAN_TOKEN, {"token_hash": token_hash})
    except LookupError:
        return None
    return visibility_from_row(row)


def load_user(user_id: str) -> User | None:
    """Flask-Login's user loader: the cookie's id is ``"<user id>:<session token>"``
    (:meth:`User.get_id`); a session token that has changed since (sign-out, a new password)
    opens nothing, neither the session cookie nor the remember cookie."""
    uid, sep, session_token = (user_id or "").partition(":")
    if not sep or not uid.isdigit() or not session_token:
        return None
    user = db.session.get(User, int(uid))
    if user is None or not hmac.compare_digest((user.session_token or "").encode(), session_token.encode()):
        return None
    return user


def forget_token(token: str) -> None:
    with _token_cache_lock:
        for key in [k for k in _token_cache if k[1] == hash_token(token)]:
            _token_cache.pop(key, None)


@overload
def current_principal(optional: Literal[False] = False) -> Principal: ...
@overload
def current_principal(optional: bool) -> Principal | None: ...
def current_principal(optional: bool = False) -> Principal | None:
    """Who is calling; None only when ``optional`` (otherwise no caller is Unauthorized, 401)."""
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
    elif (
        current_user
        and current_user.is_authenticated
        and (request.method in ("GET", "HEAD", "OPTIONS") or not request.path.startswith("/api/"))
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
