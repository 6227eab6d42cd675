"""Printable A4 label sheets for carbon box codes (碳箱码).

:func:`label_sheet_pdf` lays out 8 labels per A4 page (2 columns x 4 rows,
each 92 x 59 mm).  Every label has a frame and title band in the box's colour,
a vector QR code (merged ``re`` rectangles, no raster images), the box code in
large type, the enterprise name and facility/outlet numbers in Chinese.  Each
page carries a Chinese colour legend.

Chinese text uses reportlab's built-in CID font ``STSong-Light`` (Adobe-GB1):
no TTF file is needed to *generate* the PDF; the font is not embedded, so the
viewer/printer substitutes its own Song/Ming typeface (Acrobat, browsers and
poppler with a CJK font installed all do).

Pure Python, no Flask imports.
"""

from __future__ import annotations

import contextlib
import io
import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from reportlab import rl_config
from reportlab.lib.colors import Color, HexColor, white
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

from .qr import qr_matrix, qr_rects

__all__ = [
    "COLOURS",
    "LABELS_PER_PAGE",
    "LEGEND_TEXT",
    "TITLE",
    "LabelSpec",
    "label_sheet_pdf",
    "page_count",
]

TITLE = "碳箱码 活性炭吸附箱"
CJK_FONT = "STSong-Light"
LATIN_BOLD = "Helvetica-Bold"
LATIN = "Helvetica"


@dataclass(frozen=True, slots=True)
class _Colour:
    fill: Color  # frame / band colour
    ink: Color  # text colour on the band
    name: str  # 灰 / 绿 / 黄 / 红
    meaning: str  # legend text


#: Box colours.  Yellow gets dark ink on the band for contrast.
COLOURS: dict[str, _Colour] = {
    "grey": _Colour(HexColor("#8A9099"), white, "灰", "未投用/停用"),
    "green": _Colour(HexColor("#1E9A48"), white, "绿", "正常"),
    "yellow": _Colour(HexColor("#F2C200"), HexColor("#2B2300"), "黄", "预警（即将更换或轻度异常）"),
    "red": _Colour(HexColor("#D3261E"), white, "红", "超期或异常"),
}

LEGEND_TEXT = "  ".join(f"{c.name}：{c.meaning}" for c in COLOURS.values())

_BLACK = HexColor("#000000")
_TEXT = HexColor("#1A1A1A")
_MUTED = HexColor("#6B6F76")
_RULE = HexColor("#C8CCD2")

# ---------------------------------------------------------------- geometry
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
LABEL_H = (
    PAGE_H - MARGIN_TOP - HEADER_H - LEGEND_H - MARGIN_BOTTOM - (ROWS - 1) * GAP_Y
) / ROWS

FRAME = 1.8 * mm  # coloured frame thickness
BAND_H = 10 * mm  # coloured title band height
RADIUS = 3 * mm
PAD = 2.5 * mm
_LEGEND_FORM = "TxLegend"
QR_QUIET = 4  # quiet zone in modules (ISO/IEC 18004 asks for 4)


@dataclass(frozen=True, slots=True)
class LabelSpec:
    """One label to print.

    ``colour`` is one of ``grey``, ``green``, ``yellow``, ``red``;
    ``facility`` is the treatment facility number (e.g. ``TA001``) and
    ``outlet`` the discharge outlet number (e.g. ``DA001``).
    """

    code: str
    url: str
    colour: str
    enterprise: str
    facility: str
    outlet: str

    def __post_init__(self) -> None:
        for name in ("code", "url", "colour", "enterprise", "facility", "outlet"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"LabelSpec.{name} must be a str")
        if not self.code:
            raise ValueError("LabelSpec.code must not be empty")
        if not self.url:
            raise ValueError("LabelSpec.url must not be empty")
        if self.colour not in COLOURS:
            raise ValueError(
                f"LabelSpec.colour must be one of {sorted(COLOURS)}, got {self.colour!r}"
            )


def page_count(n_labels: int) -> int:
    """Number of A4 pages :func:`label_sheet_pdf` produces for ``n_labels``."""
    return max(1, math.ceil(n_labels / LABELS_PER_PAGE))


# ------------------------------------------------------------------ fonts
_fonts_ready = False


def _ensure_fonts() -> None:
    global _fonts_ready
    if not _fonts_ready:
        try:
            pdfmetrics.getFont(CJK_FONT)
        except KeyError:
            pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
        _fonts_ready = True


