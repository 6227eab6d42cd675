"""The statistics page's period picker (selects for the kind, year, quarter or month; the server
checks them) and the months without data, marked on the chart and explained in words."""

from __future__ import annotations

import re

from app.extensions import db
from tests.statistics.builders import build, ledger, login, sh


def selected(html: str, name: str) -> str:
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S).group(1)
    return re.search(r'<option value="([^"]*)" selected>', select).group(1)


def test_a_quarter_is_picked_with_selects(app, world):
    build(world)
    client = login(app, "park")
    html = client.get("/statistics?kind=quarter&year=2025&quarter=3&month=1").get_data(as_text=True)
    assert '<input name="period"' not in html  # no free text
    assert (selected(html, "kind"), selected(html, "year"), selected(html, "quarter")) == ("quarter", "2025", "3")
    assert '<p class="muted">2025-Q3</p>' in html
    assert f"/api/v1/parks/{world.park.id}/metrics.xlsx?period=2025-Q3" in html
    html = client.get("/statistics?kind=month&year=2025&month=7").get_data(as_text=True)
    assert (selected(html, "kind"), selected(html, "month")) == ("month", "7")
    assert '<p class="muted">2025-07</p>' in html
    html = client.get("/statistics?kind=year&year=2025").get_data(as_text=True)
    assert '<p class="muted">2025</p>' in html


def test_the_server_still_checks_the_picked_period(app, world):
    client = login(app, "park")
    for query in ("kind=month&year=2025&month=13", "kind=quarter&year=2025&quarter=5", "kind=year&year=2999"):
        html = client.get(f"/statistics?{query}").get_data(as_text=True)
        alert = re.search(r'role="alert">([^<]*)<', html).group(1)
        assert "无效或尚未开始，已显示本月" in alert, query


def test_months_without_data_are_marked_and_explained(app, world):
    build(world)
    ledger(world.enterprise, "generation", "900-039-49", 120.0, sh(2024, 3, 5))
    db.session.commit()
    client = login(app, "park")
    # 2023-07 … 2024-06: March 2024 has a ledger record but nothing processed; the enterprises
    # of the data set were registered (created) only now, after the other months.
    html = client.get("/statistics?kind=month&year=2024&month=6").get_data(as_text=True)
    assert 'data-no-data="2024-03"' in html and 'data-no-data="2024-02"' in html
    notes = dict(re.findall(r'data-gap-month="([^"]+)" data-gap-reason="([^"]+)"', html))
    assert notes["2024-03"] == "not_processed" and notes["2024-02"] == "not_registered"
    assert "本月无数据：本月没有利用/处置的废物，填埋占比无从计算" in html
    assert "本月无数据：该范围的企业尚未在平台登记" in html
    # June and July 2025 have processing: points, no gap.
    html = client.get("/statistics?kind=month&year=2025&month=7").get_data(as_text=True)
    assert 'data-no-data="2025-07"' not in html and 'data-no-data="2025-06"' not in html
    assert 'data-no-data="2025-05"' in html


def test_a_current_month_without_records_says_so(app, world):
    html = login(app, "park").get("/statistics").get_data(as_text=True)
    assert re.search(r'data-gap-reason="no_records"><span class="mono">[\d-]+</span> 本月无数据：没有台账记录', html)
