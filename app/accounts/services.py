"""Accounts: organisations, parks, users, tokens, and who may see what.

No Flask here: callers pass the session and the acting :class:`Principal`.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

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
from app.accounts.uscc import normalise_uscc, uscc_error
from app.common.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from app.common.timeutil import utcnow
from app.common.wiring import wiring_of


def _hash_password(session: Session, password: str) -> str:
    """With the app's PASSWORD_HASH_METHOD (werkzeug's scrypt unless configured: the test suite
    lowers the cost through its app config), read from the session's wiring."""
    return generate_password_hash(password, method=wiring_of(session).password_hash_method)


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
    # Hash anyway when the user is unknown so that timing does not reveal which usernames exist.
    stored = user.password_hash if user else _hash_password(session, "x")
    if not check_password_hash(stored, password) or user is None or not user.active:
        raise Unauthorized("用户名或密码错误 (wrong username or password)")
    return user


def issue_user_token(session: Session, user: User, ttl_hours: int, now: datetime | None = None) -> tuple[str, ApiToken]:
    now = now or utcnow()
    token = TOKEN_PREFIX_USER + secrets.token_urlsafe(32)
    row = ApiToken(
        token_hash=hash_token(token), kind="user", user=user, organization_id=user.organization_id,
        created_at=now, expires_at=now + timedelta(hours=ttl_hours), name="api",
    )
    session.add(row)
    session.flush()
    return token, row


def issue_device_token(session: Session, actor: Principal, organization_id: int, name: str) -> tuple[str, ApiToken]:
    """A long-lived gateway token: may only ingest readings for its organisation's boxes."""
    if not (actor.is_operator or (actor.organization and actor.organization.id == organization_id
                                  and actor.user and actor.user.role == "admin")):
        raise Forbidden("只有平台运维或本单位管理员可以创建设备令牌 (only operators or the organisation's admins)")
    org = session.get(Organization, organization_id)
    if org is None:
        raise InvalidInput.field("organization_id", "unknown organisation")
    token = TOKEN_PREFIX_DEVICE + secrets.token_urlsafe(32)
    row = ApiToken(token_hash=hash_token(token), kind="device", organization=org, name=name or "gateway")
    session.add(row)
    session.flush()
    return token, row


def principal_for_token(session: Session, token: str, now: datetime | None = None) -> Principal:
    now = now or utcnow()
    # populate_existing: authorisation must see the stored state (a user deactivated a moment
    # ago), never attributes an earlier load left in the session.
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token))
                         .execution_options(populate_existing=True))
    if row is None or row.revoked_at is not None or (row.expires_at and row.expires_at <= now):
        raise Unauthorized("令牌无效或已过期 (invalid or expired token)")
    if row.kind == "device":
        return Principal(device_org=row.organization, token_kind="device")
    if row.user is None or not row.user.active:
        raise Unauthorized("令牌无效或已过期 (invalid or expired token)")
    return Principal(user=row.user)


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
            raise Conflict("该统一社会信用代码已登记 (an organisation with this USCC exists)",
                           errors={"uscc": ["already registered"]})
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
        name=data["name"].strip(), uscc=uscc, county_code=county_code, park_id=park_id,
        licences=data.get("licences") or [], contact_phone=data.get("contact_phone"),
        address=data.get("address"),
    )
    org.roles = roles
    session.add(org)
    session.flush()
    return org


def list_organizations(session: Session, actor: Principal, role: str | None = None,
                       county_code: str | None = None, park_id: int | None = None):
    """The organisation directory (names, USCC, roles and licences are public registry facts:
    every signed-in party needs them to choose carriers and receivers)."""
    from app.accounts.models import OrganizationRole

    query = select(Organization).order_by(Organization.id)
    if role:
        query = query.where(Organization.id.in_(select(OrganizationRole.organization_id).where(OrganizationRole.role == role)))
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
    if actor.is_operator:
        pass
    elif actor.user and actor.user.role == "admin" and actor.organization and org_id == actor.organization.id and not is_operator:
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
    if len(data.get("password") or "") < 8:
        errors["password"] = ["at least 8 characters"]
    if session.scalar(select(User.id).where(User.username == data["username"])):
        raise Conflict("用户名已存在 (username taken)", errors={"username": ["already taken"]})
    if errors:
        raise InvalidInput("The user has invalid fields.", errors=errors)
    user = User(
        username=data["username"], display_name=data.get("display_name") or data["username"],
        password_hash=_hash_password(session, data["password"]), organization_id=org_id,
        role=role, is_operator=is_operator,
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
    user.password_hash = _hash_password(session, password)


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
