"""Odd inputs to the statistics API answer 4xx problem documents, never 5xx (both databases)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.statistics.models import ValueAdded


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/parks/99999999999/metrics?period=2025",
        "/api/v1/counties/%E5%A4%A9%E5%8F%B0%E5%8E%BF%E5%A4%A9%E5%8F%B0%E5%8E%BF/metrics?period=2025",
        "/api/v1/metrics?period=%00",
        "/api/v1/metrics?period=2025-Q3&base_year=99999999999",
        "/api/v1/metrics.csv?period=%E4%BA%8C%E9%9B%B6",
        "/api/v1/value-added?period=bad",
        "/api/v1/value-added?scope=planet",
    ],
)
def test_odd_queries_are_client_errors(world, api, url):
    r = api.get(url, as_="op")
    assert 400 <= r.status_code < 500, (url, r.status_code, r.get_data(as_text=True)[:300])
    assert r.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    "body",
    [
        {"scope": "city"},  # not a list
        [{"scope": "city", "period": "2025", "value_added_10k_yuan": "NaN", "source_department": "x"}],
        [{"scope": "park", "park_id": 2**40, "period": "2025", "value_added_10k_yuan": 1, "source_department": "x"}],
        [{"scope": "city", "period": "2025", "value_added_10k_yuan": 1, "source_department": "x", "extra": 1}],
        [{"scope": "city", "period": "2025", "value_added_10k_yuan": 1e308 * 10, "source_department": "x"}],
        [None],
    ],
)
def test_odd_value_added_bodies_are_422(world, api, body):
    r = api.post("/api/v1/value-added", body, as_="op")
    assert r.status_code == 422, (body, r.status_code, r.get_data(as_text=True)[:300])


def test_park_id_beyond_the_column_and_odd_county_codes_are_404_on_both_databases(world, api):
    # PostgreSQL answered 422 "a number is out of range" (SQLite: 404) for the same URL.
    for url in (
        "/api/v1/parks/99999999999/metrics?period=2025",
        "/api/v1/parks/2147483648/metrics.csv?period=2025",
        "/api/v1/counties/%00/metrics?period=2025",
        "/api/v1/counties/33102%00/metrics?period=2025",
        "/api/v1/counties/3310231/metrics?period=2025",
    ):
        r = api.get(url, as_="op")
        assert r.status_code == 404 and r.mimetype == "application/problem+json", (url, r.status_code)


def test_full_width_digits_are_the_same_period_other_digits_are_not(world, api):
    # One period parser for statistics and the index (app.common.periods): NFKC, so ２０２５ is 2025.
    r = api.get("/api/v1/metrics?period=２０２５", as_="op")
    assert r.status_code == 200 and r.get_json()["period"]["label"] == "2025"
    r = api.get("/api/v1/metrics?period=٢٠٢٥", as_="op")  # Arabic-Indic digits: not a period
    assert r.status_code == 422 and "period" in r.get_json()["errors"]


def test_value_added_source_with_a_nul_byte_is_422_on_the_field_and_stores_nothing(world, api):
    # SQLite stored it; PostgreSQL answered a misleading "number out of range".
    r = api.post(
        "/api/v1/value-added",
        [{"scope": "city", "period": "2025", "value_added_10k_yuan": 1, "source_department": "统计局\u0000"}],
        as_="op",
    )
    assert r.status_code == 422 and "source_department" in r.get_json()["errors"]["0"], r.get_json()
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ValueAdded)) == 0
