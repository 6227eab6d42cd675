"""The regulator's lists (app/web/regulator.py): red and yellow boxes, flagged manifests, the
mass-balance anomalies. Each stays inside the jurisdiction (another county's rows are not listed;
a filter naming them is 404), filters, sorts and searches, and exports exactly what the page lists."""

from __future__ import annotations

import csv
import io
import re

import pytest
from openpyxl import load_workbook

from app.extensions import db
from tests import factories
from tests.ledger.builders import ago, build_loop, iso, new_manifest, walk_to
from tests.web.builders import coloured_box, login, overdue_manifest, text


@pytest.fixture
def loop(world, api):
    return build_loop(world, api, removed_kg=1800, replaced_at=ago(days=20))


@pytest.fixture
def wenling(world, api, loop):
    """The Wenling enterprise (another county) with a red box and an overdue manifest of its own."""
    box = coloured_box(world.other_enterprise, world.service, 30)
    stock_box = factories.box(world.other_enterprise, world.service)
    db.session.commit()
    for body in (
        {"mass_kg": 2000, "iodine_mg_g": 900, "filled_at": iso(ago(days=30))},
        {"mass_kg": 2000, "iodine_mg_g": 900, "filled_at": iso(ago(days=20)), "removed_waste_kg": 1500},
    ):
        r = api.post(f"/api/v1/boxes/{stock_box.code}/fills", body, as_="svc")
        assert r.status_code == 201, r.get_json()
    return {"box": box.code, "manifest": overdue_manifest(loop, consignor="other", quantity=400)}


def codes_on(page) -> list[str]:
    return re.findall(r'<li class="list-card card-\w+" data-code="([^"]+)"', page.get_data(as_text=True))


def numbers_on(page) -> list[str]:
    return re.findall(r'<li class="list-card" data-number="([^"]+)"', page.get_data(as_text=True))


def csv_rows(response) -> list[list[str]]:
    body = response.get_data()
    assert body.startswith("\ufeff".encode())  # Excel on Chinese Windows needs the BOM
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def xlsx_rows(response) -> list[list]:
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    return [list(row) for row in sheet.iter_rows(values_only=True)]


# ---------------------------------------------------------------- red and yellow boxes


def test_red_list_shows_days_reasons_in_words_and_stays_in_the_county(app, world, loop, wenling):
    red = coloured_box(world.enterprise, world.service, 30)
    yellow = coloured_box(world.enterprise, world.service, 8.5)
    client = login(app, "reg_tt")
    page = client.get("/oversight/boxes/red")
    assert page.status_code == 200
    html, words = page.get_data(as_text=True), text(page)
    assert red.code in codes_on(page) and yellow.code not in codes_on(page)
    assert wenling["box"] not in html  # another county's box is not listed
    card = re.search(rf'data-code="{red.code}"(.*?)</li>\s*</ul>\s*</li>', html, re.S).group(1)
    days = float(re.search(r"data-days>([\d.]+) 天", card).group(1))
    assert 15 < days < 21  # red since its ~10-day design cycle ran out, 30 days after the fill
    assert "应立即更换" in card and "saturation_full" not in card  # reasons in words, never rule codes
    assert world.enterprise.name in card and world.park.name in card and "天台县" in card
    assert f"共 {len(codes_on(page))} 个" in words
    # The yellow list holds the yellow box.
    assert codes_on(client.get("/oversight/boxes/yellow")) == [yellow.code]
    # A filter naming another county or its enterprise is "not found".
    assert client.get("/oversight/boxes/red?county=331081").status_code == 404
    assert client.get(f"/oversight/boxes/red?enterprise={world.other_enterprise.id}").status_code == 404
    # The city regulator sees both counties and can narrow to one.
    city = login(app, "reg_city")
    assert {red.code, wenling["box"]} <= set(codes_on(city.get("/oversight/boxes/red")))
    wenling_only = codes_on(city.get("/oversight/boxes/red?county=331081"))
    assert wenling["box"] in wenling_only and red.code not in wenling_only
    assert all(code.startswith("81-") for code in wenling_only)  # Wenling's box codes
    assert red.code in codes_on(city.get(f"/oversight/boxes/red?park={world.park.id}"))


