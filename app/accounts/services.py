"""Accounts: organisations, parks, users, tokens, and who may see what.

No Flask here: callers pass the session and the acting :class:`Principal`.

Over ~400 lines because organisations, users and tokens share the jurisdiction rules at the
bottom; splitting them would scatter who-may-see-what over several files.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import false, or_, select, true
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.accounts.models import (
    ORG_ROLES,
    USER_ROLES,
    ApiToken,
    County,
    Organization,
    Park,
    User,
)
from app.accounts.passwords import password_problems
from app.accounts.uscc import normalise_uscc, uscc_error
from app.common.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from app.common.timeutil import utcnow
from app.common.wiring import wiring_of


def _hash_password(session: Session, password: str) -> str:
    """With the app's PASSWORD_HASH_METHOD (werkzeug's scrypt unless configured: the test suite
    lowers the cost through its app config), read from the session's wiring."""
    return generate_password_hash(password, method=wiring_of(session).password_hash_method)


@lru_cache(maxsize=8)
def _dummy_hash(method: str) -> str:
    """A hash made with ``method`` that no password matches: an unknown username is refused
    after one verification of the same cost as a known one's (no timing tells which names exist)."""
    return generate_password_hash(secrets.token_urlsafe(16), method=method)


def check_password_policy(password: str, username: str | None = None, field: str = "password") -> None:
    """:mod:`app.accounts.passwords`, as a 422 naming ``field``."""
    problems = password_problems(password or "", username)
    if problems:
        raise InvalidInput(f"{field}: " + "; ".join(problems), errors={field: problems})


DEVICE_TOKEN_DAYS = 365


TOKEN_PREFIX_USER = "txu_"
TOKEN_PREFIX_DEVICE = "txd_"


@dataclass(frozen=True)
class Principal:
    """Who is acting: a user (through a session or bearer token) or a sensor gateway."""

    user: User | None = None
    device_org: Organization | None = None
    token_kind: str = "user"

    @property
    def organization(self) -> Organization | None:
        if self.device_org is not None:
            return self.device_org
        return self.user.organization if self.user else None

    @property
    def is_operator(self) -> bool:
        return bool(self.user and self.user.is_operator)

    @property
    def is_device(self) -> bool:
        return self.token_kind == "device"

    def has_role(self, role: str) -> bool:
        org = self.organization
        return bool(org and org.has_role(role))

    @property
    def label(self) -> str:
        if self.user:
            return self.user.username
        return f"device@{self.device_org.name}" if self.device_org else "anonymous"


# ---------------------------------------------------------------- passwords and tokens


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(session: Session, username: str, password: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    # One verification whether or not the user exists (against a dummy hash of the configured
    # method when not), so that timing does not reveal which usernames exist.
    stored = user.password_hash if user and user.password_hash else _dummy_hash(wiring_of(session).password_hash_method)
    if not check_password_hash(stored, password) or user is None or not user.active:
        raise Unauthorized("用户名或密码错误 (wrong username or password)")
    return user


def _new_token(session: Session, prefix: str, **columns: Any) -> tuple[str, ApiToken]:
    """A fresh random token and its row: the token is returned once, only its hash is kept."""
    token = prefix + secrets.token_urlsafe(32)
    row = ApiToken(token_hash=hash_token(token), **columns)
    session.add(row)
    session.flush()
    return token, row


def issue_user_token(session: Session, user: User, ttl_hours: int, now: datetime | None = None) -> tuple[str, ApiToken]:
    now = now or utcnow()
    return _new_token(
        session,
        TOKEN_PREFIX_USER,
        kind="user",
        user=user,
        organization_id=user.organization_id,
        created_at=now,
        expires_at=now + timedelta(hours=ttl_hours),
        name="api",
    )


def _may_manage_devices(actor: Principal, organization_id: int | None) -> bool:
    return actor.is_operator or bool(
        actor.organization
        and actor.organization.id == organization_id
        and not actor.is_device
        and actor.user
        and actor.user.role == "admin"
    )


def issue_device_token(
    session: Session,
    actor: Principal,
    organization_id: int,
    name: str,
    days: int | None = None,
    now: datetime | None = None,
) -> tuple[str, ApiToken]:
    """A gateway token (``days`` long, :data:`DEVICE_TOKEN_DAYS` by default): may only ingest
    readings for its organisation's boxes. The token itself is returned here, once; only its hash is kept."""
    if not _may_manage_devices(actor, organization_id):
        raise Forbidden("只有平台运维或本单位管理员可以创建设备令牌 (only operators or the organisation's admins)")
    org = session.get(Organization, organization_id)
    if org is None:
        raise InvalidInput.field("organization_id", "unknown organisation")
    now = now or utcnow()
    return _new_token(
        session,
        TOKEN_PREFIX_DEVICE,
        kind="device",
        organization=org,
        name=name or "gateway",
        created_at=now,
        expires_at=now + timedelta(days=days or DEVICE_TOKEN_DAYS),
        issued_by_user_id=actor.user.id if actor.user else None,
    )


def list_device_tokens(session: Session, actor: Principal, organization_id: int | None = None):
    """The device tokens an actor manages: an organisation's admin its own organisation's, operators all."""
    query = select(ApiToken).where(ApiToken.kind == "device").order_by(ApiToken.id)
    if organization_id is not None:
        query = query.where(ApiToken.organization_id == organization_id)
    if actor.is_operator:
        return query
    if not _may_manage_devices(actor, actor.organization.id if actor.organization else None):
        raise Forbidden("只有平台运维或本单位管理员可以查看设备令牌 (only operators or the organisation's admins)")
    assert actor.organization is not None  # _may_manage_devices: an admin of an organisation
    return query.where(ApiToken.organization_id == actor.organization.id)


def revoke_device_token(session: Session, actor: Principal, token_id: int, now: datetime | None = None) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if (
        row is None
        or row.kind != "device"
        or not (actor.is_operator or _may_manage_devices(actor, row.organization_id))
    ):
        raise NotFound(f"device token {token_id} not found")
    if row.revoked_at is None:
        row.revoked_at = now or utcnow()
        session.flush()
    return row


_TOUCH_SECONDS = 60


def touch_token(connection, token_hash: str, now: datetime) -> None:
    """Record a token's use: at most once a minute (callers call it when their cache misses, and
    the condition keeps it to one write a minute across processes)."""
    from sqlalchemy import update

    connection.execute(
        update(ApiToken)
        .where(
            ApiToken.token_hash == token_hash,
            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now - timedelta(seconds=_TOUCH_SECONDS)),
        )
        .values(last_used_at=now)
    )


