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
    "county_code": (
        "county_code",
        "county",
        "countycode",
        "县市区代码",
        "县（市、区）代码",
        "县(市、区)代码",
        "区县代码",
        "行政区划代码",
        "县市区",
        "县（市、区）",
    ),
    "period": ("period", "期间", "考核期间", "考核期", "时期"),
    "indicator": ("indicator", "indicator_number", "indicatornumber", "指标序号", "序号", "三级指标序号"),
    "value": ("value", "数值", "指标值", "值"),
    "source_department": ("source_department", "sourcedepartment", "source", "数据来源", "来源部门", "数据来源部门"),
    "unit": ("unit", "单位"),
}

XLSX_TYPES = {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
CSV_TYPES = {"text/csv", "application/csv", "text/plain", "application/vnd.ms-excel"}
MAX_ROWS = 10_000
# 32 indicators × 9 counties × 5 periods is < 1,500 rows; 10,000 rows of a spreadsheet are < 2 MB.
MAX_BYTES = 5 * 1024 * 1024
MAX_COLUMNS = 200
# A title row or two above the header ("台州市减污降碳协同指数数据（2025年）") is common in the
# departments' sheets: the header is the first of these rows that names every required column.
HEADER_SEARCH_ROWS = 10


class FileTooLarge(InvalidInput):
    status = 413
    title = "Payload too large"


@dataclass(frozen=True)
class Formula:
    """A spreadsheet cell holding a formula whose result was never saved (e.g. a file written by a
    program rather than by Excel): there is no value to import, and the row must say why."""

    text: str


@dataclass(frozen=True)
class Percent:
    """A number shown as a percentage in the spreadsheet (cell 0.923 formatted "0.0%" shows 92.3%):
    the person typed 92.3 %, so the value is 92.3 with the unit %."""

    value: float


def _key(header: str) -> str:
    return re.sub(r"[\s()（）\[\]_\-]", "", header).lower()


_ALIASES = {_key(alias): name for name, aliases in HEADER_ALIASES.items() for alias in aliases}


@dataclass
class RawRows:
    """Rows as read, each with its place; ``place_name`` says what the numbers mean."""

    rows: list[tuple[int, dict[str, Any]]]
    place_name: str  # "index" (JSON list, from 0) or "line" (file, header = line 1)
    ignored_columns: list[str] = field(default_factory=list)
    columns: dict[str, int] = field(default_factory=dict)  # field → position in a file's rows


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
            errors={
                "file": [
                    f"missing column {name} ({' / '.join(HEADER_ALIASES[name][:1] + _zh(name))})" for name in missing
                ]
            },
        )
    return mapping, ignored


def _zh(name: str) -> tuple[str, ...]:
    return tuple(a for a in HEADER_ALIASES[name] if re.search(r"[\u4e00-\u9fff]", a))[:1]