def test_days_in_red_come_from_the_colour_history(app, world):
    box = coloured_box(world.enterprise, world.service, 30)
    from app.boxes.models import ColourChange

    change = db.session.query(ColourChange).filter_by(box_id=box.id, colour="red").one()
    expected = (ago(days=0) - change.changed_at.replace(tzinfo=ago(days=0).tzinfo)).total_seconds() / 86400
    page = login(app, "reg_tt").get("/oversight/boxes/red")
    shown = float(re.search(r"data-days>([\d.]+) 天", page.get_data(as_text=True)).group(1))
    assert abs(shown - expected) < 0.1


def test_red_list_filters_sorts_and_searches(app, world):
    second = factories.org("天台县第二化工有限公司", ["generator"], park=world.park)
    outside = factories.org("天台县园外塑料厂", ["generator"])
    db.session.commit()
    long_red = coloured_box(world.enterprise, world.service, 40)
    short_red = coloured_box(second, None, 25)
    outside_red = coloured_box(outside, None, 30)
    client = login(app, "reg_tt")
    # Longest in red first (the default).
    assert codes_on(client.get("/oversight/boxes/red")) == [long_red.code, outside_red.code, short_red.code]
    by_name = codes_on(client.get("/oversight/boxes/red?sort=enterprise"))
    names = {long_red.code: world.enterprise.name, short_red.code: second.name, outside_red.code: outside.name}
    assert [names[c] for c in by_name] == sorted(names.values())
    by_saturation = codes_on(client.get("/oversight/boxes/red?sort=saturation"))
    assert by_saturation[0] == long_red.code and by_saturation[-1] == short_red.code
    # Filters: the park, one enterprise; search by code (any case) or enterprise name.
    assert set(codes_on(client.get(f"/oversight/boxes/red?park={world.park.id}"))) == {long_red.code, short_red.code}
    assert codes_on(client.get(f"/oversight/boxes/red?enterprise={second.id}")) == [short_red.code]
    assert codes_on(client.get(f"/oversight/boxes/red?q={short_red.code.lower()}")) == [short_red.code]
    assert codes_on(client.get("/oversight/boxes/red?q=园外")) == [outside_red.code]
    assert "没有符合条件的碳箱" in text(client.get("/oversight/boxes/red?q=nothing-like-this"))


