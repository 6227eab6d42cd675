"""Reading indicator values from JSON, CSV and XLSX into raw rows (no validation of values here).

Departments send spreadsheets with Chinese headers, systems send JSON with English keys: both
map onto the same fields. Each raw row keeps its place (the JSON list index, or the line of the
file with the header as line 1) so that every error can point at the row a person must fix.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

from app.common.errors import InvalidInput

FIELDS = ("county_code", "period", "indicator", "value", "source_department", "unit")
REQUIRED = ("county_code", "period", "indicator", "value", "source_department")

# Header aliases, compared after removing spaces, brackets and case.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "county_code": ("county_code", "county", "countycode", "县市区代码", "县（市、区）代码", "县(市、区)代码", "区县代码",
                    "行政区划代码", "县市区", "县（市、区）"),
    "period": ("period", "期间", "考核期间", "考核期", "时期"),
    "indicator": ("indicator", "indicator_number", "indicatornumber", "指标序号", "序号", "三级指标序号"),
    "value": ("value", "数值", "指标值", "值"),
    "source_department": ("source_department", "sourcedepartment", "source", "数据来源", "来源部门", "数据来源部门"),
    "unit": ("unit", "单位"),
}

XLSX_TYPES = {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
CSV_TYPES = {"text/csv", "application/csv", "text/plain", "application/vnd.ms-excel"}
MAX_ROWS = 10_000


def _key(header: str) -> str:
    return re.sub(r"[\s()（）\[\]_\-]", "", header).lower()


_ALIASES = {_key(alias): name for name, aliases in HEADER_ALIASES.items() for alias in aliases}


@dataclass
class RawRows:
    """Rows as read, each with its place; ``place_name`` says what the numbers mean."""

    rows: list[tuple[int, dict[str, Any]]]
    place_name: str  # "index" (JSON list, from 0) or "line" (file, header = line 1)
    ignored_columns: list[str] = field(default_factory=list)


def _map_header(headers: list[Any]) -> tuple[dict[int, str], list[str]]:
    mapping: dict[int, str] = {}
    ignored: list[str] = []
    seen: dict[str, str] = {}
    for position, header in enumerate(headers):
        text = "" if header is None else str(header).strip()
        if not text:
            continue
        name = _ALIASES.get(_key(text))
        if name is None:
            ignored.append(text)
            continue
        if name in seen:
            raise InvalidInput.field("file", f"columns {seen[name]!r} and {text!r} both mean {name}")
        seen[name] = text
        mapping[position] = name
    missing = [name for name in REQUIRED if name not in seen]
    if missing:
        raise InvalidInput(
            "The header row lacks required columns: " + ", ".join(missing),
            errors={"file": [f"missing column {name} ({' / '.join(HEADER_ALIASES[name][:1] + _zh(name))})"
                             for name in missing]},
        )
    return mapping, ignored


def _zh(name: str) -> tuple[str, ...]:
    return tuple(a for a in HEADER_ALIASES[name] if re.search(r"[\u4e00-\u9fff]", a))[:1]


def _table(header: list[Any], body: list[tuple[int, list[Any]]]) -> RawRows:
    mapping, ignored = _map_header(header)
    rows: list[tuple[int, dict[str, Any]]] = []
    for line, cells in body:
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue  # blank lines are not rows
        rows.append((line, {name: cells[pos] if pos < len(cells) else None for pos, name in mapping.items()}))
    if not rows:
        raise InvalidInput.field("file", "no data rows below the header")
    if len(rows) > MAX_ROWS:
        raise InvalidInput.field("file", f"at most {MAX_ROWS} rows per import")
    return RawRows(rows=rows, place_name="line", ignored_columns=ignored)


def read_json(payload: Any) -> RawRows:
    """A list of objects, or ``{"values": [...]}``. Unknown keys are an error (a typo must not pass)."""
    items = payload.get("values") if isinstance(payload, dict) and set(payload) == {"values"} else payload
    if not isinstance(items, list) or not items:
        raise InvalidInput.field("values", "a non-empty list of {county_code, period, indicator, value, "
                                           "source_department} is required")
    if len(items) > MAX_ROWS:
        raise InvalidInput.field("values", f"at most {MAX_ROWS} rows per import")
    rows: list[tuple[int, dict[str, Any]]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            rows.append((index, {"_row": "expected an object"}))
            continue
        row = {k: v for k, v in item.items() if k in FIELDS}
        unknown = sorted(set(item) - set(FIELDS))
        if unknown:
            row["_unknown"] = unknown
        rows.append((index, row))
    return RawRows(rows=rows, place_name="index")


def read_csv(data: bytes) -> RawRows:
    """UTF-8 (with or without BOM), else GB18030 (what Excel writes on a Chinese Windows); , ; or tab."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte sequence
        raise InvalidInput.field("file", "the CSV file is neither UTF-8 nor GB18030")
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    lines = list(csv.reader(io.StringIO(text), dialect))
    if not lines:
        raise InvalidInput.field("file", "the file is empty")
    return _table(lines[0], [(n, cells) for n, cells in enumerate(lines[1:], start=2)])


def read_xlsx(data: bytes) -> RawRows:
    """The first worksheet; its first row is the header."""
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        raise InvalidInput.field("file", f"not a readable XLSX workbook ({exc.__class__.__name__})") from exc
    try:
        sheet = workbook.worksheets[0]
        lines = [list(r) for r in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()
    if not lines:
        raise InvalidInput.field("file", "the worksheet is empty")
    return _table(lines[0], [(n, cells) for n, cells in enumerate(lines[1:], start=2)])


def read_upload(filename: str | None, content_type: str | None, data: bytes) -> RawRows:
    """Choose the reader by extension, then by content type, then by content (XLSX is a ZIP)."""
    name = (filename or "").lower()
    kind = (content_type or "").split(";")[0].strip().lower()
    if name.endswith(".xlsx") or kind in XLSX_TYPES:
        return read_xlsx(data)
    if name.endswith(".xls"):
        raise InvalidInput.field("file", "the old .xls format is not supported: save as .xlsx or .csv")
    if name.endswith(".csv") or name.endswith(".txt") or kind in CSV_TYPES:
        if data[:4] == b"PK\x03\x04":
            return read_xlsx(data)
        return read_csv(data)
    if data[:4] == b"PK\x03\x04":
        return read_xlsx(data)
    raise InvalidInput.field("file", "a .csv or .xlsx file is expected")
