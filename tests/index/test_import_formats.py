"""Importing synergy index values as departments really send them: UTF-16 text, percentages,
formulas, title rows, huge cells, numbers and units as typed; concurrent imports of the same values.
"""

from __future__ import annotations

import contextlib
import io
import threading

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from app.extensions import db
from app.index import importing, services
from app.index.models import IndicatorValue, IndicatorValueRevision
from tests.index.builders import (
    HEADER,
    JJ,
    TT,
    WL,
    csv_bytes,
    row,
    stored,
    upload,
    values,
)

# ---------------------------------------------------------------- files as they come


def test_a_csv_cell_beyond_the_csv_field_limit_is_a_422_not_a_500(api, world):
    data = (f'county_code,period,indicator,value,source_department\n331023,2025,3,90,"{"x" * 200_000}"\n').encode()
    r = upload(api, data, "big-cell.csv")
    assert r.status_code == 422, r.status_code
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert "2" in r.get_json()["errors"]["rows"]
    assert stored() == {}


def test_utf16_text_as_excel_saves_unicode_text(api, world):
    text = (
        "\t".join(["县市区代码", "期间", "指标序号", "数值", "数据来源"])
        + "\r\n"
        + "\t".join(["天台县", "2025", "3", "91.5", "市生态环境局"])
        + "\r\n"
    )
    r = upload(api, text.encode("utf-16"), "指标.txt")
    assert r.status_code == 200, r.get_json()
    assert stored() == {(TT, "2025", 3): (91.5, "市生态环境局")}


def test_line_numbers_count_a_quoted_value_over_two_lines(api, world):
    data = (
        "county_code,period,indicator,value,source_department\n"
        '331023,2025,3,90,"市生态环境局\n（核定）"\n'  # lines 2–3
        "331023,2025,4,abc,市生态环境局\n"
    ).encode()  # line 4
    r = upload(api, data, "x.csv")
    assert r.status_code == 422
    assert set(r.get_json()["errors"]["rows"]) == {"4"}


def xlsx(rows: list[list], formats: dict[str, str] | None = None, title: str | None = None) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    if title:
        sheet.append([title])
        sheet.append([])
    sheet.append(HEADER)
    for r in rows:
        sheet.append(r)
    for cell, number_format in (formats or {}).items():
        sheet[cell].number_format = number_format
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_a_percentage_formatted_cell_is_the_percentage_shown(api, world):
    # Excel stores 92.3 % as 0.923; indicator 3 (AQI 优良比例) is in %: the value is 92.3, not 0.923.
    data = xlsx([[331023, 2025, 3, 0.923, "市生态环境局"]], {"D2": "0.0%"})
    r = upload(api, data, "pct.xlsx")
    assert r.status_code == 200, r.get_json()
    assert stored() == {(TT, "2025", 3): (pytest.approx(92.3), "市生态环境局")}
    # ... and refused for an indicator measured in something else (1: PM2.5 in μg/m³)
    r = upload(api, xlsx([[331023, 2025, 1, 0.3, "市生态环境局"]], {"D2": "0%"}), "pct.xlsx")
    assert r.status_code == 422 and "percentage" in r.get_json()["errors"]["rows"]["2"]["value"][0]


def test_a_formula_without_a_saved_result_says_so(api, world):
    # openpyxl (like other programs) writes formulas without their results; data_only reads None.
    data = xlsx([[331023, 2025, 3, "=90+1.5", "市生态环境局"]])
    r = upload(api, data, "formula.xlsx")
    assert r.status_code == 422
    message = r.get_json()["errors"]["rows"]["2"]["value"]
    assert len(message) == 1 and "formula" in message[0] and "=90+1.5" in message[0]


def test_title_rows_above_the_header_are_skipped(api, world):
    data = xlsx([[331023, "2025", 3, 90, "市生态环境局"]], title="台州市减污降碳协同指数数据（2025年）")
    r = upload(api, data, "with-title.xlsx")
    assert r.status_code == 200, r.get_json()
    assert stored() == {(TT, "2025", 3): (90.0, "市生态环境局")}
    # Line numbers stay the spreadsheet's: the header is on line 3, the first row on line 4.
    r = upload(api, xlsx([[331023, "2025", 3, "x", "市生态环境局"]], title="标题"), "with-title.xlsx")
    assert r.status_code == 422 and set(r.get_json()["errors"]["rows"]) == {"4"}


