"""The desktop pages (app/web/pages.py): the role dashboard, ledger and stock, manifests, box detail.

Each page answers the right user with what their jurisdiction holds, another tenant with 404 (as
the API does) or without the foreign rows, an anonymous visitor with a redirect to the sign-in page.
"""

from __future__ import annotations

import re

import pytest

from app.accounts.services import Principal
from app.boxes import services as box_services
from app.extensions import db
from app.ledger import services as ledger_services
from app.ledger.models import Manifest
from tests import factories
from tests.ledger.builders import ago, build_loop, iso, manifest_body, new_manifest, walk_to


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def login(app, username: str):
    client = app.test_client()
    r = client.post("/login", data={"username": username, "password": factories.PASSWORD})
    assert r.status_code == 302, r.get_data(as_text=True)
    return client


def principal(world, key: str) -> Principal:
    return Principal(user=world.users[key])


def red_box(world, **extra):
    """A box filled 30 days ago: far past its ~10-day design cycle, so red."""
    box = factories.box(world.enterprise, world.service, now=ago(days=40), **extra)
    box_services.record_fill(
        db.session,
        factories.op_principal(),
        box,
        {"filled_at": ago(days=30), "mass_kg": 2000.0, "iodine_mg_g": 900.0},
        now=ago(days=30),
    )
    box_services.refresh_colours(db.session, [box], ago(days=0))  # green then, red by now
    db.session.commit()
    assert box.colour == "red"
    return box


def overdue_manifest(world, loop, quantity=300.0) -> str:
    """Submitted 12 days ago, picked up 11 days ago, never received: overdue in transit."""
    manifest = ledger_services.create_manifest(
        db.session, principal(world, "ent"), manifest_body(loop, quantity), now=ago(days=12, hours=1)
    )
    ledger_services.submit(
        db.session, principal(world, "ent"), manifest, now=ago(days=12), signature=factories.signed(world.users["ent"])
    )
    drv = Principal(user=db.session.query(factories.User).filter_by(username="drv").one())
    ledger_services.pickup(
        db.session,
        drv,
        manifest,
        {"vehicle_plate": "浙J12345", "driver_name": "王师傅", "picked_up_at": ago(days=11)},
        now=ago(days=11),
        signature=factories.signed(drv.user),
        handover=factories.handed_over(manifest),
    )
    db.session.commit()
    return manifest.number


@pytest.fixture
def loop(world, api):
    # The waste carbon was weighed 20 days ago: a manifest can have been picked up 11 days ago.
    return build_loop(world, api, removed_kg=1800, replaced_at=ago(days=20))


# ---------------------------------------------------------------- anonymous


@pytest.mark.parametrize(
    "path", ["/", "/ledger", "/stock", "/manifests", "/manifests/20253310000001", "/boxes/23-AAAAAA"]
)
def test_anonymous_visitors_are_sent_to_sign_in(client, path):
    r = client.get(path)
    assert r.status_code == 302
    assert r.location.startswith("/login")


# ---------------------------------------------------------------- the dashboard


def test_regulator_dashboard_shows_red_boxes_flags_and_anomalies(app, world, api, loop):
    box = red_box(world)
    overdue = overdue_manifest(world, loop)
    discrepant = new_manifest(api, loop, 500, submit=True)["number"]
    walk_to(api, discrepant, "in_transit")
    r = api.post(f"/api/v1/manifests/{discrepant}/receive", {"lines": [{"line_no": 1, "received_kg": 400}]}, as_="svc")
    assert r.status_code == 200 and r.get_json()["discrepant"] is True
    rejected = new_manifest(api, loop, 200, submit=True)["number"]
    walk_to(api, rejected, "in_transit")
    assert api.post(f"/api/v1/manifests/{rejected}/reject", {"reason": "包装破损"}, as_="svc").status_code == 200

    page = login(app, "reg_tt").get("/")
    assert page.status_code == 200
    html, words = page.get_data(as_text=True), text(page)
    assert 'data-section="oversight"' in html and 'data-section="enterprise"' not in html
    # Colour tiles link to the filtered box list; the red list names the box and why.
    assert 'href="/boxes?colour=red"' in html
    red_row = re.search(rf'<tr data-colour="red" data-code="{box.code}">(.*?)</tr>', html, re.S)
    assert red_row and "饱和度" in red_row.group(1) and "应立即更换" in red_row.group(1)
    # Each flag list holds its manifest, and only it.
    sections = {
        name: re.search(rf'<div class="card" id="{name}">(.*?)</div>\s*</div>', html, re.S).group(1)
        for name in ("overdue", "discrepant")
    }
    assert overdue in sections["overdue"] and discrepant not in sections["overdue"]
    assert discrepant in sections["discrepant"] and overdue not in sections["discrepant"]
    rejected_card = html.split('id="rejected"', 1)[1]
    assert rejected in rejected_card
    assert re.search(
        r'data-count="overdue"><span class="tile-label">超期未接收</span><span class="tile-value">1<', html
    )
    # The mass-balance anomaly with its Chinese explanation.
    assert 'data-anomaly="shipped_not_received"' in html
    assert "1 张联单共 300 kg 已运出，超过 5 个工作日仍未被接收" in words
    assert world.enterprise.name in words


