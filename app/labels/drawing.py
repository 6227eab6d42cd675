"""Low-level drawing shared by the label sheets (:mod:`app.labels.pdf`, :mod:`app.labels.batch_pdf`).

A 1,000-label sheet is ~60,000 drawing calls through reportlab's canvas, which formats every number
with a pure-Python ``fp_str`` (its C accelerator is not installed) and tracks state it then never
needs. What repeats is therefore written once as PDF operators and added as literals: the QR
symbol's placement, a label's origin, the box code in Helvetica. The canvas keeps what it is good
at: fonts, glyph subsets, forms, the document's structure.

Pure reportlab, no Flask imports.
"""

from __future__ import annotations

import functools
import io
import zlib

from reportlab.lib.colors import Color, white
from reportlab.lib.pagesizes import A4
from reportlab.lib.rl_accel import fp_str
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas

from .layout import BAND_H, FRAME, LABEL_H, LABEL_W, QR_QUIET, RADIUS
from .qr import qr_matrix
from .vector_qr import pdf_path

__all__ = ["ascii_text", "draw_qr", "label_frame", "latin_width", "new_canvas", "num", "origin"]


class _Flate:
    """A Flate stream filter at a chosen compression level (reportlab's is level 6, ASCII85
    wrapped when ``rl_config.useA85``)."""

    pdfname = "FlateDecode"

    def __init__(self, level: int) -> None:
        self.level = level

    def encode(self, text: str | bytes) -> bytes:
        return zlib.compress(text.encode("utf8") if isinstance(text, str) else text, self.level)

    def decode(self, encoded: bytes) -> bytes:
        return zlib.decompress(encoded)


#: Level 3: a 1,000-label sheet's 5.5 MB of operators compress in 0.08 s instead of 0.25 s at
#: level 6, for a file 30 % larger (0.7 MiB; level 1 is no faster and twice the size). The streams
#: are binary: ASCII85 (a 7-bit transport encoding) would cost ~0.2 s in pure Python and make the
#: file 25 % larger.
FAST_FLATE = _Flate(3)


def new_canvas(buf: io.BytesIO) -> Canvas:
    """An A4 canvas whose streams (pages, forms, font subsets) are all compressed by
    :data:`FAST_FLATE`. Set on this document only: reportlab's own compression (switched off here)
    follows process-wide settings, and the process's other PDFs keep them."""
    c = Canvas(buf, pagesize=A4, pageCompression=0)
    # Streams without filters of their own get the document's default ones (reportlab's PDFStream).
    c._doc.defaultStreamFilters = [FAST_FLATE]
    return c


@functools.lru_cache(maxsize=1024)
def num(value: float) -> str:
    """A number as reportlab writes it (``fp_str``), memoised: sizes and positions repeat."""
    return str(fp_str(value))


@functools.lru_cache(maxsize=64)
def origin(x: float, y: float) -> str:
    """Save the graphics state and move the origin to (x, y); the caller closes with ``Q``."""
    return f"q 1 0 0 1 {fp_str(x, y)} cm "


@functools.lru_cache(maxsize=64)
def _qr_placement(n: int, x: float, y: float, size: float) -> str:
    """Graphics state for a symbol of ``n`` modules in the square at (x, y) of side ``size``
    (quiet zone included): black, and the module coordinate system of :func:`pdf_path`
    (origin at the top-left module, 1 unit = 1 module, y growing downwards)."""
    module = size / (n + 2 * QR_QUIET)
    top = y + size - QR_QUIET * module
    left = x + QR_QUIET * module
    return f"q 0 g {fp_str(module, 0, 0, -module, left, top)} cm "


def draw_qr(c: Canvas, data: str, x: float, y: float, size: float) -> None:
    """Draw the QR for ``data`` as vector rectangles into the square with
    lower-left corner (x, y) and side ``size`` (quiet zone included)."""
    matrix = qr_matrix(data)
    # One path of "re" operators filled once, inside q/Q.
    c.addLiteral(_qr_placement(matrix.size, x, y, size) + pdf_path(matrix.raw) + "f Q")


@functools.cache
def _widths(font: str) -> tuple[float, ...]:
    """Glyph widths (per 1,000 units of size) of a standard Type 1 font by character code; its
    encoding (WinAnsi) agrees with ASCII on printable characters."""
    return tuple(pdfmetrics.getFont(font).widths)


def latin_width(text: str, font: str) -> float:
    """Width at size 1 of printable-ASCII ``text`` in the standard font ``font``."""
    return sum(map(_widths(font).__getitem__, text.encode("ascii"))) / 1000


_ESCAPE = str.maketrans({"\\": "\\\\", "(": "\\(", ")": "\\)"})


def ascii_text(internal_font: str, size: float, x: float, y: float, text: str) -> str:
    """A text object showing printable-ASCII ``text`` at (x, y) in a standard font, by the name
    the document gave it (``Canvas._doc.getInternalFontName``, e.g. ``/F2``)."""
    return f"BT {internal_font} {num(size)} Tf 1 0 0 1 {num(x)} {num(y)} Tm ({text.translate(_ESCAPE)}) Tj ET"


def label_frame(c: Canvas, fill: Color) -> float:
    """A label's frame and title band in ``fill`` around its white body, drawn at the origin (box
    labels and bag labels alike); the baseline of the band's 12 pt title is returned."""
    c.setFillColor(fill)
    c.roundRect(0, 0, LABEL_W, LABEL_H, RADIUS, stroke=0, fill=1)
    c.setFillColor(white)
    c.roundRect(FRAME, FRAME, LABEL_W - 2 * FRAME, LABEL_H - BAND_H - FRAME, RADIUS / 2, stroke=0, fill=1)
    return LABEL_H - BAND_H + (BAND_H - 12) / 2 + 1.5
