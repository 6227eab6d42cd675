from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum
from typing import Any

from flask_login import UserMixin
from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.common.columns import state_type
from app.common.timeutil import utcnow
from app.common.types import UTCDateTime
from app.extensions import Model


class OrgRole(StrEnum):
    """What an organisation does in the loop (one organisation may have several roles)."""

    GENERATOR = "generator"  # an enterprise whose boxes produce waste carbon
    CARRIER = "carrier"
    RECEIVER = "receiver"
    REGENERATOR = "regenerator"
    SUPPLIER = "supplier"
    REGULATOR = "regulator"
    PARK_ADMIN = "park_admin"


class UserRole(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"


class TokenKind(StrEnum):
    USER = "user"
    DEVICE = "device"


ORG_ROLES = tuple(OrgRole)
USER_ROLES = tuple(UserRole)


class County(Model):
    """A county-level division (GB/T 2260), e.g. 331023 天台县."""

    __tablename__ = "counties"
    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    name_en: Mapped[str] = mapped_column(String(80), default="")


class Park(Model):
    __tablename__ = "parks"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    county_code: Mapped[str] = mapped_column(ForeignKey("counties.code"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    county: Mapped[County] = relationship(lazy="joined")


class OrganizationRole(Model):
    __tablename__ = "organization_roles"
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[OrgRole] = mapped_column(state_type(OrgRole, "role", 20), primary_key=True, index=True)


class Organization(Model):
    """A legal entity taking part in the loop: enterprise, carbon service, carrier, regulator…"""

    __tablename__ = "organizations"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    uscc: Mapped[str | None] = mapped_column(String(18), unique=True)
    county_code: Mapped[str | None] = mapped_column(ForeignKey("counties.code"), index=True)
    park_id: Mapped[int | None] = mapped_column(ForeignKey("parks.id"), index=True)
    # Hazardous-waste operating licences, transport permits…: [{"number", "kind", "waste_codes", "valid_until"}]
    licences: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    role_rows: Mapped[list[OrganizationRole]] = relationship(cascade="all, delete-orphan", lazy="selectin")
    county: Mapped[County | None] = relationship(lazy="joined")
    park: Mapped[Park | None] = relationship(lazy="joined")

    @property
    def roles(self) -> list[str]:
        return sorted(r.role for r in self.role_rows)

    @roles.setter
    def roles(self, values: list[str]) -> None:
        self.role_rows = [OrganizationRole(role=v) for v in sorted(set(values))]

    def has_role(self, role: str) -> bool:
        return any(r.role == role for r in self.role_rows)


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


class User(UserMixin, Model):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    role: Mapped[UserRole] = mapped_column(state_type(UserRole, "role", 20), default=UserRole.STAFF)
    is_operator: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The user's session generation: part of the id in the session and remember cookies
    # (:meth:`get_id`), so a new one (sign-out, a new password) ends every cookie issued before.
    session_token: Mapped[str] = mapped_column(String(64), default=new_session_token)

    organization: Mapped[Organization | None] = relationship(lazy="joined")

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.active

    def get_id(self) -> str:  # Flask-Login: what the session and remember cookies hold
        if not self.session_token:
            self.session_token = new_session_token()
        return f"{self.id}:{self.session_token}"

    def end_sessions(self) -> None:
        """Every session and remember cookie of this user stops working (the user loader refuses them)."""
        self.session_token = new_session_token()


class ApiToken(Model):
    """Bearer tokens: a user's session token (kind ``user``) or a gateway's device token
    (kind ``device``, limited to its organisation's boxes and to ingest). Only a SHA-256 of the
    token is stored; the token itself is shown once."""

    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("token_hash"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[TokenKind] = mapped_column(state_type(TokenKind, "kind", 10), default=TokenKind.USER)
    name: Mapped[str] = mapped_column(String(120), default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    use_count: Mapped[int] = mapped_column(Integer, default=0)
    # Who issued the token (device tokens: the operator or organisation admin who made it).
    issued_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    user: Mapped[User | None] = relationship(lazy="joined", foreign_keys=[user_id])
    organization: Mapped[Organization | None] = relationship(lazy="joined")