def test_dashboards_stay_inside_the_jurisdiction(app, world, api, loop):
    box = red_box(world)
    number = overdue_manifest(world, loop)
    # The Wenling enterprise sees its own (empty) world, nothing of Tiantai's.
    page = login(app, "other").get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-section="enterprise"' in html and 'data-section="oversight"' not in html
    assert box.code not in html and number not in html and world.enterprise.name not in html
    # The park administration sees its park's enterprise; the city regulator sees everything.
    for user in ("park", "reg_city"):
        html = login(app, user).get("/").get_data(as_text=True)
        assert box.code in html and number in html, user


def test_enterprise_dashboard(app, world, api, loop):
    open_number = new_manifest(api, loop, 700, submit=True)["number"]
    page = login(app, "ent").get("/")
    assert page.status_code == 200
    html, words = page.get_data(as_text=True), text(page)
    assert 'data-section="enterprise"' in html and 'data-section="oversight"' not in html
    # Stock on hand per waste code in kg and t (1800 kg weighed at the replacement).
    stock_row = re.search(r'<tr data-waste-code="900-039-49">(.*?)</tr>', html, re.S).group(1)
    assert "1,800.0" in stock_row and "1.800" in stock_row and "1,100.0" in stock_row  # 700 reserved
    # Recent ledger records (generation and storage of the replacement) and the open manifest.
    recent = html.split('id="recent-records"', 1)[1]
    assert "产生" in recent and "入库" in recent
    assert open_number in html.split('id="open-manifests"', 1)[1]
    assert "已提交" in words
    # Their boxes by colour: the one box of the loop is counted.
    assert re.search(r'data-total="1"', html)


def test_carrier_and_receiver_dashboards(app, world, api, loop):
    to_pick_up = new_manifest(api, loop, 300, submit=True)["number"]
    moving = new_manifest(api, loop, 400, submit=True)["number"]
    walk_to(api, moving, "in_transit")
    carrier = login(app, "drv").get("/").get_data(as_text=True)
    assert 'data-section="carrier"' in carrier and 'data-section="enterprise"' not in carrier
    assert to_pick_up in carrier.split('id="to-pick-up"', 1)[1].split('id="in-transit"', 1)[0]
    assert moving in carrier.split('id="in-transit"', 1)[1]
    assert to_pick_up not in carrier.split('id="in-transit"', 1)[1]

    # The carbon service is also the licensed receiver and regeneration plant of the loop.
    red = red_box(world)
    service = login(app, "svc").get("/").get_data(as_text=True)
    for section in ("service", "receiver", "regeneration"):
        assert f'data-section="{section}"' in service, section
    assert red.code in service.split('id="due-boxes"', 1)[1]
    assert moving in service.split('id="to-receive"', 1)[1].split('id="to-process"', 1)[0]
    assert to_pick_up not in service


