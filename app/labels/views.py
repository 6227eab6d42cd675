"""Label endpoints: QR codes (PNG, SVG) and A4 label sheets (PDF)."""

from __future__ import annotations

from flask import Response, current_app
from flask_smorest import Blueprint

from app.boxes import services as box_services
from app.boxes.models import Box
from app.boxes.schemas import LabelsQuery
from app.common.auth import require_user
from app.extensions import db
from app.labels.pdf import NEUTRAL
from app.labels.qr import qr_png, qr_svg
from app.labels.sheets import MAX_LABELS, boxes_for_sheet, label_sheet, sheet_args
from app.labels.signing import label_url

blp = Blueprint("labels", __name__, description="QR labels (标签)")

__all__ = ["MAX_LABELS", "blp", "box_label_url"]


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
    boxes = boxes_for_sheet(db.session(), require_user(), **sheet_args(args))
    cfg = current_app.config
    frame = "current" if args.get("frame") == "current" else NEUTRAL
    pdf = label_sheet(boxes, cfg["PUBLIC_BASE_URL"], cfg["SECRET_KEY"], frame)
    return Response(pdf, mimetype="application/pdf", headers={"Content-Disposition": 'inline; filename="labels.pdf"'})


API_BLUEPRINTS = (blp,)
