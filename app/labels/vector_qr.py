"""A QR symbol as vector drawing operators (PDF path or SVG path data), without a loop per module.

Finding the runs of dark modules and formatting each as ``x y w h re`` in Python cost ~0.5 ms a
code, more than encoding it. Here every row is cut into bytes of 8 modules, and for each
(row, byte position) a table holds, for all 256 patterns of that byte, the operators drawing its
runs at that place. A symbol's path is then its packed rows mapped through those tables: one C-level
``map``, no Python per run. Runs crossing a byte boundary become two rectangles (≈ 25 % more
operators than runs merged across rows and bytes), which the page's Flate compression mostly
absorbs.

The tables (size x ceil(size / 8) x 256 strings, ~47,000 for the label URLs' version 5) are built
once per symbol size and kind, on first use. Pure Python, no Flask imports.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence

__all__ = ["pdf_path", "svg_path"]

_DARK_RUN = re.compile(rb"\x01+")
_TO_DIGIT = b"01" + bytes(254)  # matrix byte (0 light / 1 dark) -> ASCII digit, dark = 1


def _runs(byte: int) -> list[tuple[int, int]]:
    """(start, length) of the dark runs in a byte of 8 modules, most significant bit first."""
    bits = bytes((byte >> (7 - k)) & 1 for k in range(8))
    return [(m.start(), m.end() - m.start()) for m in _DARK_RUN.finditer(bits)]


_RUNS = tuple(_runs(b) for b in range(256))


def _pdf_op(x: int, y: int, w: int) -> str:
    return f"{x} {y} {w} 1 re "


@functools.lru_cache(maxsize=8)
def _tables(size: int, kind: str, border: int) -> tuple[tuple[str, ...], ...]:
    op: Callable[[int, int, int], str]
    if kind == "pdf":
        op = _pdf_op
    else:

        def op(x: int, y: int, w: int) -> str:
            return f"M{x + border} {y + border}h{w}v1h-{w}z"

    per_row = -(-size // 8)
    return tuple(
        tuple("".join([op(8 * c + start, y, length) for start, length in runs]) for runs in _RUNS)
        for y in range(size)
        for c in range(per_row)
    )


def _ops(rows: Sequence[bytes], kind: str, border: int) -> str:
    size = len(rows)
    pad = b"\x00" * (-size % 8)  # light modules up to a whole byte: no operators
    digits = b"".join([row + pad for row in rows]).translate(_TO_DIGIT)
    packed = int(digits, 2).to_bytes(len(digits) // 8, "big")
    return "".join(map(tuple.__getitem__, _tables(size, kind, border), packed))


def pdf_path(rows: Sequence[bytes]) -> str:
    """``x y w 1 re`` operators for the dark modules of a symbol's ``rows`` (0/1 bytes, top first),
    in module units: origin at the top-left module, y growing downwards (the caller's
    transformation flips it)."""
    return _ops(rows, "pdf", 0)


def svg_path(rows: Sequence[bytes], border: int) -> str:
    """SVG path data (``M x y h w v 1 h -w z``) for the dark modules, shifted by ``border``."""
    return _ops(rows, "svg", border)
