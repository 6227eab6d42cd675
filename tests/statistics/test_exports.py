"""Statistics exports: CSV with a BOM and Chinese headers, XLSX sheets, names that look like
formulas written as text (both databases)."""

from __future__ import annotations

import csv
import io
import re

from openpyxl import load_workbook

from app.extensions import db
from tests import factories
from tests.statistics.builders import JULY, approx, build


def test_csv_export_has_bom_chinese_headers_and_parses_back(world, api):
    build(world)
    r = api.get(f"/api/v1/parks/{world.park.id}/metrics.csv?period={JULY}", as_="park")
    assert r.status_code == 200
    assert r.mimetype == "text/csv"
    raw = r.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    disposition = r.headers["Content-Disposition"]
    assert f'filename="statistics_park-{world.park.id}_2025-07.csv"' in disposition
    assert "filename*=UTF-8''" in disposition
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["指标", "数值", "单位"]
    summary = {(row[0], row[2]): row[1] for row in rows[1 : rows.index([])]}
    assert float(summary[("填埋量", "kg")]) == approx(200)
    assert float(summary[("填埋占比", "%")]) == approx(round(200 / 1570 * 100, 4))
    assert float(summary[("红码箱天数", "箱·天")]) == approx(15.5)
    header_at = rows.index(
        [
            "废物代码",
            "废物名称",
            "产生量 (kg)",
            "入库量 (kg)",
            "退回入库 (kg)",
            "期末在库 (kg)",
            "转移量 (kg)",
            "接收量 (kg)",
            "接受量 (kg)",
        ]
    )
    by_code = {row[0]: row for row in rows[header_at + 1 :] if row and re.match(r"\d{3}-\d{3}-\d{2}$", row[0])}
    assert float(by_code["900-039-49"][2]) == approx(1500)
    assert float(by_code["900-039-49"][6]) == approx(1420)


def test_xlsx_export_sheets_headers_and_values(world, api):
    build(world)
    r = api.get(f"/api/v1/counties/331023/metrics.xlsx?period={JULY}", as_="reg_tt")
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert 'filename="statistics_county-331023_2025-07.xlsx"' in r.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(r.get_data()))
    assert wb.sheetnames[:3] == ["汇总", "按废物代码", "按利用处置方式"]
    summary = wb["汇总"]
    assert [c.value for c in summary[1]] == ["指标", "数值", "单位"]
    values = {(row[0], row[2] or ""): row[1] for row in summary.iter_rows(min_row=2, values_only=True)}
    assert values[("统计范围", "")] == "天台县"
    assert values[("填埋量", "kg")] == approx(600)
    methods = {row[0]: row[2] for row in wb["按利用处置方式"].iter_rows(min_row=2, values_only=True)}
    assert [c.value for c in wb["按利用处置方式"][1]] == ["利用/处置方式代码", "类别", "数量 (kg)"]
    assert methods["D1"] == approx(600)
    codes = {row[0]: row for row in wb["按废物代码"].iter_rows(min_row=2, values_only=True)}
    assert codes["900-039-49"][2] == approx(1900)
    # The 12 months up to the period, as on the page: the last one is July's 600 of 1,970 kg.
    months = list(wb["月度填埋占比"].iter_rows(min_row=2, values_only=True))
    assert [m[0] for m in months][-2:] == ["2025-06", "2025-07"] and len(months) == 12
    assert months[-1][1:] == (approx(1970), approx(600), approx(round(100 * 600 / 1970, 4)))


def test_openapi_documents_the_routes(app, client):
    spec = client.get("/openapi.json").get_json()
    for path in (
        "/api/v1/parks/{park_id}/metrics",
        "/api/v1/parks/{park_id}/metrics.csv",
        "/api/v1/parks/{park_id}/metrics.xlsx",
        "/api/v1/counties/{county_code}/metrics",
        "/api/v1/metrics",
        "/api/v1/metrics.xlsx",
        "/api/v1/value-added",
    ):
        assert path in spec["paths"], path
    params = {p["name"] for p in spec["paths"]["/api/v1/metrics"]["get"]["parameters"]}
    assert {"period", "base_year"} <= params


def test_exports_write_formula_like_names_as_text_and_carry_more_figures(world, api):
    park = factories.create_park(
        db.session, factories.op_principal(), {"name": '=HYPERLINK("http://evil.example","x")', "county_code": "331023"}
    )
    db.session.commit()
    r = api.get(f"/api/v1/parks/{park.id}/metrics.csv?period={JULY}", as_="op")
    rows = list(csv.reader(io.StringIO(r.get_data().decode("utf-8-sig"))))
    summary = {(row[0], row[2]): row[1] for row in rows[1 : rows.index([])]}
    assert summary[("统计范围", "")].startswith("'=")
    assert {("接受量", "kg"), ("退回入库量", "kg"), ("运输中（未超期）", "张"), ("按时接收率", "%")} <= set(summary)
    wb = load_workbook(io.BytesIO(api.get(f"/api/v1/parks/{park.id}/metrics.xlsx?period={JULY}", as_="op").get_data()))
    cell = wb["汇总"]["B2"]
    assert cell.data_type == "s" and cell.value.startswith("'=")
    assert next(wb["物料平衡"].iter_rows(min_row=2, values_only=True))[0] == "物料平衡：换下炭与称重废炭之差"
