"""The registry's export files as written for 10⁶ rows: the hand-joined CSV equals :mod:`csv`'s,
the directly written XLSX reads back in openpyxl with the CSV's values and types, and PostgreSQL's
rendering of the cells equals Python's."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from app.extensions import db
from app.ledger.models import Manifest
from app.ledger.services import registry_export, xlsx_stream
from tests.ledger.builders import insert_manifests
from tests.ledger.test_registry import parties  # noqa: F401 (the fixture)

FIELDS = registry_export.FIELDS
TRICKY = [
    '=HYPERLINK("http://x","y")',
    "a, b",
    'say "hi"',
    "line\nbreak\r\nand\x07bell",
    "  leading and trailing  ",
    "<b>&amp; 台州 ñ 🌿</b>",
    "-5",
    "\ttab first",
    "vertical\x0btab and \x1f unit",
    "",
]


def tricky_rows() -> list[registry_export.ExportRow]:
    """Export rows whose text columns hold every hard case, numbers and times as they come."""
    rows = []
    for i, text in enumerate(TRICKY):
        cells = []
        for name in FIELDS:
            if name in registry_export.NUMBER_FIELDS:
                cells.append(str(i + 1) if name in ("line_id", "line_no") else ("" if i == 3 else f"{i}.125"))
            elif name in registry_export.TIME_FIELDS:
                cells.append("" if name == "processed_at" else f"2026-03-0{i % 9 + 1} 08:0{i}:00")
            else:
                cells.append(text)
        rows.append(tuple(cells))
    return rows


def csv_writer_reference(rows) -> bytes:
    """The CSV as :mod:`csv`'s writer would write the same formula-safe cells."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    out.write("\ufeff")
    writer.writerow(registry_export.header("zh"))
    text = registry_export.TEXT_FIELDS
    writer.writerows(
        [registry_export.safe_text(v) if name in text else v for name, v in zip(FIELDS, row, strict=True)]
        for row in rows
    )
    return out.getvalue().encode()


@pytest.mark.parametrize("chunk", [1, 3, 2000])
def test_the_joined_csv_equals_the_csv_writers(chunk):
    rows = tricky_rows()
    joined = b"".join(registry_export.csv_chunks(rows, chunk=chunk))
    assert joined == csv_writer_reference(rows)
    table = list(csv.reader(io.StringIO(joined.decode().removeprefix("\ufeff"), newline="")))
    assert len(table) == len(rows) + 1
    waste_name = FIELDS.index("waste_name")
    assert [r[waste_name] for r in table[1:4]] == ['\'=HYPERLINK("http://x","y")', "a, b", 'say "hi"']
    assert table[4][waste_name] == "line break  and bell"  # control characters became spaces
    assert table[7][waste_name] == "'-5" and table[8][waste_name] == "'\ttab first"


def test_the_xlsx_reads_back_with_the_csvs_values_and_types():
    rows = tricky_rows()
    out = io.BytesIO()
    assert registry_export.write_xlsx(rows, out, title="联单台账-辖区") == len(rows)
    assert zipfile.ZipFile(io.BytesIO(out.getvalue())).testzip() is None
    csv_text = b"".join(registry_export.csv_chunks(rows)).decode().removeprefix("\ufeff")
    table = list(csv.reader(io.StringIO(csv_text, newline="")))

    book = load_workbook(io.BytesIO(out.getvalue()))
    sheet = book.active
    assert sheet.title == "联单台账-辖区" and sheet.freeze_panes == "A2"
    assert [c.value for c in sheet[1]] == registry_export.header("zh") == table[0]
    assert all(c.font.b for c in sheet[1])
    assert sheet.max_row == len(rows) + 1 and sheet.max_column == len(FIELDS)
    for got, want in zip(sheet.iter_rows(min_row=2), table[1:], strict=True):
        for name, cell, text in zip(FIELDS, got, want, strict=True):
            if text == "":
                assert cell.value is None, name
            elif name in registry_export.NUMBER_FIELDS:
                assert cell.data_type == "n" and isinstance(cell.value, int | float), name
                assert cell.value == (int(text) if name in ("line_id", "line_no") else float(text)), name
            else:  # text and times are strings, never formulas; XML's illegal characters are gone
                assert cell.data_type == "s", name
                assert cell.value == text.replace("\x0b", "").replace("\x1f", ""), name
    waste_name = FIELDS.index("waste_name")
    names = [r[waste_name].value for r in sheet.iter_rows(min_row=2)]
    assert names[4] == "  leading and trailing  " and names[5] == "<b>&amp; 台州 ñ 🌿</b>"


