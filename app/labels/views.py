"""Label endpoints: QR codes (PNG, SVG) and A4 label sheets (PDF)."""

from __future__ import annotations

from flask import Response, current_app
from flask_smorest import Blueprint

from app.boxes import services as box_services
from app.boxes.models import Box
from app.boxes.schemas import LabelsQuery
from app.common.auth import require_user
from app.common.errors import InvalidInput, NotFound
from app.extensions import db
from app.labels.pdf import NEUTRAL, LabelSpec, label_sheet_pdf
from app.labels.qr import qr_png, qr_svg
from app.labels.signing import label_url

blp = Blueprint("labels", __name__, description="QR labels (标签)")

MAX_LABELS = 5000


def box_label_url(box: Box) -> str:
    cfg = current_app.config
    return label_url(cfg["PUBLIC_BASE_URL"], box.code, box.label_version, cfg["SECRET_KEY"])


@blp.route("/boxes/<code>/qr.png")
@blp.response(200, content_type="image/png")
def qr_png_view(code):
    """The box's QR code: a signed URL to the scan page, with the label version."""
    box = box_services.get_box(db.session(), require_user(), code)
    return Response(qr_png(box_label_url(box)), mimetype="image/png", headers={"Cache-Control": "private, max-age=300"})


@blp.route("/boxes/<code>/qr.svg")
@blp.response(200, content_type="image/svg+xml")
def qr_svg_view(code):
    box = box_services.get_box(db.session(), require_user(), code)
    return Response(
        qr_svg(box_label_url(box)), mimetype="image/svg+xml", headers={"Cache-Control": "private, max-age=300"}
    )


@blp.route("/labels.pdf")
@blp.arguments(LabelsQuery, location="query")
@blp.response(200, content_type="application/pdf")
def labels_pdf(args):
    """An A4 sheet of labels for the given codes (or an enterprise's boxes), in Chinese."""
    actor = require_user()
    if args.get("enterprise"):
        # Another tenant's enterprise is "not found", as its boxes are (problem+json 404).
        box_services.require_visible_enterprise(db.session(), actor, args["enterprise"])
    query = box_services.list_boxes(db.session(), actor, enterprise=args.get("enterprise"), colour=args.get("colour"))
    if args.get("codes"):
        raw = [c for c in args["codes"].split(",") if c.strip()]
        from app.boxes import codes as box_codes

        wanted = []
        for c in raw:
            normal = box_codes.normalise(c)
            if normal is None:
                raise InvalidInput.field("codes", f"{c.strip()} is not a valid box code")
            wanted.append(normal)
        query = query.where(Box.code.in_(wanted))
        boxes = list(db.session.scalars(query))
        missing = sorted(set(wanted) - {b.code for b in boxes})
        if missing:
            # Unknown and not visible alike: existence is not disclosed (404, as on every box route).
            raise NotFound(f"碳箱不存在或无权查看 (boxes not found): {', '.join(missing)}")
    elif args.get("enterprise") or args.get("colour"):
        boxes = list(db.session.scalars(query.limit(MAX_LABELS + 1)))
    else:
        raise InvalidInput.field("codes", "give codes=… or enterprise=…")
    if not boxes:
        raise InvalidInput.field("codes", "no boxes match: nothing to print")
    if len(boxes) > MAX_LABELS:
        raise InvalidInput.field("codes", f"at most {MAX_LABELS} labels per sheet")
    # A label stays on its box for years while the colour changes: print a neutral frame unless
    # the current colour is asked for (e.g. an inspection sheet).
    frame = "current" if args.get("frame") == "current" else NEUTRAL
    specs = [
        LabelSpec(
            code=b.code,
            url=box_label_url(b),
            colour=b.colour if frame == "current" else NEUTRAL,
            enterprise=b.enterprise.name,
            facility=b.facility_code,
            outlet=b.outlet_code,
        )
        for b in boxes
    ]
    pdf = label_sheet_pdf(specs)
    return Response(pdf, mimetype="application/pdf", headers={"Content-Disposition": 'inline; filename="labels.pdf"'})


API_BLUEPRINTS = (blp,)
