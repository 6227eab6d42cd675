"""Odd inputs to the statistics API answer 4xx problem documents, never 5xx (both databases)."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("url", [
    "/api/v1/parks/99999999999/metrics?period=2025",
    "/api/v1/counties/%E5%A4%A9%E5%8F%B0%E5%8E%BF%E5%A4%A9%E5%8F%B0%E5%8E%BF/metrics?period=2025",
    "/api/v1/metrics?period=%00",
    "/api/v1/metrics?period=2025-Q3&base_year=99999999999",
    "/api/v1/metrics.csv?period=%E4%BA%8C%E9%9B%B6",
    "/api/v1/value-added?period=bad",
    "/api/v1/value-added?scope=planet",
])
def test_odd_queries_are_client_errors(world, api, url):
    r = api.get(url, as_="op")
    assert 400 <= r.status_code < 500, (url, r.status_code, r.get_data(as_text=True)[:300])
    assert r.mimetype == "application/problem+json"


@pytest.mark.parametrize("body", [
    {"scope": "city"},  # not a list
    [{"scope": "city", "period": "2025", "value_added_10k_yuan": "NaN", "source_department": "x"}],
    [{"scope": "park", "park_id": 2**40, "period": "2025", "value_added_10k_yuan": 1, "source_department": "x"}],
    [{"scope": "city", "period": "2025", "value_added_10k_yuan": 1, "source_department": "x", "extra": 1}],
    [{"scope": "city", "period": "2025", "value_added_10k_yuan": 1e308 * 10, "source_department": "x"}],
    [None],
])
def test_odd_value_added_bodies_are_422(world, api, body):
    r = api.post("/api/v1/value-added", body, as_="op")
    assert r.status_code == 422, (body, r.status_code, r.get_data(as_text=True)[:300])