def principal_for_token(session: Session, token: str, now: datetime | None = None) -> Principal:
    now = now or utcnow()
    # populate_existing: authorisation must see the stored state (a user deactivated a moment
    # ago), never attributes an earlier load left in the session.
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == hash_token(token)).execution_options(populate_existing=True)
    )
    if row is None or row.revoked_at is not None or (row.expires_at and row.expires_at <= now):
        raise Unauthorized("令牌无效或已过期 (invalid or expired token)")
    if row.kind == "device":
        return Principal(device_org=row.organization, token_kind="device")
    if row.user is None or not row.user.active:
        raise Unauthorized("令牌无效或已过期 (invalid or expired token)")
    return Principal(user=row.user)


def revoke_user_tokens(session: Session, user: User, now: datetime | None = None) -> None:
    """Every bearer token of ``user`` stops working (a new password)."""
    from sqlalchemy import update

    session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.kind == "user", ApiToken.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    )


def revoke_token(session: Session, token: str) -> None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()


# ---------------------------------------------------------------- organisations, parks


def _check_roles(roles: Iterable[str]) -> list[str]:
    roles = list(roles)
    unknown = [r for r in roles if r not in ORG_ROLES]
    if unknown:
        raise InvalidInput.field("roles", f"unknown role(s) {', '.join(unknown)}; allowed: {', '.join(ORG_ROLES)}")
    if not roles:
        raise InvalidInput.field("roles", "at least one role is required")
    return roles


def require_operator(actor: Principal) -> None:
    if not actor.is_operator:
        raise Forbidden("需要平台运维权限 (platform operators only)")


def create_organization(session: Session, actor: Principal, data: dict[str, Any]) -> Organization:
    require_operator(actor)
    errors: dict[str, list[str]] = {}
    uscc = data.get("uscc")
    if uscc:
        uscc = normalise_uscc(uscc)
        problem = uscc_error(uscc)
        if problem:
            errors["uscc"] = [problem]
        elif session.scalar(select(Organization.id).where(Organization.uscc == uscc)):
            raise Conflict(
                "该统一社会信用代码已登记 (an organisation with this USCC exists)",
                errors={"uscc": ["already registered"]},
            )
    county_code = data.get("county_code")
    if county_code and session.get(County, county_code) is None:
        errors["county_code"] = [f"unknown county code {county_code}"]
    park_id = data.get("park_id")
    park = session.get(Park, park_id) if park_id else None
    if park_id and park is None:
        errors["park_id"] = [f"unknown park {park_id}"]
    try:
        roles = _check_roles(data.get("roles") or [])
    except InvalidInput as exc:
        errors.update(exc.errors)
    if errors:
        raise InvalidInput("The organisation has invalid fields.", errors=errors)
    if park and not county_code:
        county_code = park.county_code
    if park and county_code != park.county_code:
        raise InvalidInput.field("park_id", "the park is in another county")
    org = Organization(
        name=data["name"].strip(),
        uscc=uscc,
        county_code=county_code,
        park_id=park_id,
        licences=data.get("licences") or [],
        contact_phone=data.get("contact_phone"),
        address=data.get("address"),
    )
    org.roles = roles
    session.add(org)
    session.flush()
    return org


