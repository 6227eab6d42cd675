"""The areas statistics are read for (a park, a county, the city) and who may read each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, true
from sqlalchemy.orm import Session

from app.accounts.models import County, Organization, Park
from app.accounts.services import Principal
from app.common.errors import Forbidden, NotFound

MAX_ID = 2**31 - 1  # the integer primary keys (PostgreSQL INTEGER)
COUNTY_CODE_RE = re.compile(r"^\d{6}$", re.ASCII)


@dataclass(frozen=True)
class Scope:
    kind: str  # park | county | city
    park_id: int | None = None
    county_code: str | None = None
    name: str = "台州市"
    name_en: str = "Taizhou"  # for the English page (a park has no English name: its Chinese one)

    @property
    def key(self) -> str:
        if self.kind == "park":
            return f"park:{self.park_id}"
        if self.kind == "county":
            return f"county:{self.county_code}"
        return "city"

    def enterprises(self, column):
        """A SQL condition: ``column`` (an organisation id) is one of the scope's enterprises."""
        if self.kind == "park":
            return column.in_(select(Organization.id).where(Organization.park_id == self.park_id))
        if self.kind == "county":
            return column.in_(select(Organization.id).where(Organization.county_code == self.county_code))
        return true()

    def restrict(self, query, column):
        """``query`` joined to the organisations of ``column`` and limited to the scope's (a join on
        the organisation's park or county, never a list of ids; the city: no join at all)."""
        if self.kind == "city":
            return query
        query = query.join(Organization, Organization.id == column)
        if self.kind == "park":
            return query.where(Organization.park_id == self.park_id)
        return query.where(Organization.county_code == self.county_code)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "park_id": self.park_id, "county_code": self.county_code, "name": self.name}


CITY = Scope("city")


def resolve_scope(session: Session, kind: str, ident: Any = None) -> Scope:
    """The park (by id), county (by GB/T 2260 code) or the city; unknown ones → 404."""
    # An id no park can have (beyond the integer column, or not a number) or a code that is not
    # six digits (a NUL byte, say, that PostgreSQL refuses) is looked up nowhere: 404 on both databases.
    if kind == "park":
        valid = isinstance(ident, int) and not isinstance(ident, bool) and 0 < ident <= MAX_ID
        park = session.get(Park, ident) if valid else None
        if park is None:
            raise NotFound(f"园区 {ident} 不存在 (park {ident} not found)")
        return Scope("park", park.id, park.county_code, park.name, park.name)
    if kind == "county":
        valid = isinstance(ident, str) and COUNTY_CODE_RE.match(ident) is not None
        county = session.get(County, ident) if valid else None
        if county is None:
            raise NotFound(f"区县 {ident} 不存在 (county {ident} not found)")
        return Scope("county", None, county.code, county.name, county.name_en or county.name)
    return CITY


def can_read(actor: Principal, scope: Scope) -> bool:
    """Operators and city regulators: everything; a county regulator: its county and the parks in
    it; a park administration: its own park. Enterprises and services read no area statistics."""
    if actor.is_operator:
        return True
    org = actor.organization
    if org is None or actor.is_device:
        return False
    if org.has_role("regulator"):
        if org.county_code is None:
            return True
        if scope.kind in ("county", "park") and scope.county_code == org.county_code:
            return True
    return bool(
        org.has_role("park_admin") and org.park_id is not None and scope.kind == "park" and scope.park_id == org.park_id
    )


def authorise(actor: Principal, scope: Scope) -> None:
    # Parks and counties are public registry facts (GET /parks, /counties), so a scope outside the
    # caller's jurisdiction is "forbidden", not "not found".
    if not can_read(actor, scope):
        raise Forbidden("无权查看该范围的统计 (statistics of this area are outside your jurisdiction)")


def readable_scopes(session: Session, actor: Principal) -> list[Scope]:
    """The scopes ``actor`` may read (the page's picker), city first, then counties, then parks."""
    scopes = [CITY] if can_read(actor, CITY) else []
    counties = session.scalars(select(County).order_by(County.code))
    scopes += [
        s for s in (Scope("county", None, c.code, c.name, c.name_en or c.name) for c in counties) if can_read(actor, s)
    ]
    parks = session.scalars(select(Park).order_by(Park.county_code, Park.id))
    scopes += [s for s in (Scope("park", p.id, p.county_code, p.name, p.name) for p in parks) if can_read(actor, s)]
    return scopes