def test_xml_text_and_sheet_titles():
    assert xlsx_stream.xml_text("a<b>&c\x00\x08\ud800\ufffe\t\n") == "a&lt;b&gt;&amp;c\t\n"
    assert xlsx_stream.sheet_title("a/b:c*d?e[f]g\\h") == "a b c d e f g h"
    assert xlsx_stream.sheet_title("长" * 40) == "长" * 31
    assert xlsx_stream.sheet_title("") == "Sheet1"
    out = io.BytesIO()
    xlsx_stream.write_xlsx(out, 'a "quoted" <title>', ["x"], [xlsx_stream.TEXT], [["1"], [""]])
    assert load_workbook(io.BytesIO(out.getvalue())).active.title == 'a "quoted" <title>'


def test_the_xlsx_download_holds_the_csv_downloads_cells(api, parties):  # noqa: F811
    csv_text = api.get("/api/v1/registry/managed.csv", as_="reg_city").get_data().decode()
    table = list(csv.reader(io.StringIO(csv_text.removeprefix("\ufeff"), newline="")))
    r = api.get("/api/v1/registry/managed.xlsx", as_="reg_city")
    assert r.status_code == 200 and r.mimetype == registry_export.XLSX_MIME
    assert "filename*=UTF-8''" in r.headers["Content-Disposition"]
    values = list(load_workbook(io.BytesIO(r.get_data())).active.iter_rows(values_only=True))
    assert len(values) == len(table) == 6
    for got, want in zip(values[1:], table[1:], strict=True):
        for name, cell, text in zip(FIELDS, got, want, strict=True):
            if name in registry_export.NUMBER_FIELDS and text:
                assert not isinstance(cell, str) and str(cell) == str(type(cell)(text)), name
            else:
                assert (cell or "") == text, name
    quantity = FIELDS.index("quantity_kg")
    assert {row[quantity] for row in values[1:]} == {1234.567}


@pytest.mark.postgresql_only
def test_postgresqls_cells_equal_pythons(session, world, parties):  # noqa: F811
    """The database renders the cells on PostgreSQL: local time to the second (a fraction is cut,
    not rounded), masses with their three decimals, empty cells empty, as Python would."""
    from app.accounts.services import Principal

    manifest = session.query(Manifest).filter(Manifest.status == "submitted").first()
    manifest.received_at = datetime(2026, 3, 31, 16, 59, 59, 999_999, tzinfo=UTC)  # 1 April in Taizhou
    manifest.lines[0].received_kg = Decimal("0.5")
    db.session.commit()
    insert_manifests(world.enterprise, parties["carrier"], world.service, 1, start=60, quantity_kg="0.01")
    actor = Principal(user=world.users["reg_city"])
    query = registry_export.registry_query(actor, "managed", registry_export.RegistryFilters())
    from_postgresql = list(registry_export._postgresql_rows(session, query))
    from_python = list(registry_export._python_rows(session, query))
    assert from_postgresql == from_python
    assert len(from_postgresql) == 6
    received = {row[FIELDS.index("received_at")] for row in from_postgresql}
    assert "2026-04-01 00:59:59" in received and "" in received
    assert {row[FIELDS.index("received_kg")] for row in from_postgresql} == {"0.500", ""}
    assert "0.010" in {row[FIELDS.index("quantity_kg")] for row in from_postgresql}
    assert list(registry_export.export_rows(session, actor, "managed")) == from_python


def test_the_exports_filter_as_the_json_pages(api, parties):  # noqa: F811
    """Filters reach the export's own reading of the rows (on PostgreSQL a driver-level cursor:
    the state, the waste code and the local dates bound as SQLAlchemy binds them)."""
    number = FIELDS.index("number")
    for query, expected in [
        ("status=in_transit", parties["wenling"]),
        ("from=2026-03-01&to=2026-03-01", parties["tiantai"] + parties["wenling"]),
        ("from=2026-03-02", []),
        ("waste_code=900-041-49", []),
        ("status=submitted&waste_code=900-039-49", parties["tiantai"]),
    ]:
        r = api.get(f"/api/v1/registry/incoming.csv?{query}", as_="svc")
        assert r.status_code == 200, (query, r.get_json())
        table = list(csv.reader(io.StringIO(r.get_data().decode().removeprefix("\ufeff"), newline="")))
        assert [row[number] for row in table[1:]] == sorted(m.number for m in expected), query
        book = load_workbook(io.BytesIO(api.get(f"/api/v1/registry/incoming.xlsx?{query}", as_="svc").get_data()))
        assert book.active.max_row == len(expected) + 1, query
    assert api.get("/api/v1/registry/incoming.csv?status=draft", as_="svc").status_code == 422
