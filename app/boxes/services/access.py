"""Who may see and serve boxes: scopes, look-ups by code, the box list."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import false, or_, select, true
from sqlalchemy.orm import Session

from app.accounts.models import Organization
from app.accounts.services import Principal, enterprise_scope
from app.boxes import codes
from app.boxes.models import Box
from app.boxes.services.colours import refresh_due
from app.common.errors import NotFound
from app.common.timeutil import utcnow

# ---------------------------------------------------------------- visibility


def box_scope(actor: Principal):
    """Boxes ``actor`` may see: its jurisdiction's enterprises, and the boxes it serves."""
    if actor.is_operator:
        return true()
    org = actor.organization
    if org is None or actor.is_device:  # a gateway's token only ingests readings
        return false()
    if org.has_role("regulator") and org.county_code is None:
        # The whole city (enterprise_scope's rule): every box. As "enterprise in (every
        # organisation)" it read all 100,000 boxes through a hashed id list on every list page.
        return true()
    enterprises = select(Organization.id).where(enterprise_scope(actor))
    return or_(Box.enterprise_id.in_(enterprises), Box.service_org_id == org.id)


class Seer(Protocol):
    """What :func:`can_see` reads of the caller: a :class:`Principal`, or the plain viewer of
    the lean reads (app.common.auth.Viewer)."""

    @property
    def is_operator(self) -> bool: ...
    @property
    def is_device(self) -> bool: ...
    @property
    def organization(self) -> Any: ...


def can_see(
    actor: Seer, *, enterprise_id: int, service_org_id: int | None, county_code: str | None, park_id: int | None
) -> bool:
    """The same rule as :func:`box_scope`, for one box whose facts are already in hand
    (the read cache); a test checks the two agree."""
    if actor.is_operator:
        return True
    org = actor.organization
    if org is None or actor.is_device:
        return False
    if org.id in (enterprise_id, service_org_id):
        return True
    if org.has_role("regulator") and (org.county_code is None or org.county_code == county_code):
        return True
    return bool(org.has_role("park_admin") and org.park_id is not None and org.park_id == park_id)


def can_service(actor: Principal, box: Box) -> bool:
    """May ``actor`` record fills on ``box``? Its enterprise's staff and its carbon service."""
    if actor.is_operator:
        return True
    org = actor.organization
    return bool(org and not actor.is_device and org.id in (box.enterprise_id, box.service_org_id))


def get_box(session: Session, actor: Principal, raw_code: str) -> Box:
    code = codes.normalise(raw_code)
    box = None
    if code is not None:
        box = session.scalar(select(Box).where(Box.code == code, box_scope(actor)))
    if box is None:
        # Another tenant's box is "not found" too: existence is not disclosed.
        raise NotFound(f"碳箱 {raw_code} 不存在或无权查看 (box {raw_code} not found)")
    return box


def require_visible_enterprise(session: Session, actor: Principal, enterprise_id: int) -> None:
    """Raise NotFound unless ``actor`` may see enterprise ``enterprise_id``: in its
    jurisdiction, or the enterprise of a box it serves. Existence is not disclosed."""
    visible = session.scalar(select(Organization.id).where(Organization.id == enterprise_id, enterprise_scope(actor)))
    if visible is None:
        visible = session.scalar(select(Box.id).where(Box.enterprise_id == enterprise_id, box_scope(actor)).limit(1))
    if visible is None:
        raise NotFound(f"企业 {enterprise_id} 不存在或无权查看 (enterprise {enterprise_id} not found)")


def require_visible_park(session: Session, actor: Principal, park_id: int) -> None:
    """Raise NotFound unless ``actor`` may see park ``park_id``: its own, or one holding an
    enterprise in its jurisdiction or a box it serves. Existence is not disclosed."""
    if actor.organization is not None and actor.organization.park_id == park_id:
        return
    visible = session.scalar(
        select(Organization.id).where(Organization.park_id == park_id, enterprise_scope(actor)).limit(1)
    )
    if visible is None:
        visible = session.scalar(
            select(Box.id)
            .join(Organization, Organization.id == Box.enterprise_id)
            .where(Organization.park_id == park_id, box_scope(actor))
            .limit(1)
        )
    if visible is None:
        raise NotFound(f"园区 {park_id} 不存在或无权查看 (park {park_id} not found)")


def find_box_public(session: Session, raw_code: str) -> Box | None:
    """The scan page shows a box's colour to anyone holding its label."""
    code = codes.normalise(raw_code)
    return session.scalar(select(Box).where(Box.code == code)) if code else None


def list_boxes(
    session: Session,
    actor: Principal,
    *,
    colour: str | None = None,
    county: str | None = None,
    park: int | None = None,
    enterprise: int | None = None,
    status: str | None = None,
):
    query = select(Box).where(box_scope(actor))
    if colour or county or park:
        refresh_due(session, utcnow())
    if colour:
        query = query.where(Box.colour == colour)
    if county or park:
        orgs = select(Organization.id)
        if county:
            orgs = orgs.where(Organization.county_code == county)
        if park:
            orgs = orgs.where(Organization.park_id == park)
        query = query.where(Box.enterprise_id.in_(orgs))
    if enterprise:
        query = query.where(Box.enterprise_id == enterprise)
    if status:
        query = query.where(Box.status == status)
    return query.order_by(Box.id)
