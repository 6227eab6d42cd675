"""Printable A4 label sheets for carbon box codes (碳箱码).

:func:`label_sheet_pdf` lays out 8 labels per A4 page (2 columns x 4 rows,
each 92 x 60.75 mm).  Every label has a frame and title band in the box's colour,
a vector QR code (merged ``re`` rectangles, no raster images), the box code in
large type, the enterprise name and facility/outlet numbers in Chinese.  Each
page carries a Chinese colour legend.

Chinese text uses the CJK TrueType font shipped in :mod:`app.fonts` (WenQuanYi
Micro Hei, GB 2312 subset); reportlab embeds the glyphs a sheet uses, so every
viewer and printer shows them without a font of its own.  Codes and numbers
stay in Helvetica (one of the standard 14 fonts every viewer has).

Pure Python, no Flask imports.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from reportlab import rl_config
from reportlab.lib.colors import Color, HexColor, white
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas
from reportlab.pdfgen.textobject import PDFTextObject

from app.fonts import CJK_FONT, cjk_font
from app.boxes.states import COLOUR_ZH, Colour

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
    Colour.GREY: _Colour(HexColor("#8A9099"), white, COLOUR_ZH[Colour.GREY], "未投用/停用"),
    Colour.GREEN: _Colour(HexColor("#1E9A48"), white, COLOUR_ZH[Colour.GREEN], "正常"),
    Colour.YELLOW: _Colour(HexColor("#F2C200"), HexColor("#2B2300"), COLOUR_ZH[Colour.YELLOW], "预警（即将更换或轻度异常）"),
    Colour.RED: _Colour(HexColor("#D3261E"), white, COLOUR_ZH[Colour.RED], "超期或异常"),
}
assert list(COLOURS) == list(Colour)  # the label's legend follows the one definition, in severity order

#: The frame of a label meant to stay on a box for years: its colour changes, so the printed
#: frame is neutral and the chip tells people to scan (the legend still explains the colours).
NEUTRAL = "neutral"
_STYLES: dict[str, _Colour] = {**COLOURS, NEUTRAL: _Colour(HexColor("#17324D"), white, "扫码看颜色", "")}

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
        if self.colour not in _STYLES:
            raise ValueError(
                f"LabelSpec.colour must be one of {sorted(_STYLES)}, got {self.colour!r}"
            )


def page_count(n_labels: int) -> int:
    """Number of A4 pages :func:`label_sheet_pdf` produces for ``n_labels``."""
    return max(1, math.ceil(n_labels / LABELS_PER_PAGE))


# ------------------------------------------------------------------ fonts
_fonts_ready = False


def _ensure_fonts() -> None:
    global _fonts_ready
    if not _fonts_ready:
        cjk_font()
        _fonts_ready = True


_ASCII_OR_NOT = re.compile(r"[\x20-\x7e]+|[^\x20-\x7e]+")


def _runs(text: str, latin: str) -> list[tuple[str, str]]:
    """Split ``text`` into (segment, font) runs: printable ASCII in the Latin
    font ``latin``, everything else in the CJK font.

    Helvetica for ASCII keeps codes, numbers and English names crisp and
    the layout identical to what it was with the CID font."""
    return [
        (seg, latin if seg[0] <= "~" and seg[0] >= " " else CJK_FONT)
        for seg in _ASCII_OR_NOT.findall(text)
    ]


def _width(text: str, size: float, latin: str = LATIN) -> float:
    """Width of mixed Chinese/Latin ``text`` as drawn by :func:`_text_out`."""
    return sum(pdfmetrics.stringWidth(seg, font, size) for seg, font in _runs(text, latin))


def _text_out(t: PDFTextObject, text: str, size: float, latin: str = LATIN) -> None:
    """Append mixed Chinese/Latin ``text`` at the text object's cursor."""
    for seg, font in _runs(text, latin):
        t.setFont(font, size)
        t.textOut(seg)


def _draw_text(
    c: Canvas, x: float, y: float, text: str, size: float,
    latin: str = LATIN, align: str = "left",
) -> None:
    if align == "right":
        x -= _width(text, size, latin)
    elif align == "centre":
        x -= _width(text, size, latin) / 2
    t = c.beginText(x, y)
    _text_out(t, text, size, latin)
    c.drawText(t)


def _fit(text: str, size: float, max_w: float, min_size: float, latin: str = LATIN) -> float:
    """Largest font size <= ``size`` (>= ``min_size``) at which ``text`` fits."""
    w = _width(text, size, latin)
    if w <= max_w:
        return size
    return max(min_size, size * max_w / w)


def _ellipsize(text: str, size: float, max_w: float, latin: str = LATIN) -> str:
    if _width(text, size, latin) <= max_w:
        return text
    while text and _width(text + "…", size, latin) > max_w:
        text = text[:-1]
    return text.rstrip() + "…"


