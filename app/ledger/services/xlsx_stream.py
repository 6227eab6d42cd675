"""A one-sheet XLSX written straight as XML into a zip, row by row, at flat memory.

openpyxl's write-only mode builds an object per cell and runs at ≈ 2,000 rows/s on the registry's
28 columns; a registry of 10⁶ rows would take minutes. An XLSX is a zip of a few small fixed XML
parts and one sheet: here the sheet's XML is written as the rows come (text as inline strings
``t="inlineStr"``, numbers as ``<v>``), in large pieces, through :meth:`zipfile.ZipFile.open` in
write mode (deflated on the fly, ZIP64 so that no size limit applies), so nothing grows with the
rows. openpyxl reads the result back in the tests.

Cells arrive as text already (``""`` for an empty cell); a *number* column's text is written as
the number it spells (the caller guarantees it is one), a *text* column's is XML-escaped with the
characters XML forbids removed. Values repeat a lot (parties, waste codes, states), so each column
remembers its rendered cells (:class:`BoundedMemo`, cleared when full: memory stays bounded).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from operator import getitem
from typing import IO
from xml.sax.saxutils import escape

# A column's kind: text (escaped; ``prepare``d first), text known to need no escaping (times),
# numbers.
TEXT, SAFE_TEXT, NUMBER = "text", "safe_text", "number"
ROWS_PER_WRITE = 1000  # rows joined into one write to the zip stream (≈ 1 MB of XML)
CACHE_SIZE = 2048  # rendered cells remembered per column

# Characters XML 1.0 does not allow (C0 controls but tab, LF and CR; surrogates; U+FFFE/FFFF).
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_NEEDS_ESCAPE = re.compile("[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml"'
    ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml"'
    ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml"'
    ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1"'
    ' Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"'
    ' Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    ' xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="{title}" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1"'
    ' Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"'
    ' Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2"'
    ' Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>'
    "</Relationships>"
)
# Style 0 the default, style 1 bold (the header row).
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
_SHEET_START = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<sheetViews><sheetView workbookViewId="0">'
    '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
    '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/>'
    "</sheetView></sheetViews><sheetData>"
)
_SHEET_END = "</sheetData></worksheet>"
_BOLD = ' s="1"'  # the header's style (cellXfs 1)
_EMPTY = "<c/>"


def xml_text(value: str) -> str:
    """Text as XML character data: escaped, the characters XML forbids removed."""
    return escape(_ILLEGAL_XML.sub("", value))


def _inline(value: str, style: str = "") -> str:
    """A text cell's XML (``<c … t="inlineStr">…</c>``)."""
    text = xml_text(value) if _NEEDS_ESCAPE.search(value) else value
    space = ' xml:space="preserve"' if text[:1].isspace() or text[-1:].isspace() else ""
    return f'<c{style} t="inlineStr"><is><t{space}>{text}</t></is></c>'


class BoundedMemo(dict[str, str]):
    """``memo[value]`` is ``render(value)``, remembered for at most ``size`` values (all forgotten
    when full: memory stays bounded). A value seen before costs one dictionary lookup in C, which
    is what makes the exports fast: most cells of a registry repeat (parties, codes, states)."""

    __slots__ = ("render", "size")

    def __init__(self, render: Callable[[str], str], size: int = CACHE_SIZE):
        super().__init__()
        self.render = render
        self.size = size

    def __missing__(self, value: str) -> str:
        if len(self) >= self.size:
            self.clear()
        rendered = self[value] = self.render(value)
        return rendered


def _renderer(kind: str, prepare: Callable[[str], str]) -> Callable[[str], str]:
    """A column's cell XML from its text (``""``: an empty ``<c/>`` that keeps the columns in place)."""
    if kind == NUMBER:
        return lambda value: f"<c><v>{value}</v></c>" if value else _EMPTY
    if kind == SAFE_TEXT:
        return lambda value: f'<c t="inlineStr"><is><t>{value}</t></is></c>' if value else _EMPTY
    return lambda value: _inline(prepare(value)) if value else _EMPTY


def sheet_title(title: str) -> str:
    """A valid sheet name: at most 31 characters, none of ``[]:*?/\\``."""
    return re.sub(r"[\[\]:*?/\\]", " ", title)[:31].strip() or "Sheet1"


def write_xlsx(
    fp: IO[bytes],
    title: str,
    header: Sequence[str],
    kinds: Sequence[str],
    rows: Iterable[Sequence[str]],
    prepare: Callable[[str], str] = str,
) -> int:
    """Writes the header (bold, frozen) and ``rows`` (cells as text, ``""`` when empty; one
    ``kinds`` entry per column) as an XLSX into ``fp``; returns the number of rows written.
    ``prepare`` is applied to the text of :data:`TEXT` columns first (formula-safety, say).

    Cells carry no reference (``r`` is optional in SpreadsheetML: a cell is the next column of its
    row), so a cell's XML depends on its value alone and a repeated value's is reused."""
    memos = [BoundedMemo(_renderer(kind, prepare)) for kind in kinds]
    count = 0
    with zipfile.ZipFile(fp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
        zf.writestr("_rels/.rels", _ROOT_RELS)
        zf.writestr("xl/workbook.xml", _WORKBOOK.format(title=escape(sheet_title(title), {'"': "&quot;"})))
        zf.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        zf.writestr("xl/styles.xml", _STYLES)
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            head = "".join(_inline(text, _BOLD) for text in header)
            sheet.write((_SHEET_START + f'<row r="1">{head}</row>').encode())
            pending: list[str] = []
            for row_number, row in enumerate(rows, start=2):
                if len(row) != len(memos):
                    raise ValueError(f"row {row_number} has {len(row)} cells, not {len(memos)}")
                pending.append(f'<row r="{row_number}">{"".join(map(getitem, memos, row))}</row>')
                count += 1
                if len(pending) >= ROWS_PER_WRITE:
                    sheet.write("".join(pending).encode())
                    pending.clear()
            pending.append(_SHEET_END)
            sheet.write("".join(pending).encode())
    return count
