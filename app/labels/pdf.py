"""Printable A4 label sheets for carbon box codes (碳箱码).

:func:`label_sheet_pdf` lays out 8 labels per A4 page (2 columns x 4 rows,
each 92 x 60.75 mm).  Every label has a frame and title band in the box's colour,
a vector QR code (one path of ``re`` rectangles, no raster images), the box code in
large type, the enterprise name and facility/outlet numbers in Chinese.  Each
page carries a Chinese colour legend.

Chinese text uses the CJK TrueType font shipped in :mod:`app.fonts` (WenQuanYi
Micro Hei, GB 2312 subset); reportlab embeds the glyphs a sheet uses, so every
viewer and printer shows them without a font of its own.  Codes and numbers
stay in Helvetica (one of the standard 14 fonts every viewer has).

Pure Python, no Flask imports. The sheet's geometry is :mod:`app.labels.layout`, the mixed
Chinese/Latin text helpers :mod:`app.labels.text`, the literal operators and the document's
compression :mod:`app.labels.drawing`; this module keeps the styles, the spec and the drawing.
A 1,000-label sheet takes ~0.3 s of CPU (``scripts/bench_labels.py``).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reportlab.lib.colors import Color, HexColor, white
from reportlab.lib.rl_accel import fp_str
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.pdfgen.textobject import PDFTextObject

from app.boxes.states import COLOUR_ZH, Colour

from .drawing import ascii_text, draw_qr, label_frame, latin_width, new_canvas, origin
from .layout import (
    CODE_MIN,
    CODE_SIZE,
    ENT_SIZE,
    HINT_Y,
    LABEL_H,
    LABEL_W,
    LABELS_PER_PAGE,
    LEGEND_H,
    MARGIN_BOTTOM,
    MARGIN_TOP,
    MARGIN_X,
    PAD,
    PAGE_H,
    PAGE_W,
    VALUE_SIZE,
    geometry,
    label_origin,
)
from .text import LATIN_BOLD, draw_text, ellipsize, ensure_fonts, fit, text_out, width, wrap

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
    Colour.YELLOW: _Colour(
        HexColor("#F2C200"), HexColor("#2B2300"), COLOUR_ZH[Colour.YELLOW], "预警（即将更换或轻度异常）"
    ),
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
_TEXT_RG = f"{fp_str(*_TEXT.rgb())} rg"  # _TEXT as a fill colour operator
_LEGEND_FORM = "TxLegend"


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
            raise ValueError(f"LabelSpec.colour must be one of {sorted(_STYLES)}, got {self.colour!r}")


def page_count(n_labels: int) -> int:
    """Number of A4 pages :func:`label_sheet_pdf` produces for ``n_labels``."""
    return max(1, math.ceil(n_labels / LABELS_PER_PAGE))


# ---------------------------------------------------------------- drawing
def _label_form_name(colour: str) -> str:
    return f"TxLabel_{colour}"


def _define_label_form(c: Canvas, colour: str) -> None:
    """Everything on a label that depends only on its colour (frame, band,
    title, captions) as a reusable Form XObject, drawn at the origin.

    Reusing one form per colour instead of re-emitting ~15 drawing calls per
    label keeps the content streams small and the sheet fast to generate."""
    col = _STYLES[colour]
    w = LABEL_W
    c.beginForm(_label_form_name(colour), 0, 0, w, LABEL_H)
    # Coloured frame + title band, white body; the title band's title (faux-bold via fill+stroke)
    # and colour chip.
    band_base = label_frame(c, col.fill)
    c.setFillColor(col.ink)
    c.setStrokeColor(col.ink)
    c.setLineWidth(0.35)
    t = c.beginText(PAD + 1 * mm, band_base)
    t.setTextRenderMode(2)
    text_out(t, TITLE, 12)
    t.setTextRenderMode(0)
    c.drawText(t)
    chip = col.name if colour == NEUTRAL else f"{col.name}码"
    chip_w = width(chip, 10) + 4 * mm
    chip_x = w - PAD - chip_w - 0.5 * mm
    c.setLineWidth(0.8)
    c.roundRect(chip_x, band_base - 2.3 * mm, chip_w, 6 * mm, 1.5 * mm, stroke=1, fill=0)
    draw_text(c, chip_x + chip_w / 2, band_base - 0.2 * mm, chip, 10, align="centre")

    # Static captions of the text column.
    g = geometry()
    c.setFillColor(_MUTED)
    draw_text(c, g.tx, g.caption_code_y, "编号", 7)
    draw_text(c, g.tx, g.caption_ent_y, "企业", 7)
    draw_text(c, g.tx, g.facility_y, "治理设施", 7)
    draw_text(c, g.tx, g.outlet_y, "排放口", 7)
    c.setStrokeColor(_RULE)
    c.setLineWidth(0.5)
    c.line(g.tx, g.rule_y, g.tx + g.tw, g.rule_y)
    draw_text(c, g.tx, HINT_Y, ellipsize("扫码查看更换与转移记录", 6.5, g.tw), 6.5)
    c.endForm()


def _split_code(code: str) -> tuple[str, str]:
    """Split a long code in two, preferring a separator near the middle."""
    mid = len(code) // 2
    seps = [i for i, ch in enumerate(code) if ch in "-_./ " and 0 < i < len(code) - 1]
    if seps:
        i = min(seps, key=lambda k: abs(k - mid))
        if abs(i - mid) <= len(code) // 4:
            return code[: i + 1], code[i + 1 :]
    return code[:mid], code[mid:]


class _Sheet:
    """One document's drawing of labels: its canvas, the label geometry, the internal name of the
    codes' font, and the text of the enterprise/facility/outlet column, which repeats across a
    sheet (one enterprise's boxes) and is laid out once per distinct value."""

    def __init__(self, c: Canvas) -> None:
        self.c = c
        self.g = geometry()
        self.code_font = c._doc.getInternalFontName(LATIN_BOLD)
        self.facts: dict[tuple[str, str, str], str] = {}
        self.on_page: set[str] = set()  # forms drawn on the current page

    def new_page(self) -> None:
        self.on_page.clear()

    def form(self, name: str) -> None:
        """Draw the form ``name``: through the canvas the first time on a page (which lists it in
        the page's resources), as its ``Do`` operator after that."""
        if name in self.on_page:
            self.c.addLiteral(f"/{self.c._doc.getXObjectName(name)} Do")
        else:
            self.c.doForm(name)
            self.on_page.add(name)

    def text_block(self, draw: Callable[[PDFTextObject], None]) -> str:
        """The operators of a text object ``draw`` fills (fonts and glyph subsets are registered
        with this document as they are used, so the code is valid anywhere in it)."""
        t = self.c.beginText()
        draw(t)
        return str(t.getCode())

    def code_text(self, code: str) -> str:
        g = self.g
        code_w = g.tw * 0.95  # 5 % slack: viewers without Helvetica substitute a wider face
        if code.isascii() and code.isprintable():
            # The usual case, written directly: the largest size up to CODE_SIZE at which the
            # code fits the column, if that is at least CODE_MIN.
            w = latin_width(code, LATIN_BOLD)
            size = CODE_SIZE if w * CODE_SIZE <= code_w else code_w / w
            if size >= CODE_MIN:
                return ascii_text(self.code_font, size, g.tx, g.code_y, code)

        def draw(t: PDFTextObject) -> None:
            code_size = fit(code, CODE_SIZE, code_w, CODE_MIN, LATIN_BOLD)
            # fit scales the size to the width exactly; allow for rounding in that product.
            if width(code, code_size, LATIN_BOLD) <= code_w * (1 + 1e-9):
                t.setTextOrigin(g.tx, g.code_y)
                text_out(t, code, code_size, LATIN_BOLD)
            else:  # very long code: two lines rather than truncating the identifier
                first, second = _split_code(code)
                size = min(
                    fit(first, CODE_MIN, code_w, 5, LATIN_BOLD),
                    fit(second, CODE_MIN, code_w, 5, LATIN_BOLD),
                )
                t.setTextOrigin(g.tx, g.code_y + size * 0.95)
                text_out(t, first, size, LATIN_BOLD)
                t.setTextOrigin(g.tx, g.code_y)
                text_out(t, second, size, LATIN_BOLD)

        return self.text_block(draw)

    def facts_text(self, enterprise: str, facility: str, outlet: str) -> str:
        key = (enterprise, facility, outlet)
        text = self.facts.get(key)
        if text is not None:
            return text
        g = self.g

        def draw(t: PDFTextObject) -> None:
            ey = g.ent_first_y
            for line in wrap(enterprise or "—", ENT_SIZE, g.tw, 2):
                t.setTextOrigin(g.tx, ey)
                text_out(t, line, ENT_SIZE)
                ey -= ENT_SIZE * 1.25
            vx, vw = g.tx + g.value_dx, g.tw - g.value_dx
            for value, vy in ((facility, g.facility_y), (outlet, g.outlet_y)):
                value = ellipsize(value or "—", 7, vw, LATIN_BOLD)
                t.setTextOrigin(vx, vy)
                text_out(t, value, fit(value, VALUE_SIZE, vw, 7, LATIN_BOLD), LATIN_BOLD)

        text = self.facts[key] = self.text_block(draw)
        return text

    def label(self, spec: LabelSpec, x: float, y: float) -> None:
        """One label at (x, y): the frame is a form, the QR a path, the texts text objects; all
        written as literals inside one q/Q (see :mod:`app.labels.drawing`)."""
        c, g = self.c, self.g
        c.addLiteral(origin(x, y))
        self.form(_label_form_name(spec.colour))
        draw_qr(c, spec.url, g.qr_x, g.qr_y, g.qr_size)
        facts = self.facts_text(spec.enterprise, spec.facility, spec.outlet)
        c.addLiteral(f"{_TEXT_RG} {self.code_text(spec.code)} {facts} Q")


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
    total_w = width(prefix, size) + sum(sw + 1.5 * mm + width(text, size) + 5 * mm for _, text in items) - 5 * mm
    lx = (PAGE_W - total_w) / 2
    c.setFillColor(_TEXT)
    draw_text(c, lx, ly, prefix, size)
    lx += width(prefix, size)
    for col, text in items:
        c.setFillColor(col.fill)
        c.roundRect(lx, ly - 0.6 * mm, sw, sw, 0.6 * mm, stroke=0, fill=1)
        lx += sw + 1.5 * mm
        c.setFillColor(_TEXT)
        draw_text(c, lx, ly, text, size)
        lx += width(text, size) + 5 * mm
    c.endForm()


def _draw_page_chrome(c: Canvas, page: int, pages: int, total: int) -> None:
    hy = PAGE_H - MARGIN_TOP - 5 * mm
    c.setFillColor(_TEXT)
    draw_text(c, MARGIN_X, hy, "台州市碳箱码标签", 11)
    c.setFillColor(_MUTED)
    draw_text(c, PAGE_W - MARGIN_X, hy, f"共 {total} 张  第 {page}/{pages} 页", 8, align="right")
    c.setStrokeColor(_RULE)
    c.setLineWidth(0.6)
    c.line(MARGIN_X, hy - 2.5 * mm, PAGE_W - MARGIN_X, hy - 2.5 * mm)
    c.doForm(_LEGEND_FORM)


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
    ensure_fonts()
    return _render(labels)


def _render(labels: list[LabelSpec]) -> bytes:
    buf = io.BytesIO()
    c = new_canvas(buf)
    c.setTitle("碳箱码标签")
    c.setSubject("活性炭吸附箱二维码标签")
    c.setCreator("tanxiang")

    for colour in sorted({spec.colour for spec in labels}):
        _define_label_form(c, colour)
    _define_legend_form(c)
    sheet = _Sheet(c)

    pages = page_count(len(labels))
    for p in range(pages):
        _draw_page_chrome(c, p + 1, pages, len(labels))
        chunk = labels[p * LABELS_PER_PAGE : (p + 1) * LABELS_PER_PAGE]
        for i, spec in enumerate(chunk):
            sheet.label(spec, *label_origin(i))
        c.showPage()
        sheet.new_page()
    c.save()
    return buf.getvalue()