def _wrap(text: str, size: float, max_w: float, max_lines: int, latin: str = LATIN) -> list[str]:
    """Character-based wrapping (right for Chinese; keeps ASCII words whole
    when a space is reasonably close); the last line is ellipsized if the text
    is too long."""
    text = " ".join(text.split())
    lines: list[str] = []
    rest = text
    while rest and len(lines) < max_lines:
        if len(lines) == max_lines - 1 or _width(rest, size, latin) <= max_w:
            lines.append(_ellipsize(rest, size, max_w, latin))
            break
        lo, hi = 1, len(rest)  # longest prefix that fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if _width(rest[:mid], size, latin) <= max_w:
                lo = mid
            else:
                hi = mid - 1
        cut = lo
        pair = rest[cut - 1 : cut + 1]
        if pair.isascii() and pair.isalnum():
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
    col = _STYLES[colour]
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
    _text_out(t, TITLE, 12)
    t.setTextRenderMode(0)
    c.drawText(t)
    chip = col.name if colour == NEUTRAL else f"{col.name}码"
    chip_w = _width(chip, 10) + 4 * mm
    chip_x = w - PAD - chip_w - 0.5 * mm
    c.setLineWidth(0.8)
    c.roundRect(chip_x, band_base - 2.3 * mm, chip_w, 6 * mm, 1.5 * mm, stroke=1, fill=0)
    _draw_text(c, chip_x + chip_w / 2, band_base - 0.2 * mm, chip, 10, align="centre")

    # Static captions of the text column.
    g = _geometry()
    c.setFillColor(_MUTED)
    _draw_text(c, g.tx, g.caption_code_y, "编号", 7)
    _draw_text(c, g.tx, g.caption_ent_y, "企业", 7)
    _draw_text(c, g.tx, g.facility_y, "治理设施", 7)
    _draw_text(c, g.tx, g.outlet_y, "排放口", 7)
    c.setStrokeColor(_RULE)
    c.setLineWidth(0.5)
    c.line(g.tx, g.rule_y, g.tx + g.tw, g.rule_y)
    _draw_text(c, g.tx, _HINT_Y, _ellipsize("扫码查看更换与转移记录", 6.5, g.tw), 6.5)
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
_CODE_MIN = 9
_VALUE_SIZE = 10


def _split_code(code: str) -> tuple[str, str]:
    """Split a long code in two, preferring a separator near the middle."""
    mid = len(code) // 2
    seps = [i for i, ch in enumerate(code) if ch in "-_./ " and 0 < i < len(code) - 1]
    if seps:
        i = min(seps, key=lambda k: abs(k - mid))
        if abs(i - mid) <= len(code) // 4:
            return code[: i + 1], code[i + 1 :]
    return code[:mid], code[mid:]


def _draw_label(c: Canvas, spec: LabelSpec, x: float, y: float, g: _Geometry) -> None:
    c.saveState()
    c.translate(x, y)
    c.doForm(_label_form_name(spec.colour))
    _draw_qr(c, spec.url, g.qr_x, g.qr_y, g.qr_size)

    # All variable text in one text object.
    t = c.beginText()
    t.setFillColor(_TEXT)
    # 5 % slack: viewers without Helvetica substitute a slightly wider face.
    code_w = g.tw * 0.95
    code_size = _fit(spec.code, _CODE_SIZE, code_w, _CODE_MIN, LATIN_BOLD)
    # _fit scales the size to the width exactly; allow for rounding in that product.
    if _width(spec.code, code_size, LATIN_BOLD) <= code_w * (1 + 1e-9):
        t.setTextOrigin(g.tx, g.code_y)
        _text_out(t, spec.code, code_size, LATIN_BOLD)
    else:  # very long code: two lines rather than truncating the identifier
        first, second = _split_code(spec.code)
        size = min(
            _fit(first, _CODE_MIN, code_w, 5, LATIN_BOLD),
            _fit(second, _CODE_MIN, code_w, 5, LATIN_BOLD),
        )
        t.setTextOrigin(g.tx, g.code_y + size * 0.95)
        _text_out(t, first, size, LATIN_BOLD)
        t.setTextOrigin(g.tx, g.code_y)
        _text_out(t, second, size, LATIN_BOLD)
    ey = g.ent_first_y
    for line in _wrap(spec.enterprise or "—", _ENT_SIZE, g.tw, 2):
        t.setTextOrigin(g.tx, ey)
        _text_out(t, line, _ENT_SIZE)
        ey -= _ENT_SIZE * 1.25
    vx, vw = g.tx + g.value_dx, g.tw - g.value_dx
    for value, vy in ((spec.facility, g.facility_y), (spec.outlet, g.outlet_y)):
        value = _ellipsize(value or "—", 7, vw, LATIN_BOLD)
        t.setTextOrigin(vx, vy)
        _text_out(t, value, _fit(value, _VALUE_SIZE, vw, 7, LATIN_BOLD), LATIN_BOLD)
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
    total_w = _width(prefix, size) + sum(
        sw + 1.5 * mm + _width(text, size) + 5 * mm for _, text in items
    ) - 5 * mm
    lx = (PAGE_W - total_w) / 2
    c.setFillColor(_TEXT)
    _draw_text(c, lx, ly, prefix, size)
    lx += _width(prefix, size)
    for col, text in items:
        c.setFillColor(col.fill)
        c.roundRect(lx, ly - 0.6 * mm, sw, sw, 0.6 * mm, stroke=0, fill=1)
        lx += sw + 1.5 * mm
        c.setFillColor(_TEXT)
        _draw_text(c, lx, ly, text, size)
        lx += _width(text, size) + 5 * mm
    c.endForm()


def _draw_page_chrome(c: Canvas, page: int, pages: int, total: int) -> None:
    hy = PAGE_H - MARGIN_TOP - 5 * mm
    c.setFillColor(_TEXT)
    _draw_text(c, MARGIN_X, hy, "台州市碳箱码标签", 11)
    c.setFillColor(_MUTED)
    _draw_text(c, PAGE_W - MARGIN_X, hy, f"共 {total} 张  第 {page}/{pages} 页", 8, align="right")
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
