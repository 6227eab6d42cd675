"""Review of the synergy index: each test here failed before the fix it names.

Imports as departments really send them (UTF-16 text, percentages, formulas, title rows, huge
cells), scores at the edges (no data this year, annual 年度累计得分 from quarters, a county not in
the reference table), the 备注 text against its lists, concurrency and the English page.
"""
from __future__ import annotations

import io
import threading

import pytest
from openpyxl import Workbook
from sqlalchemy import delete, select

from app.accounts.models import County
from app.accounts.services import Principal
from app.extensions import db
from app.index import importing, services
from app.index.definition import load_definition, parse_definition
from app.index.models import IndicatorValue, IndicatorValueRevision
from app.rules import RulesError
from tests.test_index_definition import raw as raw_definition
from tests.test_index_import import csv_bytes, stored, upload

HEADER = ["county_code", "period", "indicator", "value", "source_department"]
JJ, TT, WL = "331002", "331023", "331081"


def values(rows, as_="op", api=None):
    return api.post("/api/v1/index/values", rows, as_=as_)


def row(county=TT, period="2025", indicator=3, value=90, source="市生态环境局", **more):
    return {"county_code": county, "period": period, "indicator": indicator, "value": value,
            "source_department": source, **more}


# ---------------------------------------------------------------- files as they come

def test_a_csv_cell_beyond_the_csv_field_limit_is_a_422_not_a_500(api, world):
    data = ("county_code,period,indicator,value,source_department\n"
            f"331023,2025,3,90,\"{'x' * 200_000}\"\n").encode()
    r = upload(api, data, "big-cell.csv")
    assert r.status_code == 422, r.status_code
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert "2" in r.get_json()["errors"]["rows"]
    assert stored() == {}


def test_utf16_text_as_excel_saves_unicode_text(api, world):
    text = "\t".join(["县市区代码", "期间", "指标序号", "数值", "数据来源"]) + "\r\n" + \
        "\t".join(["天台县", "2025", "3", "91.5", "市生态环境局"]) + "\r\n"
    r = upload(api, text.encode("utf-16"), "指标.txt")
    assert r.status_code == 200, r.get_json()
    assert stored() == {(TT, "2025", 3): (91.5, "市生态环境局")}


def test_line_numbers_count_a_quoted_value_over_two_lines(api, world):
    data = ("county_code,period,indicator,value,source_department\n"
            "331023,2025,3,90,\"市生态环境局\n（核定）\"\n"  # lines 2–3
            "331023,2025,4,abc,市生态环境局\n").encode()        # line 4
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

@pytest.mark.parametrize("typed, number, expected", [
    ("1,234.5", 10, 1234.5),       # thousands separators (10: 排放强度, no unit)
    ("12%", 3, 12.0),              # a percentage for an indicator in %
    ("１２．５％", 3, 12.5),        # full-width digits and percent sign (Chinese input method)
    ("−1.5", 17, -1.5),            # U+2212 minus, as Word and WPS write it
    (" 88 ", 21, 88.0),
])
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
    r = values([row(indicator=1, value=30, unit="ug/m3"), row(indicator=3, value=90, unit="％"),
                row(county=JJ, indicator=1, value=31, unit="µg/m³")], api=api)  # µ: the micro sign
    assert r.status_code == 200, r.get_json()
    units = {(v.county_code, v.indicator): v.unit for v in db.session.scalars(select(IndicatorValue))}
    assert units == {(TT, 1): "μg/m³", (TT, 3): "%", (JJ, 1): "μg/m³"}  # stored as the definition writes them


def test_a_huge_integer_is_a_row_error(api, world):
    r = values([row(value=10 ** 400)], api=api)
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
        try:
            barrier.wait(10)
        except threading.BrokenBarrierError:
            pass
        return rows

    monkeypatch.setattr(services, "validate_rows", validate_then_meet)

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


# ---------------------------------------------------------------- scores at the edges

@pytest.fixture
def no_indicator_25(monkeypatch):
    monkeypatch.setattr(services, "indicator_25_value", lambda session, county, period: None)


def load(world, rows):
    raw = importing.read_json([row(county=c, period=p, indicator=n, value=v) for c, p, n, v in rows])
    services.import_values(db.session, Principal(user=world.users["op"]), raw)
    db.session.commit()


def by_county(result):
    return {c["county_code"]: c for c in result["counties"]}


