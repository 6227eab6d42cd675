"""The park administration's statistics in a real browser (Debian's chromium, Playwright), on a
375-px phone and a desktop: it picks a quarter with the period picker (selects, not text), reads
the landfill share with the empty months explained, and exports the quarter; the XLSX holds the
figures the page shows. Nothing is wider than the viewport; screenshots in test-artifacts/browser/."""

from __future__ import annotations

import re

import pytest
from openpyxl import load_workbook

from app.common.periods import Period
from app.common.timeutil import SHANGHAI
from tests import factories
from tests.ledger.builders import ago, build_loop
from tests.web.builders import two_lines_in_transit
from tests.web.live import chromium, look, new_page, served, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The park's enterprise shipped 1,600 kg this quarter; the plant processed 1,000 kg by R7
    and 600 kg by landfill (D1): a landfill share of 37.50 %."""
    from app.extensions import db

    with served(tmp_path_factory.mktemp("flow-park")) as live:
        world = factories.World.build()
        api = factories.ApiClient(live["app"].test_client())
        loop = build_loop(world, api, removed_kg=1800, replaced_at=ago(days=2))
        number = two_lines_in_transit(api, loop)["number"]
        lines = [{"line_no": 1, "received_kg": 1000}, {"line_no": 2, "received_kg": 600}]
        assert api.post(f"/api/v1/manifests/{number}/receive", {"lines": lines}, as_="svc").status_code == 200
        methods = [{"line_no": 1, "method_code": "R7"}, {"line_no": 2, "method_code": "D1"}]
        assert api.post(f"/api/v1/manifests/{number}/process", {"lines": methods}, as_="svc").status_code == 200
        db.session.commit()
        now = ago(seconds=0).astimezone(SHANGHAI)
        live["quarter"] = Period("quarter", now.year, (now.month - 1) // 3 + 1)
        yield live


@pytest.fixture(scope="module")
def browser():
    with chromium() as instance:
        yield instance


@pytest.mark.parametrize("phone", [True, False], ids=["phone", "desktop"])
def test_the_park_picks_a_quarter_and_exports_it(live, browser, phone, tmp_path):
    base, quarter = live["base"], live["quarter"]
    page = new_page(browser, phone=phone)
    sign_in(page, base, "park", factories.PASSWORD)
    page.get_by_role("link", name="统计", exact=True).click()
    page.wait_for_url(base + "/statistics**")
    assert page.locator("input[name=period]:not([type=hidden])").count() == 0  # a picker, not a text box
    look(page, "park-statistics-month")

    page.select_option("select[name=kind]", "quarter")
    page.select_option("select[name=year]", str(quarter.year))
    page.select_option("select[name=quarter]", str(quarter.number))
    page.click(".filter-bar button[type=submit]")
    page.wait_for_url(re.compile(r".*kind=quarter.*"))
    assert page.locator(".page-head p.muted").inner_text() == quarter.label
    share = page.locator("[data-landfill-share]").inner_text()
    assert share.startswith("37.50")
    processed = page.locator("[data-processed-kg]").inner_text()
    landfilled = page.locator("[data-landfilled-kg]").inner_text()
    assert (processed, landfilled) == ("1,600.0", "600.0")
    # This month has its point; the months before the enterprise was registered are explained.
    notes = page.locator("[data-gap-reason=not_registered]")
    assert notes.count() >= 1 and "本月无数据：该范围的企业尚未在平台登记" in notes.first.inner_text()
    assert page.locator("svg[data-chart=landfill] circle[fill]").count() >= 1
    if phone:  # every other month label only, so that they never overlap
        visible = page.locator("svg[data-chart=landfill] text.x-label").evaluate_all(
            "ts => ts.filter(t => getComputedStyle(t).display !== 'none').length"
        )
        assert visible == 6
    look(page, "park-statistics-quarter")

    with page.expect_download() as download:
        page.click("[data-export=xlsx]")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == f"天台县经济开发区_{quarter.label}_统计.xlsx"
    summary = {row[0]: row[1] for row in load_workbook(saved)["汇总"].iter_rows(min_row=2, values_only=True)}
    assert summary["统计期间"] == quarter.label
    assert f"{summary['利用/处置量']:,.1f}" == processed and f"{summary['填埋量']:,.1f}" == landfilled
    assert f"{summary['填埋占比']:.2f}" == share.split()[0]
    page.context.close()