def _width(text: str, font: str, size: float) -> float:
    return pdfmetrics.stringWidth(text, font, size)


def _fit(text: str, font: str, size: float, max_w: float, min_size: float) -> float:
    """Largest font size <= ``size`` (>= ``min_size``) at which ``text`` fits."""
    w = _width(text, font, size)
    if w <= max_w:
        return size
    return max(min_size, size * max_w / w)


def _ellipsize(text: str, font: str, size: float, max_w: float) -> str:
    if _width(text, font, size) <= max_w:
        return text
    while text and _width(text + "…", font, size) > max_w:
        text = text[:-1]
    return text + "…"


def _wrap(text: str, font: str, size: float, max_w: float, max_lines: int) -> list[str]:
    """Character-based wrapping (fine for Chinese; keeps ASCII words whole
    when possible); the last line is ellipsized if the text is too long."""
    text = " ".join(text.split())
    if not text:
        return []
    lines: list[str] = []
    rest = text
    while rest and len(lines) < max_lines:
        if len(lines) == max_lines - 1 or _width(rest, font, size) <= max_w:
            lines.append(_ellipsize(rest, font, size, max_w))
            break
        # longest prefix that fits
        lo, hi = 1, len(rest)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if _width(rest[:mid], font, size) <= max_w:
                lo = mid
            else:
                hi = mid - 1
        cut = lo
        # don't split an ASCII word if a space is reasonably close
        if rest[cut - 1 : cut + 1].isascii() and rest[cut - 1 : cut + 1].isalnum():
            space = rest.rfind(" ", 0, cut)
            if space > cut // 2:
                cut = space
        lines.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return lines


# ---------------------------------------------------------------- drawing
def _draw_qr(c: Canvas, data: str, x: float, y: float, size: float) -> None:
    """Draw the QR for ``data`` as vector rectangles into the square with
    lower-left corner (x, y) and side ``size`` (quiet zone included)."""
    n = qr_matrix(data).size
    module = size / (n + 2 * QR_QUIET)
    top = y + size - QR_QUIET * module
    left = x + QR_QUIET * module
    c.saveState()
    c.setFillColor(_BLACK)
    # Module coordinate system: origin at the symbol's top-left module,
    # 1 unit = 1 module, y growing downwards (matches qr_rects()).
    c.transform(module, 0, 0, -module, left, top)
    # One path of merged "re" operators, filled once.  Equivalent to a series
    # of canvas.rect(..., stroke=0, fill=1) calls but ~15x cheaper to emit,
    # which is what keeps a 1,000-label sheet under the 2 s budget.
    c.addLiteral("n " + " ".join(["%d %d %d %d re" % r for r in qr_rects(data)]) + " f")
    c.restoreState()


def _label_form_name(colour: str) -> str:
    return f"TxLabel_{colour}"


def _define_label_form(c: Canvas, colour: str) -> None:
    """Everything on a label that depends only on its colour (frame, band,
    title, captions) as a reusable Form XObject, drawn at the origin.

    Reusing one form per colour instead of re-emitting ~15 drawing calls per
    label keeps the content streams small and the sheet fast to generate."""
    col = COLOURS[colour]
    w, h = LABEL_W, LABEL_H
    c.beginForm(_label_form_name(colour), 0, 0, w, h)

    # Coloured frame + title band, white body.
    c.setFillColor(col.fill)
    c.roundRect(0, 0, w, h, RADIUS, stroke=0, fill=1)
    c.setFillColor(white)
    c.roundRect(FRAME, FRAME, w - 2 * FRAME, h - BAND_H - FRAME, RADIUS / 2, stroke=0, fill=1)

    # Title band: title (faux-bold via fill+stroke) and colour chip.
    band_base = h - BAND_H + (BAND_H - 12) / 2 + 1.5
    c.setFillColor(col.ink)
    c.setStrokeColor(col.ink)
    c.setLineWidth(0.35)
    t = c.beginText(PAD + 1 * mm, band_base)
    t.setTextRenderMode(2)
    t.setFont(CJK_FONT, 12)
    t.textOut(TITLE)
    t.setTextRenderMode(0)
    c.drawText(t)
    chip = f"{col.name}码"
    c.setFont(CJK_FONT, 10)
    chip_w = _width(chip, CJK_FONT, 10) + 4 * mm
    chip_x = w - PAD - chip_w - 0.5 * mm
    c.setLineWidth(0.8)
    c.roundRect(chip_x, band_base - 2.3 * mm, chip_w, 6 * mm, 1.5 * mm, stroke=1, fill=0)
    c.drawCentredString(chip_x + chip_w / 2, band_base - 0.2 * mm, chip)

    # Static captions of the text column.
    g = _geometry()
    c.setFillColor(_MUTED)
    c.setFont(CJK_FONT, 7)
    c.drawString(g.tx, g.caption_code_y, "编号")
    c.drawString(g.tx, g.caption_ent_y, "企业")
    c.drawString(g.tx, g.facility_y, "治理设施")
    c.drawString(g.tx, g.outlet_y, "排放口")
    c.setStrokeColor(_RULE)
    c.setLineWidth(0.5)
    c.line(g.tx, g.rule_y, g.tx + g.tw, g.rule_y)
    c.setFont(CJK_FONT, 6.5)
    c.drawString(g.tx, _HINT_Y, _ellipsize("扫码查看更换与转移记录", CJK_FONT, 6.5, g.tw))
    c.endForm()


