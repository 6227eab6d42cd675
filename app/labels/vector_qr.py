"""A QR symbol as vector drawing operators (PDF path or SVG path data), without a loop per module.

Finding the runs of dark modules and formatting each as ``x y w h re`` in Python cost ~0.5 ms a
code, more than encoding it. Here every row is cut into bytes of 8 modules, and for each
(row, byte position) a table holds, for all 256 patterns of that byte, the operators drawing its
runs at that place. A symbol's path is then its packed rows mapped through those tables: one C-level
``map``, no Python per run. Runs crossing a byte boundary become two rectangles (≈ 25 % more
operators than runs merged across rows and bytes; a few kB a label before compression).

The tables (size x ceil(size / 8) x 256 strings, ~47,000 for the label URLs' version 5, ~4 MB) are
built once per process, symbol size and kind, on first use (~0.1 s). Pure Python, no Flask imports.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence

__all__ = ["TABLE_MAX_SIZE", "pdf_path", "svg_path"]

_DARK_RUN = re.compile(rb"\x01+")
_TO_DIGIT = b"01" + bytes(254)  # matrix byte (0 light / 1 dark) -> ASCII digit, dark = 1


def _runs(byte: int) -> list[tuple[int, int]]:
    """(start, length) of the dark runs in a byte of 8 modules, most significant bit first."""
    bits = bytes((byte >> (7 - k)) & 1 for k in range(8))
    return [(m.start(), m.end() - m.start()) for m in _DARK_RUN.finditer(bits)]


_RUNS = tuple(_runs(b) for b in range(256))


#: Largest symbol drawn through tables (version 7, 45 modules: ~70,000 strings, ~0.15 s to build).
#: Label URLs are versions 4-5; anything bigger is rare and drawn run by run.
TABLE_MAX_SIZE = 45


def _op(kind: str, border: int) -> Callable[[int, int, int], str]:
    """The operator drawing ``w`` dark modules from module (x, y)."""
    if kind == "pdf":
        return lambda x, y, w: f"{x} {y} {w} 1 re "
    return lambda x, y, w: f"M{x + border} {y + border}h{w}v1h-{w}z"


@functools.lru_cache(maxsize=4)
def _tables(size: int, kind: str, border: int) -> tuple[tuple[str, ...], ...]:
    op = _op(kind, border)
    per_row = -(-size // 8)
    return tuple(
        tuple("".join([op(8 * c + start, y, length) for start, length in runs]) for runs in _RUNS)
        for y in range(size)
        for c in range(per_row)
    )


def _ops(rows: Sequence[bytes], kind: str, border: int) -> str:
    size = len(rows)
    if size > TABLE_MAX_SIZE:
        op = _op(kind, border)
        return "".join(
            [op(m.start(), y, m.end() - m.start()) for y, row in enumerate(rows) for m in _DARK_RUN.finditer(row)]
        )
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
