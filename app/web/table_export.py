"""CSV and XLSX downloads of a page's list (the regulator's lists), as the page shows it.

The same care as the statistics exports (app/statistics/exports.py): UTF-8 with a BOM for Excel
on Chinese Windows, a text that a spreadsheet would run as a formula kept as text (leading
apostrophe in the CSV, a string cell in the XLSX), control characters replaced. The headers come
translated from the view; this module does not know the language.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from openpyxl import Workbook
from openpyxl.cell.cell import TYPE_STRING
from openpyxl.styles import Font

from app.statistics.exports import FORMULA_START, clean_text

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def safe_cell(value: Any) -> Any:
    """A cell value: text defused (see the module), Decimals as numbers, None as empty."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = clean_text(value)
        return "'" + value if value.lstrip(" ").startswith(FORMULA_START) else value
    if isinstance(value, Decimal):
        return float(value)
    return value


def to_csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    writer.writerows([safe_cell(v) for v in row] for row in rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = clean_text(title)[:31] or "list"
    ws.append([safe_cell(h) for h in header])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append([safe_cell(v) for v in row])
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = TYPE_STRING  # never a formula, whatever the text starts with
    for column in ws.columns:
        letter = column[0].column_letter
        ws.column_dimensions[letter].width = min(48, max(10, *(len(str(c.value or "")) * 1.6 for c in column)))
    ws.freeze_panes = "A2"
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def content_disposition(ascii_name: str, utf8_name: str) -> str:
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(utf8_name)}"