def list_organizations(
    session: Session,
    actor: Principal,
    role: str | None = None,
    county_code: str | None = None,
    park_id: int | None = None,
):
    """The organisation directory (names, USCC, roles and licences are public registry facts:
    every signed-in party needs them to choose carriers and receivers)."""
    from app.accounts.models import OrganizationRole

    query = select(Organization).order_by(Organization.id)
    if role:
        query = query.where(
            Organization.id.in_(select(OrganizationRole.organization_id).where(OrganizationRole.role == role))
        )
    if county_code:
        query = query.where(Organization.county_code == county_code)
    if park_id:
        query = query.where(Organization.park_id == park_id)
    return query


def get_organization(session: Session, actor: Principal, org_id: int) -> Organization:
    org = session.get(Organization, org_id)
    if org is None:
        raise NotFound(f"organisation {org_id} not found")
    return org


def create_park(session: Session, actor: Principal, data: dict[str, Any]) -> Park:
    require_operator(actor)
    if session.get(County, data["county_code"]) is None:
        raise InvalidInput.field("county_code", f"unknown county code {data['county_code']}")
    if session.scalar(select(Park.id).where(Park.name == data["name"].strip())):
        raise Conflict("同名园区已存在 (a park with this name exists)", errors={"name": ["already exists"]})
    park = Park(name=data["name"].strip(), county_code=data["county_code"])
    session.add(park)
    session.flush()
    return park


# ---------------------------------------------------------------- users


def create_user(session: Session, actor: Principal, data: dict[str, Any]) -> User:
    org_id = data.get("organization_id")
    is_operator = bool(data.get("is_operator"))
    if actor.is_operator or (
        actor.user
        and actor.user.role == "admin"
        and actor.organization
        and org_id == actor.organization.id
        and not is_operator
    ):
        pass
    else:
        raise Forbidden("只有平台运维或本单位管理员可以创建用户 (only operators or the organisation's admins)")
    errors: dict[str, list[str]] = {}
    if org_id is not None and session.get(Organization, org_id) is None:
        errors["organization_id"] = [f"unknown organisation {org_id}"]
    if org_id is None and not is_operator:
        errors["organization_id"] = ["required unless the user is a platform operator"]
    role = data.get("role") or "staff"
    if role not in USER_ROLES:
        errors["role"] = [f"one of {', '.join(USER_ROLES)}"]
    problems = password_problems(data.get("password") or "", data.get("username"))
    if problems:
        errors["password"] = problems
    if errors:
        raise InvalidInput("The user has invalid fields.", errors=errors)
    if session.scalar(select(User.id).where(User.username == data["username"])):
        raise Conflict("用户名已存在 (username taken)", errors={"username": ["already taken"]})
    user = User(
        username=data["username"],
        display_name=data.get("display_name") or data["username"],
        password_hash=_hash_password(session, data["password"]),
        organization_id=org_id,
        role=role,
        is_operator=is_operator,
    )
    session.add(user)
    session.flush()
    return user


def list_users(session: Session, actor: Principal):
    query = select(User).order_by(User.id)
    if actor.is_operator:
        return query
    if actor.user and actor.user.role == "admin" and actor.organization:
        return query.where(User.organization_id == actor.organization.id)
    return query.where(User.id == (actor.user.id if actor.user else -1))


def set_password(session: Session, user: User, password: str) -> None:
    """A new password (checked against the policy): every session signed in before ends."""
    check_password_policy(password, user.username)
    user.password_hash = _hash_password(session, password)
    user.end_sessions()


def change_password(session: Session, actor: Principal, current: str, new: str) -> User:
    """A user's own change: the current password first (a stolen session alone cannot change it)."""
    user = actor.user
    if user is None or actor.is_device:
        raise Forbidden("设备令牌不能修改密码 (device tokens have no password)")
    if not check_password_hash(user.password_hash, current or ""):
        raise InvalidInput.field("current_password", "wrong password")
    check_password_policy(new, user.username, field="new_password")
    set_password(session, user, new)
    session.flush()
    return user


# ---------------------------------------------------------------- jurisdiction


def enterprise_scope(actor: Principal):
    """A SQL condition on ``Organization`` rows (as enterprises) that ``actor`` may see.

    Regulators see their county (or the whole city when their organisation has no county),
    park administrations their park, an enterprise itself. Carbon services see the boxes they
    serve, which :func:`app.boxes.services.box_scope` adds on top.
    """
    if actor.is_operator:
        return true()
    org = actor.organization
    if org is None or actor.is_device:  # a gateway's token only ingests readings
        return false()
    conditions = [Organization.id == org.id]
    if org.has_role("regulator"):
        conditions.append(true() if org.county_code is None else Organization.county_code == org.county_code)
    if org.has_role("park_admin") and org.park_id is not None:
        conditions.append(Organization.park_id == org.park_id)
    return or_(*conditions)
