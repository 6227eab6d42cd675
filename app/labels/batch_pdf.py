"""Labels for bags of regenerated activated carbon (再生活性炭), one A4 sheet per batch.

The same sheet as the box labels (:mod:`app.labels.layout`: 8 labels per page, the QR code on the
left, text on the right; :mod:`app.labels.text` for mixed CJK/Latin text with the embedded CJK
font; the vector QR of :mod:`app.labels.pdf`), with what a bag's user needs: the batch number,
the plant, the production date, the iodine value, the bag's number and weight, and the batch's
number to give on the scan page's replacement form. The QR code opens the batch page.

Pure Python, no Flask imports.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from reportlab.lib.colors import HexColor
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from .drawing import draw_qr, label_frame, new_canvas
from .layout import (
    BAND_H,
    HINT_Y,
    LABEL_H,
    LABEL_W,
    LABELS_PER_PAGE,
    MARGIN_TOP,
    MARGIN_X,
    PAD,
    PAGE_H,
    PAGE_W,
    geometry,
    label_origin,
)
from .pdf import page_count
from .text import LATIN_BOLD, draw_text, ellipsize, ensure_fonts, fit, wrap

TITLE = "再生活性炭"
_GREEN = HexColor("#1E7A48")
_TEXT = HexColor("#1A1A1A")
_MUTED = HexColor("#6B6F76")


@dataclass(frozen=True, slots=True)
class BatchLabel:
    """One bag's label: ``url`` is what the QR code opens (the batch page)."""

    url: str
    batch_id: int
    batch_no: str
    plant: str
    produced_on: str  # YYYY-MM-DD
    iodine_mg_g: float
    bag: int
    bags: int
    bag_kg: float | None = None


def _draw(c: Canvas, spec: BatchLabel, x: float, y: float) -> None:
    g = geometry()
    c.saveState()
    c.translate(x, y)
    band = label_frame(c, _GREEN)  # leaves the fill white: the band's title is white
    draw_text(c, PAD + 1 * mm, band, TITLE, 12)
    chip = f"No. {spec.batch_id}"
    draw_text(c, LABEL_W - PAD - 1 * mm, band, chip, 11, align="right", latin=LATIN_BOLD)
    draw_qr(c, spec.url, g.qr_x, g.qr_y, g.qr_size)

    tx, tw = g.tx, g.tw
    top = LABEL_H - BAND_H - PAD - 2.6 * mm
    c.setFillColor(_MUTED)
    draw_text(c, tx, top, "批次号", 7)
    c.setFillColor(_TEXT)
    number = ellipsize(spec.batch_no, 9, tw * 0.95, LATIN_BOLD)
    size = fit(number, 14, tw * 0.95, 8, LATIN_BOLD)
    draw_text(c, tx, top - size - 0.8 * mm, number, size, latin=LATIN_BOLD)
    row = top - size - 6 * mm
    for line in wrap(spec.plant or "—", 8, tw, 2):
        draw_text(c, tx, row, line, 8)
        row -= 8 * 1.25
    facts = [
        f"生产日期 {spec.produced_on}",
        f"碘值 {spec.iodine_mg_g:g} mg/g",
        f"第 {spec.bag}/{spec.bags} 袋" + (f" · {spec.bag_kg:g} kg" if spec.bag_kg else ""),
    ]
    for fact in facts:
        row -= 1 * mm
        draw_text(c, tx, row, ellipsize(fact, 8, tw), 8)
        row -= 8 * 1.25
    c.setFillColor(_MUTED)
    draw_text(c, tx, HINT_Y, ellipsize(f"换炭时填写再生批次编号 {spec.batch_id}", 6.5, tw), 6.5)
    c.restoreState()


def batch_label_pdf(labels: Sequence[BatchLabel]) -> bytes:
    """The labels on A4 pages, 8 per page (the box labels' grid); ``ValueError`` for none."""
    labels = list(labels)
    if not labels:
        raise ValueError("batch_label_pdf needs at least one label")
    ensure_fonts()
    buf = io.BytesIO()
    c = new_canvas(buf)
    c.setTitle("再生活性炭标签")
    c.setCreator("tanxiang")
    pages = page_count(len(labels))
    for p in range(pages):
        c.setFillColor(_TEXT)
        draw_text(c, MARGIN_X, PAGE_H - MARGIN_TOP - 5 * mm, f"再生活性炭标签  批次 {labels[0].batch_no}", 11)
        c.setFillColor(_MUTED)
        draw_text(
            c,
            PAGE_W - MARGIN_X,
            PAGE_H - MARGIN_TOP - 5 * mm,
            f"共 {len(labels)} 张  第 {p + 1}/{pages} 页",
            8,
            align="right",
        )
        for i, spec in enumerate(labels[p * LABELS_PER_PAGE : (p + 1) * LABELS_PER_PAGE]):
            _draw(c, spec, *label_origin(i))
        c.showPage()
    c.save()
    return buf.getvalue()
