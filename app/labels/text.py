"""Mixed Chinese/Latin text for the label sheets: printable ASCII in Helvetica, everything else
in the shipped CJK font (:mod:`app.fonts`); widths, fitting, ellipsis and wrapping.

Pure Python (reportlab), no Flask imports. Used by :mod:`app.labels.pdf`.
"""

from __future__ import annotations

import re

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas
from reportlab.pdfgen.textobject import PDFTextObject

from app.fonts import CJK_FONT, cjk_font

LATIN_BOLD = "Helvetica-Bold"
LATIN = "Helvetica"

_fonts_ready = False


def ensure_fonts() -> None:
    global _fonts_ready
    if not _fonts_ready:
        cjk_font()
        _fonts_ready = True


_ASCII_OR_NOT = re.compile(r"[\x20-\x7e]+|[^\x20-\x7e]+")


def runs(text: str, latin: str) -> list[tuple[str, str]]:
    """Split ``text`` into (segment, font) runs: printable ASCII in the Latin
    font ``latin``, everything else in the CJK font.

    Helvetica for ASCII keeps codes, numbers and English names crisp and
    the layout identical to what it was with the CID font."""
    return [(seg, latin if seg[0] <= "~" and seg[0] >= " " else CJK_FONT) for seg in _ASCII_OR_NOT.findall(text)]


def width(text: str, size: float, latin: str = LATIN) -> float:
    """Width of mixed Chinese/Latin ``text`` as drawn by :func:`text_out`."""
    return sum(pdfmetrics.stringWidth(seg, font, size) for seg, font in runs(text, latin))


def text_out(t: PDFTextObject, text: str, size: float, latin: str = LATIN) -> None:
    """Append mixed Chinese/Latin ``text`` at the text object's cursor."""
    for seg, font in runs(text, latin):
        t.setFont(font, size)
        t.textOut(seg)


def draw_text(
    c: Canvas,
    x: float,
    y: float,
    text: str,
    size: float,
    latin: str = LATIN,
    align: str = "left",
) -> None:
    if align == "right":
        x -= width(text, size, latin)
    elif align == "centre":
        x -= width(text, size, latin) / 2
    t = c.beginText(x, y)
    text_out(t, text, size, latin)
    c.drawText(t)


def fit(text: str, size: float, max_w: float, min_size: float, latin: str = LATIN) -> float:
    """Largest font size <= ``size`` (>= ``min_size``) at which ``text`` fits."""
    w = width(text, size, latin)
    if w <= max_w:
        return size
    return max(min_size, size * max_w / w)


def ellipsize(text: str, size: float, max_w: float, latin: str = LATIN) -> str:
    if width(text, size, latin) <= max_w:
        return text
    while text and width(text + "…", size, latin) > max_w:
        text = text[:-1]
    return text.rstrip() + "…"


def wrap(text: str, size: float, max_w: float, max_lines: int, latin: str = LATIN) -> list[str]:
    """Character-based wrapping (right for Chinese; keeps ASCII words whole
    when a space is reasonably close); the last line is ellipsized if the text
    is too long."""
    text = " ".join(text.split())
    lines: list[str] = []
    rest = text
    while rest and len(lines) < max_lines:
        if len(lines) == max_lines - 1 or width(rest, size, latin) <= max_w:
            lines.append(ellipsize(rest, size, max_w, latin))
            break
        lo, hi = 1, len(rest)  # longest prefix that fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if width(rest[:mid], size, latin) <= max_w:
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
