"""The statistics page (/statistics): charts and numbers for a park administration, a county
regulator's picker, logins and jurisdictions, messages in the reader's language."""

from __future__ import annotations

import re

from flask_babel import refresh

from tests.statistics.builders import JULY, build, login


def test_page_for_a_park_admin_shows_charts_and_numbers(app, world):
    build(world)
    html = login(app, "park").get(f"/statistics?period={JULY}").get_data(as_text=True)
    assert "天台县经济开发区" in html
    assert '<svg class="line-chart" data-chart="landfill"' in html
    assert "<polyline" in html and 'data-bar="landfilled"' in html
    assert re.search(r"data-landfill-share>\s*12\.74", html)  # 200 / 1570 = 12.74 %
    assert re.search(r"data-red-box-days>15\.5<", html)
    assert f"/api/v1/parks/{world.park.id}/metrics.csv?period=2025-07" in html
    assert f"/api/v1/parks/{world.park.id}/metrics.xlsx?period=2025-07" in html
    assert '<select name="scope"' not in html  # a park administration has no picker: only its park


def test_page_for_a_county_regulator_has_a_picker(app, world):
    build(world)
    client = login(app, "reg_tt")
    html = client.get(f"/statistics?period={JULY}").get_data(as_text=True)
    assert 'name="scope"' in html and "county:331023" in html and f"park:{world.park.id}" in html
    assert "county:331081" not in html
    html = client.get(f"/statistics?period={JULY}&scope=park:{world.park.id}").get_data(as_text=True)
    assert re.search(r"data-landfill-share>\s*12\.74", html)
    html = client.get(f"/statistics?period={JULY}&scope=county:331023").get_data(as_text=True)
    assert re.search(r"data-landfill-share>\s*30\.46", html)  # 600 / 1970
    html = client.get("/statistics?period=2025-99").get_data(as_text=True)
    assert 'role="alert"' in html


def test_page_needs_a_login_and_a_jurisdiction(app, world):
    r = app.test_client().get("/statistics")
    assert r.status_code == 302 and "/login" in r.location
    assert login(app, "ent").get("/statistics").status_code == 403


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
