"""Geometry of the A4 label sheet: 8 labels per page (2 columns x 4 rows), the page's header
and legend strips, and the positions inside one label.

Pure Python (reportlab units), no Flask imports. Used by :mod:`app.labels.pdf`.
"""

from __future__ import annotations

from dataclasses import dataclass

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm

PAGE_W, PAGE_H = A4
COLS, ROWS = 2, 4
LABELS_PER_PAGE = COLS * ROWS
MARGIN_X = 10 * mm
GAP_X = 6 * mm
GAP_Y = 5 * mm
HEADER_H = 9 * mm  # page header strip (top)
LEGEND_H = 12 * mm  # legend strip (bottom)
MARGIN_TOP = 9 * mm
MARGIN_BOTTOM = 9 * mm

LABEL_W = (PAGE_W - 2 * MARGIN_X - (COLS - 1) * GAP_X) / COLS
LABEL_H = (PAGE_H - MARGIN_TOP - HEADER_H - LEGEND_H - MARGIN_BOTTOM - (ROWS - 1) * GAP_Y) / ROWS

FRAME = 1.8 * mm  # coloured frame thickness
BAND_H = 10 * mm  # coloured title band height
RADIUS = 3 * mm
PAD = 2.5 * mm
QR_QUIET = 4  # quiet zone in modules (ISO/IEC 18004 asks for 4)


@dataclass(frozen=True, slots=True)
class Geometry:
    """Positions inside a label, relative to its lower-left corner."""

    qr_x: float
    qr_y: float
    qr_size: float
    tx: float
    tw: float
    caption_code_y: float
    code_y: float
    rule_y: float
    caption_ent_y: float
    ent_first_y: float
    facility_y: float
    outlet_y: float
    value_dx: float


def geometry() -> Geometry:
    w, h = LABEL_W, LABEL_H
    body_top = h - BAND_H
    body_h = body_top - FRAME
    qr_size = body_h - 1 * mm
    qr_x = FRAME + 0.5 * mm
    qr_y = FRAME + (body_h - qr_size) / 2
    tx = qr_x + qr_size + 0.5 * mm
    tw = w - FRAME - PAD - tx
    caption_code_y = body_top - PAD - 2.6 * mm
    code_y = caption_code_y - 17 * 0.95 - 1.2 * mm
    rule_y = code_y - 3.2 * mm
    caption_ent_y = rule_y - 3.6 * mm
    ent_first_y = caption_ent_y - ENT_SIZE * 1.25
    # facility/outlet rows are anchored above the footer hint, leaving room
    # for two enterprise lines
    outlet_y = HINT_Y + 7 * mm
    facility_y = outlet_y + 5 * mm
    return Geometry(
        qr_x,
        qr_y,
        qr_size,
        tx,
        tw,
        caption_code_y,
        code_y,
        rule_y,
        caption_ent_y,
        ent_first_y,
        facility_y,
        outlet_y,
        13 * mm,
    )


ENT_SIZE = 9
HINT_Y = FRAME + 2 * mm
CODE_SIZE = 17
CODE_MIN = 9
VALUE_SIZE = 10


def label_origin(index: int) -> tuple[float, float]:
    """The lower-left corner of the ``index``-th label of a page (row by row, ``COLS`` a row)."""
    row, col = divmod(index, COLS)
    grid_top = PAGE_H - MARGIN_TOP - HEADER_H
    return MARGIN_X + col * (LABEL_W + GAP_X), grid_top - (row + 1) * LABEL_H - row * GAP_Y