def test_regeneration_batches_on_the_plant_dashboard(app, world, api, loop):
    number = new_manifest(api, loop, 1000, submit=True)["number"]
    walk_to(api, number, "closed")
    r = api.post(
        "/api/v1/regeneration-batches",
        {
            "batch_no": "ZS-TEST-01",
            "inputs": [{"manifest_number": number, "line_no": 1, "quantity_kg": 1000}],
            "output_kg": 700,
            "iodine_mg_g": 850,
        },
        as_="svc",
    )
    assert r.status_code == 201, r.get_json()
    html = login(app, "svc").get("/").get_data(as_text=True)
    batches = html.split('id="regeneration"', 1)[1]
    assert "ZS-TEST-01" in batches and "1,000.0" in batches and "700.0" in batches and "70%" in batches


# ---------------------------------------------------------------- ledger and stock


def test_ledger_page_with_filters(app, world, api, loop):
    number = new_manifest(api, loop, 1000, submit=True)["number"]
    walk_to(api, number, "closed")
    client = login(app, "ent")
    page = client.get("/ledger")
    assert page.status_code == 200
    html, words = page.get_data(as_text=True), text(page)
    stages = re.findall(r'<tr data-stage="(\w+)">', html)
    assert sorted(stages) == ["generation", "out_of_storage", "sent_out", "storage"]
    for label in ("产生", "入库", "出库", "委外利用处置"):
        assert label in words
    assert f'href="/manifests/{number}"' in html and "R7" in words
    # A period before the replacement has no records; a bad date is reported, not a 500.
    before = (ago(days=60)).date().isoformat()
    empty = client.get(f"/ledger?from={before}&to={(ago(days=40)).date().isoformat()}")
    assert empty.status_code == 200 and "所选期间没有台账记录" in text(empty)
    stage_only = client.get("/ledger?stage=sent_out").get_data(as_text=True)
    assert re.findall(r'<tr data-stage="(\w+)">', stage_only) == ["sent_out"]
    bad = client.get("/ledger?from=2025-13-40")
    assert bad.status_code == 200 and "日期格式应为 YYYY-MM-DD" in text(bad)


def test_ledger_and_stock_follow_the_jurisdiction(app, world, api, loop):
    regulator = login(app, "reg_tt")
    picker = regulator.get("/ledger")
    assert picker.status_code == 200 and "请选择要查看台账的企业" in text(picker)
    assert world.enterprise.name in text(picker) and world.other_enterprise.name not in text(picker)
    assert regulator.get(f"/ledger?enterprise={world.enterprise.id}").status_code == 200
    # Another county's enterprise, for the Tiantai regulator and for the Wenling enterprise: 404.
    assert regulator.get(f"/ledger?enterprise={world.other_enterprise.id}").status_code == 404
    other = login(app, "other")
    for path in (f"/ledger?enterprise={world.enterprise.id}", f"/stock?enterprise={world.enterprise.id}"):
        r = other.get(path)
        assert r.status_code == 404 and world.enterprise.name not in text(r), path
    own = other.get("/stock")
    assert own.status_code == 200 and "没有库存" in text(own)