def test_red_list_exports_what_the_page_lists(app, world):
    evil = factories.org('=HYPERLINK("http://x","y")', ["generator"], park=world.park)
    db.session.commit()
    boxes = [coloured_box(world.enterprise, world.service, 30), coloured_box(evil, None, 35)]
    client = login(app, "reg_tt")
    query = f"park={world.park.id}&sort=enterprise"
    shown = codes_on(client.get(f"/oversight/boxes/red?{query}"))
    assert set(shown) == {b.code for b in boxes}
    exported = client.get(f"/oversight/boxes/red?{query}&format=csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert "attachment" in exported.headers["Content-Disposition"]
    rows = csv_rows(exported)
    assert rows[0][:5] == ["碳箱码", "企业", "园区", "县（市、区）", "颜色"]
    assert [r[0] for r in rows[1:]] == shown
    evil_row = next(r for r in rows[1:] if r[0] == boxes[1].code)
    assert evil_row[1].startswith("'=")  # a formula in a name stays text
    assert evil_row[4] == "红码" and float(evil_row[5]) > 0 and "应立即更换" in evil_row[7]
    book = xlsx_rows(client.get(f"/oversight/boxes/red?{query}&format=xlsx"))
    assert [r[0] for r in book[1:]] == shown
    assert book[1:] and all(not str(r[1]).startswith("=") for r in book[1:])


def test_lists_are_for_regulators_and_parks(app, world):
    for user in ("ent", "svc"):
        assert login(app, user).get("/oversight/boxes/red").status_code == 403, user
    assert login(app, "park").get("/oversight/boxes/red").status_code == 200
    assert login(app, "reg_tt").get("/oversight/boxes/green").status_code == 404


def test_lists_in_english_and_for_anonymous_visitors(app):
    """In their own app context: Flask-Babel and Flask-Login keep the locale and user on g."""
    with app.app_context():
        world = factories.World.build()
        code = coloured_box(world.enterprise, world.service, 30).code
    anonymous = app.test_client().get("/oversight/boxes/red")
    assert anonymous.status_code == 302 and anonymous.location.startswith("/login")
    client = login(app, "reg_tt")
    page = client.get("/oversight/boxes/red?lang=en")
    words = text(page)
    assert "Red boxes" in words and code in words and "replace now" in words and "红码碳箱" not in words
    english = csv_rows(client.get("/oversight/boxes/red?format=csv"))  # the lang cookie keeps English
    assert english[0][:2] == ["Box code", "Enterprise"] and english[1][0] == code and english[1][4] == "Red"
    assert "replace now" in english[1][7]
    assert "Overdue" in text(client.get("/oversight/manifests/overdue"))


# ---------------------------------------------------------------- manifests


def test_overdue_manifests_filter_sort_export_and_jurisdiction(app, world, api, loop, wenling):
    older = overdue_manifest(loop, quantity=300, picked_days_ago=12)
    newer = overdue_manifest(loop, quantity=500, picked_days_ago=9)
    on_time = new_manifest(api, loop, 100, submit=True)["number"]
    client = login(app, "reg_tt")
    page = client.get("/oversight/manifests/overdue")
    assert page.status_code == 200
    assert numbers_on(page) == [older, newer]  # the longest overdue first
    assert wenling["manifest"] not in page.get_data(as_text=True) and on_time not in page.get_data(as_text=True)
    assert numbers_on(client.get("/oversight/manifests/overdue?sort=quantity")) == [newer, older]
    assert numbers_on(client.get(f"/oversight/manifests/overdue?park={world.park.id}")) == [older, newer]
    assert numbers_on(client.get(f"/oversight/manifests/overdue?q={newer}")) == [newer]
    assert client.get(f"/oversight/manifests/overdue?enterprise={world.other_enterprise.id}").status_code == 404
    rows = csv_rows(client.get(f"/oversight/manifests/overdue?park={world.park.id}&format=csv"))
    assert [r[0] for r in rows[1:]] == [older, newer]
    assert rows[1][2] == world.enterprise.name and float(rows[1][6]) == 300
    book = xlsx_rows(client.get(f"/oversight/manifests/overdue?park={world.park.id}&format=xlsx"))
    assert [r[0] for r in book[1:]] == [older, newer] and book[2][6] == 500
    city = login(app, "reg_city")
    assert set(numbers_on(city.get("/oversight/manifests/overdue"))) == {older, newer, wenling["manifest"]}
    assert numbers_on(city.get("/oversight/manifests/overdue?county=331081")) == [wenling["manifest"]]


def test_discrepant_and_rejected_manifests(app, world, api, loop):
    discrepant = new_manifest(api, loop, 500, submit=True)["number"]
    walk_to(api, discrepant, "in_transit")
    r = api.post(f"/api/v1/manifests/{discrepant}/receive", {"lines": [{"line_no": 1, "received_kg": 400}]}, as_="svc")
    assert r.status_code == 200 and r.get_json()["discrepant"] is True
    rejected = new_manifest(api, loop, 200, submit=True)["number"]
    walk_to(api, rejected, "in_transit")
    assert api.post(f"/api/v1/manifests/{rejected}/reject", {"reason": "包装破损"}, as_="svc").status_code == 200
    client = login(app, "reg_tt")
    page = client.get("/oversight/manifests/discrepant")
    assert numbers_on(page) == [discrepant]
    assert "-20.0%" in text(page) and "允差 ±5%" in text(page)
    rows = csv_rows(client.get("/oversight/manifests/discrepant?format=csv"))
    assert rows[1][0] == discrepant and float(rows[1][7]) == 400 and float(rows[1][8]) == -100
    page = client.get("/oversight/manifests/rejected")
    assert numbers_on(page) == [rejected] and "包装破损" in text(page)
    assert login(app, "other").get("/oversight/manifests/rejected").status_code == 403


# ---------------------------------------------------------------- anomalies


def test_anomalies_page_shows_the_figures_behind_each(app, world, api, loop, wenling):
    overdue_manifest(loop, quantity=300)
    client = login(app, "reg_tt")
    page = client.get("/oversight/anomalies")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    card = re.search(
        rf'<li class="list-card" data-anomaly="shipped_not_received" data-enterprise="{world.enterprise.id}">(.*?)</li>',
        html,
        re.S,
    )
    assert card, html
    body = card.group(1)
    assert 'data-figure="generated">1,800.0 kg' in body  # the replacement's waste carbon
    assert 'data-figure="shipped">300.0 kg' in body
    assert 'data-figure="on_site">1,500.0 kg' in body
    assert 'data-figure="difference">300.0 kg' in body
    assert re.search(r'data-threshold="receipt_working_days">5<', body)
    assert f'href="/ledger?enterprise={world.enterprise.id}"' in body
    assert f'data-enterprise="{world.other_enterprise.id}"' not in html  # Wenling's is not listed
    assert client.get(f"/oversight/anomalies?enterprise={world.other_enterprise.id}").status_code == 404
    city = login(app, "reg_city").get("/oversight/anomalies?county=331081").get_data(as_text=True)
    assert f'data-enterprise="{world.other_enterprise.id}"' in city
    assert f'data-enterprise="{world.enterprise.id}"' not in city


def test_dashboard_links_to_the_lists(app, world, loop):
    coloured_box(world.enterprise, world.service, 30)
    html = login(app, "reg_tt").get("/").get_data(as_text=True)
    for href in (
        "/oversight/boxes/red",
        "/oversight/boxes/yellow",
        "/oversight/manifests/overdue",
        "/oversight/manifests/discrepant",
        "/oversight/manifests/rejected",
        "/oversight/anomalies",
    ):
        assert f'href="{href}"' in html, href


def test_past_the_cap_the_enterprise_filter_asks_to_narrow_first_and_still_filters(app, world, monkeypatch):
    """A city's 10,000 enterprises are not a select: past ENTERPRISE_CHOICES the page asks for a
    county or park first; an enterprise named in the link still filters (kept in the form), and
    one outside the jurisdiction is still not found."""
    from app.boxes.services import lists as box_lists

    tiantai = coloured_box(world.enterprise, world.service, 30)
    wenling = coloured_box(world.other_enterprise, None, 30)
    db.session.commit()
    client = login(app, "reg_city")
    monkeypatch.setattr(box_lists, "ENTERPRISE_CHOICES", 1)
    html = client.get("/oversight/boxes/red").get_data(as_text=True)
    assert "data-enterprises-more" in html and 'name="enterprise"' not in html
    assert tiantai.code in html and wenling.code in html
    narrowed = client.get(f"/oversight/boxes/red?enterprise={world.enterprise.id}").get_data(as_text=True)
    assert f'type="hidden" name="enterprise" value="{world.enterprise.id}"' in narrowed
    assert tiantai.code in narrowed and wenling.code not in narrowed
    # one county holds one enterprise here: its choices are listed again
    county = client.get("/oversight/boxes/red?county=331081").get_data(as_text=True)
    assert "data-enterprises-more" not in county and f'<option value="{world.other_enterprise.id}"' in county
    assert login(app, "reg_tt").get(f"/oversight/boxes/red?enterprise={world.other_enterprise.id}").status_code == 404