def test_no_change_against_the_base_year_without_data_this_period(app, world, no_indicator_25):
    # Base 2024: JJ and TT have data. 2025: only JJ's figures have arrived. TT is not "−100 %".
    load(world, [(JJ, "2024", 3, 90), (TT, "2024", 3, 95), (JJ, "2025", 3, 90)])
    counties = by_county(services.scores(db.session, Principal(user=world.users["op"]), "2025"))
    assert counties[TT]["has_data"] is False and counties[TT]["base_total"] == 4.0
    assert counties[TT]["change_vs_base_share"] is None and counties[TT]["meets_target"] is None
    assert counties[JJ]["change_vs_base_share"] is None  # base total 0 → no share


def test_the_annual_cumulative_score_from_the_four_quarters(app, world, no_indicator_25):
    # 27 (年度累计得分, weight 2): JJ imported quarters only → the year's cumulative is their sum;
    # TT an annual value; WL three quarters → missing, the lacking quarter named.
    load(world, [(JJ, "2025-Q1", 27, 1), (JJ, "2025-Q2", 27, 1), (JJ, "2025-Q3", 27, 0), (JJ, "2025-Q4", 27, 2),
                 (TT, "2025", 27, 2), (WL, "2025-Q1", 27, 3), (WL, "2025-Q2", 27, 3), (WL, "2025-Q3", 27, 3)])
    counties = by_county(services.scores(db.session, Principal(user=world.users["op"]), "2025"))
    item = {c: next(i for i in counties[c]["indicators"] if i["number"] == 27) for c in (JJ, TT, WL)}
    assert (item[JJ]["value"], item[JJ]["basis"]) == (4.0, "2025-Q1..2025-Q4")
    assert (item[TT]["value"], item[TT]["basis"]) == (2.0, "2025")
    assert item[WL]["value"] is None and "2025-Q4" in item[WL]["note"]
    assert (item[JJ]["score"], item[TT]["score"]) == (2.0, 0.0)


def test_indicator_25_for_a_county_missing_from_the_reference_table(app, world):
    """county_metrics answers 404 for a county not in the counties table: that made the whole
    index a 404; now that county's indicator 25 is missing, with a note."""
    db.session.execute(delete(County).where(County.code == "331083"))
    db.session.commit()
    result = services.scores(db.session, Principal(user=world.users["op"]), "2025")
    yuhuan = by_county(result)["331083"]
    assert 25 in yuhuan["missing"]
    assert "counties" in next(i for i in yuhuan["indicators"] if i["number"] == 25)["note"]


# ---------------------------------------------------------------- the definition

def test_the_remarks_text_must_agree_with_its_lists():
    data = raw_definition()
    data["remarks"]["text"] = data["remarks"]["text"].replace("指标 31，", "指标 32，")
    with pytest.raises(RulesError, match=r"remarks.text names indicators \[9, 10, 11, 12, 15, 16, 18, 20, 32\]"):
        parse_definition(data)


def test_english_names_for_every_level():
    d = load_definition()
    assert all(f.name_en for f in d.first_level) and all(s.name_en for s in d.second_level.values())
    assert all(i.name_en for i in d.indicators.values())
    assert d.indicators[25].name_en == "Integrated management of industrial hazardous waste"


# ---------------------------------------------------------------- who, and the page

def test_a_device_token_reads_and_imports_nothing(api, world):
    r = api.post("/api/v1/device-tokens", {"organization_id": world.regulator_city.id, "name": "gw"}, as_="op")
    assert r.status_code == 201, r.get_json()
    headers = {"Authorization": f"Bearer {r.get_json()['token']}"}
    for url in ("/api/v1/index/definition", "/api/v1/index/scores?period=2025", "/api/v1/index/values"):
        assert api.client.get(url, headers=headers).status_code == 403, url
    assert api.client.post("/api/v1/index/values", json=[row()], headers=headers).status_code == 403
    assert stored() == {}


def test_values_listing_asks_who_before_what(api, world):
    assert api.get("/api/v1/index/values?period=1999", as_=None).status_code == 401


def test_the_page_in_english_and_its_errors(app, world, no_indicator_25):
    from flask_babel import refresh

    from tests.factories import PASSWORD

    client = app.test_client()
    client.post("/login", data={"username": "reg_city", "password": PASSWORD})
    text = client.get("/index?period=2025&lang=en").get_data(as_text=True)
    assert "Environmental quality" in text and "Tiantai" in text
    assert 'title="Integrated management of industrial hazardous waste"' in text  # a missing indicator's name
    refresh()  # the test's app context (and Babel's cached locale) outlives each request
    r = client.get("/index?period=2025&lang=zh")
    assert r.status_code == 200 and "环境质量" in r.get_data(as_text=True)
    refresh()
    r = client.get("/index?period=2025-Q5")
    assert r.status_code == 422 and "考核期间应为年份" in r.get_data(as_text=True)
    refresh()
    r = client.get("/index?period=2025&base_year=2025")
    assert r.status_code == 422 and "基准年应为" in r.get_data(as_text=True)