def test_stock_page(app, world, api, loop):
    new_manifest(api, loop, 500, submit=True)
    page = login(app, "ent").get("/stock")
    assert page.status_code == 200
    row = re.search(r'<tr data-waste-code="900-039-49">(.*?)</tr>', page.get_data(as_text=True), re.S).group(1)
    cells = [c.strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells[0] == "900-039-49" and cells[1] == "HW49"
    assert cells[3:7] == ["1,800.0", "1.800", "500.0", "1,300.0"]  # on hand kg, t, reserved, available
    assert "登记管理" in text(page)  # 1.8 t a year: registration class


# ---------------------------------------------------------------- manifests


def test_manifest_list_filters_and_tenancy(app, world, api, loop):
    rejected = new_manifest(api, loop, 200, submit=True)["number"]
    walk_to(api, rejected, "in_transit")
    assert api.post(f"/api/v1/manifests/{rejected}/reject", {"reason": "受潮"}, as_="svc").status_code == 200
    draft = new_manifest(api, loop, 300)["number"]
    client = login(app, "reg_tt")
    everything = client.get("/manifests").get_data(as_text=True)
    assert rejected in everything and draft in everything
    only_rejected = client.get("/manifests?flag=rejected").get_data(as_text=True)
    assert rejected in only_rejected and draft not in only_rejected
    only_drafts = client.get("/manifests?status=draft").get_data(as_text=True)
    assert draft in only_drafts and rejected not in only_drafts
    assert 'data-flag="rejected"' in only_rejected
    foreign = login(app, "other").get("/manifests")
    assert foreign.status_code == 200 and rejected not in foreign.get_data(as_text=True)
    assert "没有符合条件的联单" in text(foreign)


def test_manifest_detail(app, world, api, loop):
    number = new_manifest(api, loop, 1000, submit=True)["number"]
    walk_to(api, number, "in_transit")
    r = api.post(f"/api/v1/manifests/{number}/receive", {"lines": [{"line_no": 1, "received_kg": 990}]}, as_="svc")
    assert r.status_code == 200
    assert (
        api.post(
            f"/api/v1/manifests/{number}/process", {"lines": [{"line_no": 1, "method_code": "R7"}]}, as_="svc"
        ).status_code
        == 200
    )
    manifest = db.session.query(Manifest).filter_by(number=number).one()
    db.session.refresh(manifest)
    pickup = next(e for e in manifest.events if e.action == "pickup")

    for user in ("ent", "drv", "svc", "reg_tt", "reg_city", "park"):
        assert login(app, user).get(f"/manifests/{number}").status_code == 200, user
    page = login(app, "reg_tt").get(f"/manifests/{number}")
    html, words = page.get_data(as_text=True), text(page)
    for party in (world.enterprise.name, "台州危运物流有限公司", world.service.name):
        assert party in words
    assert "浙J12345" in words and "王师傅" in words
    line = re.search(r'<tr data-line="1">(.*?)</tr>', html, re.S).group(1)
    assert "900-039-49" in line and "1,000.0" in line and "990.0" in line and 'data-method="R7"' in line
    assert "回收污染减除剂的组分" in line
    assert [a for a in re.findall(r'<li data-action="(\w+)">', html)] == [
        "create",
        "submit",
        "pickup",
        "receive",
        "process",
        "close",
    ]
    # Actor, organisation and Shanghai time of the pickup.
    local = pickup.at.astimezone(ledger_services.SHANGHAI).strftime("%Y-%m-%d %H:%M")
    pickup_item = html.split('<li data-action="pickup">', 1)[1].split("</li>", 1)[0]
    assert local in pickup_item and "drv" in pickup_item and "台州危运物流有限公司" in pickup_item
    assert f'href="/api/v1/manifests/{number}.pdf"' in html and f'href="/m/{number}"' in html
    assert "已办结" in words


def test_another_tenants_manifest_is_not_found(app, world, api, loop):
    number = new_manifest(api, loop, 500, submit=True)["number"]
    other = login(app, "other")
    r = other.get(f"/manifests/{number}")
    assert r.status_code == 404
    assert world.enterprise.name not in text(r) and "不存在" in text(r)
    assert api.get(f"/api/v1/manifests/{number}", as_="other").status_code == 404  # the same answer as the API
    assert other.get("/manifests/20990000000000").status_code == 404


# ---------------------------------------------------------------- boxes


def _readings(api, code: str, hours: int = 6) -> None:
    items = [
        {
            "box_code": code,
            "ts": iso(ago(minutes=15 * i)),
            "inlet_mg_m3": 120.0 + i,
            "outlet_mg_m3": 8.0,
            "airflow_m3_h": 15000.0,
            "bed_temp_c": 31.5,
            "pressure_drop_pa": 800.0,
        }
        for i in range(hours * 4, 0, -1)
    ]
    r = api.post("/api/v1/readings", {"readings": items})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["accepted"] == len(items)


def test_box_detail_page(app, world, api):
    box = red_box(world)
    client = login(app, "reg_tt")
    page = client.get(f"/boxes/{box.code}")
    assert page.status_code == 200
    html, words = page.get_data(as_text=True), text(page)
    assert '<section class="colour-card colour-red box-badge" data-colour="red">' in html
    assert box.code in words and world.enterprise.name in words
    assert "saturation_full" in re.findall(r'data-rule="(\w+)"', html)
    assert re.search(r'data-fact="saturation">\d+%', html)
    assert re.search(
        r'data-fact="predicted">\d{4}-\d{2}-\d{2} <small[^>]*data-fact="prediction-basis">\(按设计负荷\)', html
    )
    # Colour history with the days spent in each colour.
    history = html.split('id="colour-history"', 1)[1]
    assert "绿码" in history and "红码" in history and "至今" in history
    days = html.split('id="days-in-colour"', 1)[1]
    green_days = float(re.search(r'<tr data-colour="green">.*?<td class="num">([\d.]+)</td>', days, re.S).group(1))
    # Green from the fill until a week before the predicted date (yellow then): T − 7 d ≈ 3.4 d.
    assert 3 < green_days < 4
    assert "2,000" in html.split('id="fills"', 1)[1]
    assert 'id="sensors"' not in html  # no sensors, no monitoring section

    # A box with sensors: the latest reading and the 48-hour chart of hourly inlet/outlet averages.
    sensed = factories.box(world.enterprise, world.service, has_sensors=True)
    box_services.record_fill(
        db.session,
        factories.op_principal(),
        sensed,
        {"filled_at": ago(days=1), "mass_kg": 2000.0, "iodine_mg_g": 900.0},
    )
    db.session.commit()
    _readings(api, sensed.code)
    sensors = client.get(f"/boxes/{sensed.code}").get_data(as_text=True).split('id="sensors"', 1)[1]
    assert "31.5" in sensors and "121.0" in sensors and "8.0" in sensors
    inlet = re.search(r'<polyline points="([^"]+)" class="series inlet"', sensors).group(1)
    assert len(inlet.split()) >= 5  # one point per hour with readings
    assert 'class="series outlet"' in sensors and "排放限值" in sensors


def test_another_tenants_box_is_not_found(app, world, api):
    box = red_box(world)
    r = login(app, "other").get(f"/boxes/{box.code}")
    assert r.status_code == 404 and world.enterprise.name not in text(r)
    assert api.get(f"/api/v1/boxes/{box.code}", as_="other").status_code == 404
    assert login(app, "ent").get("/boxes/not-a-code").status_code == 404


def test_scan_page_shows_the_latest_reading(app, world, api):
    box = factories.box(world.enterprise, world.service, has_sensors=True)
    plain = factories.box(world.enterprise, world.service)
    db.session.commit()
    _readings(api, box.code, hours=1)
    page = app.test_client().get(f"/c/{box.code}")
    assert page.status_code == 200
    reading = page.get_data(as_text=True).split('id="latest-reading"', 1)[1]
    assert re.search(r'data-fact="reading-voc">121.0 / 8.0 mg/m³<', reading)
    assert 'data-fact="reading-bed">31.5 °C<' in reading
    local = ago(minutes=15).astimezone(ledger_services.SHANGHAI)
    assert local.strftime("%Y-%m-%d") in reading
    assert 'id="latest-reading"' not in app.test_client().get(f"/c/{plain.code}").get_data(as_text=True)


# ---------------------------------------------------------------- languages


def test_pages_in_english(app):
    """Built in their own app context: Flask-Babel keeps the locale on g (see tests/web/test_i18n.py)."""
    with app.app_context():
        world = factories.World.build()
        box = red_box(world)
        code, enterprise = box.code, world.enterprise.name
    client = login(app, "reg_tt")
    en = client.get("/?lang=en")
    words = text(en)
    assert en.status_code == 200 and '<html lang="en">' in en.get_data(as_text=True)
    assert "Dashboard" in words and "Boxes in your jurisdiction" in words and "Mass-balance anomalies" in words
    assert "Red" in words and code in words and "工作台" not in words and "辖区碳箱四色码" not in words
    box_page = text(client.get(f"/boxes/{code}"))  # the lang cookie keeps English
    assert "Days in each colour" in box_page and "Colour history" in box_page and "颜色变化记录" not in box_page
    manifests = text(client.get("/manifests?lang=en"))
    assert "Hazardous-waste transfer manifest" in manifests and "No manifests match" in manifests
    zh = text(client.get("/?lang=zh"))
    assert "工作台" in zh and enterprise in zh