@dataclass(frozen=True, slots=True)
class _Geometry:
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


def _geometry() -> _Geometry:
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
    ent_first_y = caption_ent_y - _ENT_SIZE * 1.25
    # facility/outlet rows are anchored above the footer hint, leaving room
    # for two enterprise lines
    outlet_y = _HINT_Y + 7 * mm
    facility_y = outlet_y + 5 * mm
    return _Geometry(
        qr_x, qr_y, qr_size, tx, tw, caption_code_y, code_y, rule_y,
        caption_ent_y, ent_first_y, facility_y, outlet_y, 13 * mm,
    )


_ENT_SIZE = 9
_HINT_Y = FRAME + 2 * mm
_CODE_SIZE = 17
_VALUE_SIZE = 10


def _value_font(text: str) -> str:
    """Helvetica-Bold for plain ASCII identifiers; the CJK font otherwise
    (Helvetica's WinAnsi encoding cannot show Chinese)."""
    return LATIN_BOLD if text.isascii() else CJK_FONT


def _draw_label(c: Canvas, spec: LabelSpec, x: float, y: float, g: _Geometry) -> None:
    c.saveState()
    c.translate(x, y)
    c.doForm(_label_form_name(spec.colour))
    _draw_qr(c, spec.url, g.qr_x, g.qr_y, g.qr_size)

    # All variable text in one text object.
    t = c.beginText()
    t.setFillColor(_TEXT)
    font = _value_font(spec.code)
    code_size = _fit(spec.code, font, _CODE_SIZE, g.tw, 7)
    t.setFont(font, code_size)
    t.setTextOrigin(g.tx, g.code_y)
    t.textOut(spec.code)
    t.setFont(CJK_FONT, _ENT_SIZE)
    ey = g.ent_first_y
    for line in _wrap(spec.enterprise or "—", CJK_FONT, _ENT_SIZE, g.tw, 2):
        t.setTextOrigin(g.tx, ey)
        t.textOut(line)
        ey -= _ENT_SIZE * 1.25
    vx, vw = g.tx + g.value_dx, g.tw - g.value_dx
    for value, vy in ((spec.facility, g.facility_y), (spec.outlet, g.outlet_y)):
        value = value or "—"
        font = _value_font(value)
        value = _ellipsize(value, font, 6, vw)
        t.setFont(font, _fit(value, font, _VALUE_SIZE, vw, 6))
        t.setTextOrigin(vx, vy)
        t.textOut(value)
    c.drawText(t)
    c.restoreState()