def _blank_cells(cells: list[Any]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def _is_header(cells: list[Any]) -> bool:
    names = {_ALIASES.get(_key(str(c).strip())) for c in cells if c is not None and str(c).strip()}
    return all(name in names for name in REQUIRED)


def _table(lines) -> RawRows:
    """``lines``: (line number, cells) in file order, read lazily. The header is the first line
    naming every required column among the first few non-blank lines (title rows above it are
    skipped), else the first non-blank line (whose missing columns are then reported)."""
    lines = iter(lines)
    header: list[Any] | None = None
    skipped: list[tuple[int, list[Any]]] = []
    for line, cells in lines:
        if _blank_cells(cells):
            continue
        if _is_header(cells):
            header = cells
            break
        skipped.append((line, cells))
        if len(skipped) >= HEADER_SEARCH_ROWS:
            break
    if header is None:
        if not skipped:
            raise InvalidInput.field("file", "the file is empty")
        _map_header(skipped[0][1])  # raises: which required columns the first line lacks
        raise InvalidInput.field("file", "no header row")  # pragma: no cover - _map_header raised
    mapping, ignored = _map_header(header)
    rows: list[tuple[int, dict[str, Any]]] = []
    for line, cells in lines:
        if _blank_cells(cells):
            continue  # blank lines are not rows
        if len(rows) >= MAX_ROWS:
            raise InvalidInput.field("file", f"at most {MAX_ROWS} rows per import")
        rows.append((line, {name: cells[pos] if pos < len(cells) else None for pos, name in mapping.items()}))
    if not rows:
        raise InvalidInput.field("file", "no data rows below the header")
    return RawRows(
        rows=rows, place_name="line", ignored_columns=ignored, columns={name: pos for pos, name in mapping.items()}
    )


def too_large() -> FileTooLarge:
    message = f"at most {MAX_BYTES // (1024 * 1024)} MB per import (about {MAX_ROWS} rows)"
    return FileTooLarge(f"file: {message}", errors={"file": [message]})


def check_size(data: bytes) -> None:
    if len(data) > MAX_BYTES:
        raise too_large()


def read_json(payload: Any) -> RawRows:
    """A list of objects, or ``{"values": [...]}``. Unknown keys are an error (a typo must not pass)."""
    items = payload.get("values") if isinstance(payload, dict) and set(payload) == {"values"} else payload
    if not isinstance(items, list) or not items:
        raise InvalidInput.field(
            "values", "a non-empty list of {county_code, period, indicator, value, source_department} is required"
        )
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


def _decode(data: bytes) -> str:
    """UTF-16 with a BOM (Excel's "Unicode text"), UTF-8 with or without BOM, else GB18030
    (what Excel writes as CSV on a Chinese Windows)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        encodings: tuple[str, ...] = ("utf-16",)
    else:
        encodings = ("utf-8-sig", "gb18030")
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput.field(
        "file", "the file is neither UTF-8, UTF-16 nor GB18030 text: save it as CSV (UTF-8) or .xlsx"
    )


def read_csv(data: bytes) -> RawRows:
    """UTF-8 (with or without BOM), UTF-16 (BOM), else GB18030; , ; or tab. Line numbers are those a
    text editor shows (a quoted value spanning lines moves the following rows down)."""
    check_size(data)
    text = _decode(data)
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)

    def lines():
        start = 1
        try:
            for cells in reader:
                yield start, cells[:MAX_COLUMNS]
                start = reader.line_num + 1
        except csv.Error as exc:  # e.g. a value longer than the csv module's field limit
            raise InvalidInput(
                f"line {reader.line_num}: the CSV file cannot be read ({exc})",
                errors={"rows": {str(reader.line_num): {"_row": [f"unreadable CSV: {exc}"]}}},
                place="line",
            ) from exc

    return _table(lines())


def _open_workbook(data: bytes, data_only: bool):
    from openpyxl import load_workbook

    try:
        return load_workbook(io.BytesIO(data), read_only=True, data_only=data_only)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        raise InvalidInput.field("file", f"not a readable XLSX workbook ({exc.__class__.__name__})") from exc


def _cell_value(cell: Any) -> Any:
    value = getattr(cell, "value", None)
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and "%" in str(getattr(cell, "number_format", "") or "")
    ):
        return Percent(round(float(value) * 100, 10))
    return value


def read_xlsx(data: bytes) -> RawRows:
    """The first worksheet, read row by row. The cached results of formulas are read (what Excel
    shows); a formula without a saved result is marked as such, a percentage-formatted number is
    read as the percentage shown."""
    check_size(data)
    workbook = _open_workbook(data, data_only=True)
    try:
        try:
            sheet = workbook.worksheets[0]
            rows = sheet.iter_rows(max_col=MAX_COLUMNS)
            result = _table((n, [_cell_value(c) for c in cells]) for n, cells in enumerate(rows, start=1))
        except InvalidInput:
            raise
        except Exception as exc:  # a damaged sheet inside a readable ZIP
            raise InvalidInput.field("file", f"not a readable XLSX workbook ({exc.__class__.__name__})") from exc
    finally:
        workbook.close()
    _mark_formulas(data, result)
    return result


def _mark_formulas(data: bytes, result: RawRows) -> None:
    """Cells left empty by ``data_only`` may be formulas without a saved result: say so."""
    lines = {line for line, fields in result.rows if any(fields.get(name) is None for name in REQUIRED)}
    if not lines:
        return
    workbook = _open_workbook(data, data_only=False)
    try:
        formulas: dict[int, list[Any]] = {}
        for n, cells in enumerate(workbook.worksheets[0].iter_rows(max_col=MAX_COLUMNS, values_only=True), start=1):
            if n > max(lines):
                break
            if n in lines:
                formulas[n] = list(cells)
    finally:
        workbook.close()
    for line, fields in result.rows:
        cells = formulas.get(line)
        if cells is None:
            continue
        for name, value in fields.items():
            pos = result.columns.get(name)
            if value is None and pos is not None and pos < len(cells):
                raw = cells[pos]
                if isinstance(raw, str) and raw.startswith("="):
                    fields[name] = Formula(raw)


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