def test_an_upload_beyond_the_size_limit_is_413(api, world, monkeypatch):
    monkeypatch.setattr(importing, "MAX_BYTES", 1000)
    data = csv_bytes(HEADER, [["331023", "2025", "3", "90", "市生态环境局"]] * 40)
    r = upload(api, data, "big.csv")
    assert r.status_code == 413 and r.headers["Content-Type"].startswith("application/problem+json")
    assert "file" in r.get_json()["errors"] and stored() == {}


# ---------------------------------------------------------------- numbers and units as typed


@pytest.mark.parametrize(
    "typed, number, expected",
    [
        ("1,234.5", 10, 1234.5),  # thousands separators (10: 排放强度, no unit)
        ("12%", 3, 12.0),  # a percentage for an indicator in %
        ("１２．５％", 3, 12.5),  # full-width digits and percent sign (Chinese input method)
        ("−1.5", 17, -1.5),  # U+2212 minus, as Word and WPS write it
        (" 88 ", 21, 88.0),
    ],
)
def test_numbers_written_as_text(api, world, typed, number, expected):
    r = values([row(indicator=number, value=typed)], api=api)
    assert r.status_code == 200, r.get_json()
    assert stored()[(TT, "2025", number)][0] == pytest.approx(expected)


@pytest.mark.parametrize("typed", ["1.234,5", "12元", "nan", "inf", "1_000", "12%%", "1,23"])
def test_text_that_is_not_a_number(api, world, typed):
    r = values([row(value=typed)], api=api)
    assert r.status_code == 422 and "not a number" in r.get_json()["errors"]["rows"]["0"]["value"][0]


def test_a_percentage_for_an_indicator_in_another_unit(api, world):
    r = values([row(indicator=1, value="30%")], api=api)
    assert r.status_code == 422 and "μg/m³" in r.get_json()["errors"]["rows"]["0"]["value"][0]


def test_units_as_people_write_them(api, world):
    r = values(
        [
            row(indicator=1, value=30, unit="ug/m3"),
            row(indicator=3, value=90, unit="％"),
            row(county=JJ, indicator=1, value=31, unit="µg/m³"),
        ],
        api=api,
    )  # µ: the micro sign
    assert r.status_code == 200, r.get_json()
    units = {(v.county_code, v.indicator): v.unit for v in db.session.scalars(select(IndicatorValue))}
    assert units == {(TT, 1): "μg/m³", (TT, 3): "%", (JJ, 1): "μg/m³"}  # stored as the definition writes them


def test_a_huge_integer_is_a_row_error(api, world):
    r = values([row(value=10**400)], api=api)
    assert r.status_code == 422 and "not a number" in r.get_json()["errors"]["rows"]["0"]["value"][0]


def test_control_characters_in_text_are_refused(api, world):
    # PostgreSQL cannot store NUL in text: that was a 500 there (and stored garbage on SQLite).
    r = values([row(source="市生态环境局\x00"), row(indicator=4, value=1, unit="%\x00")], api=api)
    assert r.status_code == 422, r.status_code
    errors = r.get_json()["errors"]["rows"]
    assert "source_department" in errors["0"] and "unit" in errors["1"]
    assert stored() == {}


# ---------------------------------------------------------------- concurrency


def test_concurrent_imports_of_the_same_new_values_both_succeed(app, api, world, monkeypatch):
    """Two departments' files with the same new keys at the same moment: one inserts, the other
    waits and updates (with an audit) — no 409 "retry" for the second (PostgreSQL, where row
    locks cannot lock rows that do not exist yet)."""
    tokens = [api.token("op"), api.token("reg_city")]
    bodies = [[row(county=c, indicator=n, value=v) for c in (JJ, TT, WL) for n in (3, 5, 7)] for v in (80, 81)]
    barrier = threading.Barrier(2)
    results: list = [None, None]
    validate = services.validate_rows

    def validate_then_meet(*args, **kwargs):  # both requests validated, neither has read the table yet
        rows = validate(*args, **kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(10)
        return rows

    monkeypatch.setattr(services.values, "validate_rows", validate_then_meet)  # where import_values looks it up

    def run(i):
        client = app.test_client()
        r = client.post("/api/v1/index/values", json=bodies[i], headers={"Authorization": f"Bearer {tokens[i]}"})
        results[i] = (r.status_code, r.get_json())

    db.session.commit()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [status for status, _ in results] == [200, 200], results
    assert sorted(body["inserted"] for _, body in results) == [0, 9]
    assert sorted(body["updated"] for _, body in results) == [0, 9]
    db.session.expire_all()
    assert len(db.session.scalars(select(IndicatorValueRevision)).all()) == 9
    assert len({v for v, _ in stored().values()}) == 1  # the later import's value everywhere
