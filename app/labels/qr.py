"""Fast QR rendering for carbon box labels.

Symbols are byte mode, error level M, with a *fixed* mask pattern. Automatic mask
selection evaluates all eight masks with the penalty rules, which is what makes the
``qrcode`` library (and segno's default) take several milliseconds per code. The mask
only affects how "pleasant" the module pattern is for scanners; any of the eight masks
is valid per ISO/IEC 18004 and decodes fine. ASCII data (every label URL) is encoded by
:mod:`app.labels.qr_encode`, which does per version once what segno does per code;
anything else by segno.

Public helpers (all pure Python, no Flask):

* :func:`qr_matrix`  -> :class:`QRMatrix` (cached, immutable)
* :func:`qr_png`     -> PNG bytes (1-bit greyscale, written directly with zlib)
* :func:`qr_svg`     -> standalone SVG document bytes
"""

from __future__ import annotations

import functools
import struct
import zlib
from dataclasses import dataclass

import segno

from .qr_encode import encode_ascii
from .vector_qr import svg_path

__all__ = [
    "ERROR_LEVEL",
    "MASK",
    "QRMatrix",
    "qr_matrix",
    "qr_png",
    "qr_svg",
]

#: Error correction level: M (~15 % recovery) is robust enough for printed
#: labels and keeps a 65-character URL at version 5 (37x37 modules).
ERROR_LEVEL = "m"
#: Fixed mask pattern (see module docstring).
MASK = 0

_CACHE_SIZE = 4096
# matrix byte (0 light / 1 dark) -> the PNG's bit as a digit (1-bit greyscale: 1 white, 0 black)
_TO_DIGIT = b"10" + bytes(254)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True, slots=True)
class QRMatrix:
    """Module matrix of one QR symbol, without quiet zone.

    ``rows[y][x]`` is ``True`` for a dark module; row 0 is the top row.
    ``raw[y][x]`` is the same as an int (1 dark / 0 light).
    """

    data: str
    version: int
    error: str
    mask: int
    raw: tuple[bytes, ...]  # one bytes object per row, 0 = light, 1 = dark

    @property
    def size(self) -> int:
        """Modules per side (21 for version 1, +4 per version)."""
        return len(self.raw)

    @property
    def rows(self) -> tuple[tuple[bool, ...], ...]:
        """The modules as booleans (computed on access; use ``raw`` in hot paths)."""
        return tuple(tuple(b == 1 for b in row) for row in self.raw)

    def to_lists(self) -> list[list[bool]]:
        """A fresh, mutable ``list[list[bool]]`` copy of the modules."""
        return [[b == 1 for b in row] for row in self.raw]


def _check_data(data: str) -> None:
    if not isinstance(data, str):
        raise TypeError(f"QR data must be a str, got {type(data).__name__}")
    if not data:
        raise ValueError("QR data must not be empty")


@functools.lru_cache(maxsize=_CACHE_SIZE)
def qr_matrix(data: str) -> QRMatrix:
    """Encode ``data`` as a regular (non-micro) QR code, level M, fixed mask.

    Results are cached by ``data`` and immutable (tuples), so they can be
    shared safely.
    """
    _check_data(data)
    fast = encode_ascii(data)
    if fast is not None:
        version, raw = fast
        return QRMatrix(data=data, version=version, error=ERROR_LEVEL, mask=MASK, raw=raw)
    qr = segno.make(data, error=ERROR_LEVEL, mask=MASK, micro=False, boost_error=False)
    return QRMatrix(
        data=data,
        version=int(qr.version),
        error=str(qr.error).lower(),
        mask=int(qr.mask),
        raw=tuple(bytes(row) for row in qr.matrix),
    )


def _check_geometry(scale: int, border: int) -> None:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError("scale must be an int >= 1")
    if isinstance(border, bool) or not isinstance(border, int) or border < 0:
        raise ValueError("border must be an int >= 0")


@functools.lru_cache(maxsize=8)
def _spread(scale: int) -> tuple[bytes, ...]:
    """Byte of 8 pixels -> the ``scale`` bytes of those pixels each repeated ``scale`` times."""
    out = []
    for byte in range(256):
        digits = "".join(("1" if byte >> (7 - k) & 1 else "0") * scale for k in range(8))
        out.append(int(digits, 2).to_bytes(scale, "big"))
    return tuple(out)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def qr_png(data: str, scale: int = 8, border: int = 4) -> bytes:
    """Render ``data`` as a black-on-white 1-bit PNG.

    ``scale`` is pixels per module, ``border`` the quiet zone in modules
    (the standard asks for 4).

    The PNG is written directly: an image library would build an 8-bit image, scale it,
    convert it to 1 bit and filter it, for what is a few table look-ups on whole rows here.
    """
    _check_geometry(scale, border)
    matrix = qr_matrix(data)
    total = matrix.size + 2 * border
    # one digit per module, each row padded (light) to whole bytes, then one int for all rows
    padded = -(-total // 8) * 8
    blank = b"\x00" * padded
    pad_left = b"\x00" * border
    pad_right = b"\x00" * (padded - total + border)
    rows = [blank] * border + [pad_left + row + pad_right for row in matrix.raw] + [blank] * border
    digits = b"".join(rows).translate(_TO_DIGIT)
    packed = int(digits, 2).to_bytes(len(digits) // 8, "big")
    pixels = b"".join(map(_spread(scale).__getitem__, packed))
    stride_in, stride_out = padded // 8 * scale, -(-total * scale // 8)
    # Filter "None" on a row's first pixel line, "Up" (all zeros) on its repeats: deflate then
    # meets long runs of zeros, which it compresses fastest and smallest.
    repeat = b"\x02" + b"\x00" * stride_out
    scanlines = b"".join(
        [b"\x00" + pixels[r : r + stride_out] + repeat * (scale - 1) for r in range(0, len(pixels), stride_in)]
    )
    side = total * scale
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    return b"".join(
        [
            _PNG_SIGNATURE,
            _png_chunk(b"IHDR", header),
            # level 1: 5x faster than the default 6, for ~0.8 kB instead of ~0.55 kB
            _png_chunk(b"IDAT", zlib.compress(scanlines, 1)),
            _png_chunk(b"IEND", b""),
        ]
    )


def qr_svg(data: str, scale: int = 8, border: int = 4) -> bytes:
    """Render ``data`` as a standalone SVG document (UTF-8 bytes).

    The symbol is drawn in module units (``viewBox``) as a white background
    ``rect`` plus one ``path`` of the rows' dark runs (:mod:`app.labels.vector_qr`); ``width``/``height``
    are ``(size + 2*border) * scale`` CSS pixels.  ``shape-rendering`` is
    ``crispEdges`` so browsers do not anti-alias module edges.
    """
    _check_geometry(scale, border)
    matrix = qr_matrix(data)
    total = matrix.size + 2 * border
    px = total * scale
    d = svg_path(matrix.raw, border)
    svg = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" '
        f'width="{px}" height="{px}" viewBox="0 0 {total} {total}" '
        'shape-rendering="crispEdges">'
        f'<rect width="{total}" height="{total}" fill="#fff"/>'
        f'<path fill="#000" d="{d}"/>'
        "</svg>\n"
    )
    return svg.encode("utf-8")