def _define_legend_form(c: Canvas) -> None:
    """The colour legend strip at the bottom of every page, as a form."""
    c.beginForm(_LEGEND_FORM, 0, 0, PAGE_W, MARGIN_BOTTOM + LEGEND_H)
    ly = MARGIN_BOTTOM + 4 * mm
    c.setStrokeColor(_RULE)
    c.setLineWidth(0.6)
    c.line(MARGIN_X, ly + 6 * mm, PAGE_W - MARGIN_X, ly + 6 * mm)
    size = 8.5
    sw = 3.2 * mm
    items = [(col, f"{col.name}：{col.meaning}") for col in COLOURS.values()]
    prefix = "颜色说明："
    total_w = _width(prefix, CJK_FONT, size) + sum(
        sw + 1.5 * mm + _width(text, CJK_FONT, size) + 5 * mm for _, text in items
    ) - 5 * mm
    lx = (PAGE_W - total_w) / 2
    c.setFont(CJK_FONT, size)
    c.setFillColor(_TEXT)
    c.drawString(lx, ly, prefix)
    lx += _width(prefix, CJK_FONT, size)
    for col, text in items:
        c.setFillColor(col.fill)
        c.roundRect(lx, ly - 0.6 * mm, sw, sw, 0.6 * mm, stroke=0, fill=1)
        lx += sw + 1.5 * mm
        c.setFillColor(_TEXT)
        c.drawString(lx, ly, text)
        lx += _width(text, CJK_FONT, size) + 5 * mm
    c.endForm()


def _draw_page_chrome(c: Canvas, page: int, pages: int, total: int) -> None:
    hy = PAGE_H - MARGIN_TOP - 5 * mm
    c.setFillColor(_TEXT)
    c.setFont(CJK_FONT, 11)
    c.drawString(MARGIN_X, hy, "台州市碳箱码标签")
    c.setFillColor(_MUTED)
    c.setFont(CJK_FONT, 8)
    c.drawRightString(PAGE_W - MARGIN_X, hy, f"共 {total} 张  第 {page}/{pages} 页")
    c.setStrokeColor(_RULE)
    c.setLineWidth(0.6)
    c.line(MARGIN_X, hy - 2.5 * mm, PAGE_W - MARGIN_X, hy - 2.5 * mm)
    c.doForm(_LEGEND_FORM)


_a85_lock = threading.Lock()
_a85_users = 0
_a85_saved = None


@contextlib.contextmanager
def _binary_streams() -> Iterator[None]:
    """Temporarily turn off reportlab's ASCII85 wrapping of compressed streams.

    ASCII85 is a 7-bit transport encoding on top of Flate; without reportlab's
    optional C accelerator (the ``rl_accel`` package) it is pure Python and
    costs ~0.2 s per 1,000 labels while making the file 25 % larger.  Streams
    stay Flate-compressed.  ``rl_config.useA85`` is read when the document is
    serialised, so it is switched off for the whole render and restored when
    the last concurrent render finishes (a concurrent unrelated reportlab
    document would at worst come out without ASCII85, which is equally valid).
    """
    global _a85_users, _a85_saved
    with _a85_lock:
        if _a85_users == 0:
            _a85_saved = rl_config.useA85
            rl_config.useA85 = 0
        _a85_users += 1
    try:
        yield
    finally:
        with _a85_lock:
            _a85_users -= 1
            if _a85_users == 0:
                rl_config.useA85 = _a85_saved


def label_sheet_pdf(labels: Sequence[LabelSpec]) -> bytes:
    """Render ``labels`` onto A4 pages, 8 per page, and return the PDF bytes.

    Raises ``ValueError`` for an empty list.  Page compression is on.
    """
    labels = list(labels)
    if not labels:
        raise ValueError("label_sheet_pdf needs at least one label")
    for spec in labels:
        if not isinstance(spec, LabelSpec):
            raise TypeError(f"expected LabelSpec, got {type(spec).__name__}")
    _ensure_fonts()
    with _binary_streams():
        return _render(labels)


def _render(labels: list[LabelSpec]) -> bytes:
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=A4, pageCompression=1)
    c.setTitle("碳箱码标签")
    c.setSubject("活性炭吸附箱二维码标签")
    c.setCreator("tanxiang")

    for colour in sorted({spec.colour for spec in labels}):
        _define_label_form(c, colour)
    _define_legend_form(c)
    g = _geometry()

    pages = page_count(len(labels))
    grid_top = PAGE_H - MARGIN_TOP - HEADER_H
    for p in range(pages):
        _draw_page_chrome(c, p + 1, pages, len(labels))
        chunk = labels[p * LABELS_PER_PAGE : (p + 1) * LABELS_PER_PAGE]
        for i, spec in enumerate(chunk):
            row, col = divmod(i, COLS)
            lx = MARGIN_X + col * (LABEL_W + GAP_X)
            ly = grid_top - (row + 1) * LABEL_H - row * GAP_Y
            _draw_label(c, spec, lx, ly, g)
        c.showPage()
    c.save()
    return buf.getvalue()
