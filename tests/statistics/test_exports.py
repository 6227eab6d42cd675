"""Review fixes of the statistics package: each test here failed before its fix (both databases),
except those marked "guard", which pin behaviour a rewrite must keep."""
from __future__ import annotations

import csv
import io
import re

import sqlalchemy as sa
from flask_babel import refresh
from openpyxl import load_workbook

from app.extensions import db
from app.statistics import services
from app.statistics.models import ValueAdded
from tests import factories
from tests.test_statistics import JULY, approx, as_, login, park_scope
from tests.test_statistics_support import box, build, colour, sh


# ---------------------------------------------------------------- numbers

def test_year_period_compares_with_a_base_year_that_is_also_the_previous_period(world):
    # 2025 with the default base year 2024: previous and base are both 2024. A CASE gives a row to
    # its first matching bucket only, so the base used to come back empty (no share, no trend).
    build(world)
    m = services.metrics(db.session, as_(world, "park"), park_scope(world), "2025")
    prev, base = m["landfill_trend"]["previous"], m["landfill_trend"]["base"]
    assert prev["period"] == base["period"] == "2024"
    # 2024 at the park: July 2024, 100 D1 + 300 R7
    assert prev["processed_kg"] == approx(400) and base["processed_kg"] == approx(400)
    assert base["landfill_share"] == approx(0.25) and base["change_share"] == prev["change_share"]
    series = services.landfill_by_period(db.session, park_scope(world), [services.parse_period("2024-07")] * 2)
    assert [p["landfill_share"] for p in series] == [approx(0.25), approx(0.25)]


def test_red_box_days_edges(world):
    """guard: red before the period and turned green exactly at its start; a box registered in the
    period; two changes at the same instant; the colour at the end from the last change."""
    e = world.enterprise
    x = box(e, sh(2025, 1, 1))
    y = box(e, sh(2025, 7, 5))
    z = box(e, sh(2025, 1, 1))
    db.session.flush()
    colour(x, sh(2025, 6, 1), "red", "saturation_full")
    colour(x, sh(2025, 7, 1), "green")  # exactly at the start of July: no red day in July
    colour(y, sh(2025, 7, 10), "red", "replacement_overdue")  # → end of July: 22 days
    colour(z, sh(2025, 7, 20), "red", "saturation_full")
    colour(z, sh(2025, 7, 20), "yellow")  # same instant, recorded after: zero-length red
    db.session.commit()
    scope = park_scope(world)
    july = services.metrics(db.session, as_(world, "park"), scope, JULY)["boxes"]
    assert july["red_box_days"] == approx(22)
    assert july["by_colour"] == {"grey": 0, "green": 1, "yellow": 1, "red": 1}
    june = services.metrics(db.session, as_(world, "park"), scope, "2025-06")["boxes"]
    assert june["red_box_days"] == approx(30)
    assert june["by_colour"] == {"grey": 1, "green": 0, "yellow": 0, "red": 1}  # y not yet registered


# ---------------------------------------------------------------- odd input

def test_park_id_beyond_the_column_and_odd_county_codes_are_404_on_both_databases(world, api):
    # PostgreSQL answered 422 "a number is out of range" (SQLite: 404) for the same URL.
    for url in ("/api/v1/parks/99999999999/metrics?period=2025", "/api/v1/parks/2147483648/metrics.csv?period=2025",
                "/api/v1/counties/%00/metrics?period=2025", "/api/v1/counties/33102%00/metrics?period=2025",
                "/api/v1/counties/3310231/metrics?period=2025"):
        r = api.get(url, as_="op")
        assert r.status_code == 404 and r.mimetype == "application/problem+json", (url, r.status_code)


def test_full_width_digits_are_not_a_period(world, api):
    r = api.get("/api/v1/metrics?period=２０２５", as_="op")
    assert r.status_code == 422 and "period" in r.get_json()["errors"]


def test_value_added_source_with_a_nul_byte_is_422_on_the_field_and_stores_nothing(world, api):
    # SQLite stored it; PostgreSQL answered a misleading "number out of range".
    r = api.post("/api/v1/value-added", [
        {"scope": "city", "period": "2025", "value_added_10k_yuan": 1, "source_department": "统计局\u0000"}], as_="op")
    assert r.status_code == 422 and "source_department" in r.get_json()["errors"]["0"], r.get_json()
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ValueAdded)) == 0


# ---------------------------------------------------------------- exports

def test_exports_write_formula_like_names_as_text_and_carry_more_figures(world, api):
    park = factories.create_park(db.session, factories.op_principal(),
                                 {"name": '=HYPERLINK("http://evil.example","x")', "county_code": "331023"})
    db.session.commit()
    r = api.get(f"/api/v1/parks/{park.id}/metrics.csv?period={JULY}", as_="op")
    rows = list(csv.reader(io.StringIO(r.get_data().decode("utf-8-sig"))))
    summary = {(row[0], row[2]): row[1] for row in rows[1:rows.index([])]}
    assert summary[("统计范围", "")].startswith("'=")
    assert {("接受量", "kg"), ("退回入库量", "kg"), ("运输中（未超期）", "张"), ("按时接收率", "%")} <= set(summary)
    wb = load_workbook(io.BytesIO(api.get(f"/api/v1/parks/{park.id}/metrics.xlsx?period={JULY}", as_="op").get_data()))
    cell = wb["汇总"]["B2"]
    assert cell.data_type == "s" and cell.value.startswith("'=")
    assert [row[0] for row in wb["物料平衡"].iter_rows(min_row=2, values_only=True)][0] == "物料平衡：换下炭与称重废炭之差"


# ---------------------------------------------------------------- the page

def test_page_bad_period_message_is_in_the_readers_language_and_english_names_the_county(app, world):
    build(world)
    client = login(app, "reg_tt")
    html = client.get("/statistics?period=2025-99").get_data(as_text=True)
    alert = re.search(r'role="alert">([^<]*)<', html).group(1)
    assert "期间 2025-99 无效" in alert and "is not a period" not in alert
    refresh()  # the test's app context outlives the request: forget the locale it cached
    html = client.get(f"/statistics?period={JULY}&scope=county:331023&lang=en").get_data(as_text=True)
    assert re.search(r"<h1>Statistics · Tiantai</h1>", html)
    assert re.search(r'value="county:331023"\s*selected>Tiantai<', html)
