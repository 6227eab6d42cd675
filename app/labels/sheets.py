"""Which boxes go on a label sheet, and the sheet itself: one place for the API
(``/api/v1/labels.pdf``, bearer token) and the box list's print button (the signed-in session).

No Flask here: the caller passes the public base URL and the signing secret.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.accounts.services import Principal
from app.boxes import codes as box_codes
from app.boxes import services as box_services
from app.boxes.models import Box
from app.common.errors import InvalidInput, NotFound
from app.labels.pdf import NEUTRAL, LabelSpec, label_sheet_pdf
from app.labels.signing import label_url

MAX_LABELS = 5000


def boxes_for_sheet(
    session: Session,
    actor: Principal,
    *,
    codes: list[str] | None = None,
    enterprise: int | None = None,
    colour: str | None = None,
) -> list[Box]:
    """The boxes ``actor`` asked for by code (all of them visible, else 404 naming none of the
    others) or by enterprise / colour; an empty or oversized sheet is refused (422)."""
    if enterprise:
        # Another tenant's enterprise is "not found", as its boxes are (problem+json 404).
        box_services.require_visible_enterprise(session, actor, enterprise)
    query = box_services.list_boxes(session, actor, enterprise=enterprise, colour=colour)
    wanted_raw = [c for c in (codes or []) if c.strip()]
    if wanted_raw:
        wanted = []
        for c in wanted_raw:
            normal = box_codes.normalise(c)
            if normal is None:
                raise InvalidInput.field("codes", f"{c.strip()} is not a valid box code")
            wanted.append(normal)
        boxes = list(session.scalars(query.where(Box.code.in_(wanted))))
        missing = sorted(set(wanted) - {b.code for b in boxes})
        if missing:
            # Unknown and not visible alike: existence is not disclosed (404, as on every box route).
            raise NotFound(f"碳箱不存在或无权查看 (boxes not found): {', '.join(missing)}")
    elif enterprise or colour:
        boxes = list(session.scalars(query.limit(MAX_LABELS + 1)))
    else:
        raise InvalidInput.field("codes", "give codes=… or enterprise=…")
    if not boxes:
        raise InvalidInput.field("codes", "no boxes match: nothing to print")
    if len(boxes) > MAX_LABELS:
        raise InvalidInput.field("codes", f"at most {MAX_LABELS} labels per sheet")
    return boxes


def label_sheet(boxes: list[Box], base_url: str, secret: str, frame: str = NEUTRAL) -> bytes:
    """The A4 sheet. A label stays on its box for years while the colour changes: a neutral frame
    unless the current colour is asked for (``frame="current"``, e.g. an inspection sheet)."""
    specs = [
        LabelSpec(
            code=b.code,
            url=label_url(base_url, b.code, b.label_version, secret),
            colour=b.colour if frame == "current" else NEUTRAL,
            enterprise=b.enterprise.name,
            facility=b.facility_code,
            outlet=b.outlet_code,
        )
        for b in boxes
    ]
    return label_sheet_pdf(specs)


def sheet_args(args: dict[str, Any]) -> dict[str, Any]:
    """The API's query (``codes`` comma-separated) as :func:`boxes_for_sheet` arguments."""
    return {
        "codes": [c for c in (args.get("codes") or "").split(",") if c.strip()],
        "enterprise": args.get("enterprise"),
        "colour": args.get("colour"),
    }
