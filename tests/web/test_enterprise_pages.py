"""The enterprise's pages over HTTP (app/web/enterprise.py, app/web/manifest_forms.py) and the
carrier's pickup page (app/ledger/verify_pages.py): who may use each route (the enterprise's
admin, its staff, another enterprise: 404 for what it may not see), what a refused form shows,
and what is stored."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.boxes.models import Box
from app.extensions import db
from app.ledger.models import Manifest
from tests import factories
from tests.ledger.builders import build_loop, manifest_status, new_manifest, stock_api


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


class SignedIn:
    """A test client signed in as one user. The tests' app context is shared by the requests, and
    Flask-Login keeps the loaded user on its ``g``: forgotten before each request, so that several
    users' clients can take turns in one test."""

    def __init__(self, client):
        self.client = client

    def _forget(self):
        from flask import g

        g.pop("_login_user", None)

    def get(self, *args, **kwargs):
        self._forget()
        return self.client.get(*args, **kwargs)

    def post(self, *args, **kwargs):
        self._forget()
        return self.client.post(*args, **kwargs)


def login(app, username: str, password: str = factories.PASSWORD) -> SignedIn:
    client = SignedIn(app.test_client())
    r = client.post("/login", data={"username": username, "password": password})
    assert r.status_code == 302, r.get_data(as_text=True)
    return client


BOX_FORM = {
    "name": "喷涂线 1 号",
    "facility_code": "TA002",
    "outlet_code": "DA002",
    "carbon_type": "granular",
    "design_fill_kg": "1500",
    "design_airflow_m3_h": "12000",
    "design_removed_mg_m3": "60",
    "hours_per_day": "16",
    "emission_limit_mg_m3": "60",
}


@pytest.fixture
def loop(world, api):
    return build_loop(world, api, removed_kg=1800)


# ---------------------------------------------------------------- boxes and staff


def test_the_admin_registers_a_box(app, world):
    client = login(app, "ent")
    assert client.get("/enterprise/boxes/new").status_code == 200
    r = client.post("/enterprise/boxes/new", data={**BOX_FORM, "service_org_id": str(world.service.id)})
    assert r.status_code == 302 and "/boxes?registered=" in r.headers["Location"]
    code = r.headers["Location"].split("registered=")[1]
    db.session.rollback()
    box = db.session.scalar(select(Box).where(Box.code == code))
    assert box.enterprise_id == world.enterprise.id and box.service_org_id == world.service.id
    assert box.facility_code == "TA002" and float(box.design_fill_kg) == 1500
    listing = client.get(r.headers["Location"])
    assert f'value="{code}" aria-label' in listing.get_data(as_text=True)
    assert "已登记" in text(listing)


def test_a_refused_box_form_keeps_what_was_typed_with_chinese_errors(app, world):
    client = login(app, "ent")
    r = client.post("/enterprise/boxes/new?lang=zh", data={**BOX_FORM, "hours_per_day": "30", "facility_code": "T A"})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert 'role="alert"' in html and 'data-error-for="hours_per_day"' in html
    assert 'data-error-for="facility_code"' in html
    assert 'value="喷涂线 1 号"' in html and 'value="12000"' in html
    assert not re.search(r"data-error-for=\"\w+\">[^<]*[A-Za-z]{4}", html), "English in a Chinese error"
    db.session.rollback()
    assert db.session.scalar(select(Box).where(Box.facility_code == "TA002")) is None


@pytest.mark.parametrize("username", ["ent_staff", "svc", "reg_tt"])
def test_only_an_enterprise_admin_registers_boxes_and_staff(app, world, username):
    client = login(app, username)
    assert client.get("/enterprise/boxes/new").status_code == 403
    assert client.post("/enterprise/boxes/new", data=BOX_FORM).status_code == 403
    assert client.get("/enterprise/staff").status_code == 403
    assert (
        client.post("/enterprise/staff", data={"username": "x1", "password": "a-long-pass-phrase"}).status_code == 403
    )


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for path in (
        "/enterprise/boxes/new",
        "/enterprise/staff",
        "/manifests/new",
        "/manifests/todo",
        "/boxes/labels.pdf",
    ):
        r = client.get(path)
        assert r.status_code == 302 and "/login" in r.headers["Location"], path


def test_the_admin_creates_staff_with_the_password_policy(app, world):
    client = login(app, "ent")
    page = client.get("/enterprise/staff")
    assert page.status_code == 200
    listed = set(re.findall(r'data-username="([^"]+)"', page.get_data(as_text=True)))
    assert listed == {"ent", "ent_staff"}  # the organisation's own staff only
    weak = client.post(
        "/enterprise/staff?lang=zh", data={"username": "wang", "password": "password1", "display_name": "王"}
    )
    assert weak.status_code == 422
    assert "至少 10 个字符" in text(weak) and "过于常见" in text(weak)
    assert 'value="wang"' in weak.get_data(as_text=True)
    assert 'name="password" type="password" value=""' in weak.get_data(as_text=True)  # a password is never echoed
    ok = client.post(
        "/enterprise/staff",
        data={"username": "wang", "password": "tiger-lily-meadow", "display_name": "王", "role": "staff"},
    )
    assert ok.status_code == 302
    db.session.rollback()
    user = db.session.scalar(select(User).where(User.username == "wang"))
    assert user.organization_id == world.enterprise.id and user.role == "staff" and not user.is_operator
    taken = client.post("/enterprise/staff", data={"username": "wang", "password": "tiger-lily-meadow-2"})
    assert taken.status_code == 422 and "已存在" in text(taken)
    login(app, "wang", "tiger-lily-meadow")  # the password works


# ---------------------------------------------------------------- label sheets


def test_labels_of_the_ticked_boxes(app, world):
    mine = factories.box(world.enterprise, world.service)
    theirs = factories.box(world.other_enterprise)
    db.session.commit()
    client = login(app, "ent_staff")
    listing = client.get("/boxes").get_data(as_text=True)
    assert 'data-select-all="codes"' in listing and f'value="{mine.code}"' in listing
    r = client.get(f"/boxes/labels.pdf?codes={mine.code}")
    assert r.status_code == 200 and r.mimetype == "application/pdf" and r.data.startswith(b"%PDF")
    foreign = client.get(f"/boxes/labels.pdf?codes={mine.code}&codes={theirs.code}")
    assert foreign.status_code == 404 and foreign.mimetype == "text/html"
    none = client.get("/boxes/labels.pdf?lang=zh")
    assert none.status_code == 422 and "请在碳箱列表中勾选" in text(none)


def test_the_api_sheet_is_unchanged(app, world, api):
    box = factories.box(world.enterprise)
    db.session.commit()
    r = api.get(f"/api/v1/labels.pdf?codes={box.code}", as_="ent")
    assert r.status_code == 200 and r.data.startswith(b"%PDF")
    assert api.get("/api/v1/labels.pdf", as_="ent").status_code == 422


# ---------------------------------------------------------------- manifests from stock


def _form(loop, quantity="600", packaging="吨袋 1 只", **extra):
    return {
        "carrier_id": str(loop.carrier.id),
        "receiver_id": str(loop.world.service.id),
        "waste_code": "900-039-49",
        "quantity_kg-900-039-49": quantity,
        "packaging-900-039-49": packaging,
        **extra,
    }


def test_the_stock_page_offers_a_manifest(app, loop):
    staff = login(app, "ent_staff")
    stock = staff.get("/stock").get_data(as_text=True)
    assert 'data-link="new-manifest"' in stock
    regulator = login(app, "reg_tt").get(f"/stock?enterprise={loop.world.enterprise.id}").get_data(as_text=True)
    assert 'data-link="new-manifest"' not in regulator
    form = staff.get("/manifests/new?lang=zh")
    html = form.get_data(as_text=True)
    assert form.status_code == 200
    assert loop.carrier.name in html and loop.world.service.name in html
    assert 'data-waste-code="900-039-49"' in html and "1,800" in text(form)


def test_a_manifest_from_stock_is_a_draft_then_submitted(app, loop, api):
    client = login(app, "ent_staff")
    r = client.post("/manifests/new", data=_form(loop))
    assert r.status_code == 302, text(r)
    number = r.headers["Location"].rsplit("/", 1)[1]
    assert manifest_status(number) == "draft"
    manifest = db.session.scalar(select(Manifest).where(Manifest.number == number))
    assert [(line.waste_code, float(line.quantity_kg), line.packaging) for line in manifest.lines] == [
        ("900-039-49", 600.0, "吨袋 1 只")
    ]
    detail = client.get(f"/manifests/{number}").get_data(as_text=True)
    assert 'data-steps="submit cancel"' in detail
    todo = client.get("/manifests/todo").get_data(as_text=True)
    assert re.search(rf'data-status="draft".*?data-number="{number}"', todo, re.S)
    unsigned = client.post(f"/manifests/{number}/submit", follow_redirects=True)
    assert 'class="error" role="alert"' in unsigned.get_data(as_text=True) and manifest_status(number) == "draft"
    r = client.post(f"/manifests/{number}/submit", data={"signature_password": factories.PASSWORD})
    assert r.status_code == 302
    assert manifest_status(number) == "submitted"
    assert stock_api(api)["reserved_kg"] == 600
    todo = client.get("/manifests/todo?lang=zh").get_data(as_text=True)
    assert re.search(rf'data-status="submitted".*?data-number="{number}".*?{loop.carrier.name}', todo, re.S)
    again = client.post(
        f"/manifests/{number}/submit", data={"signature_password": factories.PASSWORD}, follow_redirects=True
    )
    assert 'class="error" role="alert"' in again.get_data(as_text=True)
    assert manifest_status(number) == "submitted"


def test_a_draft_is_cancelled_before_pickup(app, loop, api):
    number = new_manifest(api, loop, 500, submit=True)["number"]
    client = login(app, "ent")
    assert client.post(f"/manifests/{number}/cancel", data={"reason": "改期"}).status_code == 302
    assert manifest_status(number) == "cancelled"
    assert stock_api(api)["reserved_kg"] == 0


def test_a_refused_manifest_form_names_the_field_in_chinese(app, loop):
    client = login(app, "ent")
    too_much = client.post("/manifests/new?lang=zh", data=_form(loop, quantity="5000"))
    assert too_much.status_code == 422
    html = too_much.get_data(as_text=True)
    assert 'data-error-for="quantity_kg-900-039-49"' in html and "可转移 1800 kg" in text(too_much)
    assert 'value="5000"' in html and 'value="吨袋 1 只"' in html
    empty = client.post("/manifests/new?lang=zh", data={"carrier_id": str(loop.carrier.id)})
    assert empty.status_code == 422 and 'data-error-for="lines"' in empty.get_data(as_text=True)
    assert 'data-error-for="receiver_id"' in empty.get_data(as_text=True)
    bad = client.post("/manifests/new?lang=zh", data=_form(loop, quantity="abc", packaging=""))
    assert "不是有效的数字" in text(bad) and 'data-error-for="packaging-900-039-49"' in bad.get_data(as_text=True)
    db.session.rollback()
    assert db.session.scalar(select(Manifest.id)) is None


def test_other_enterprises_and_other_roles_cannot_act_on_a_manifest(app, loop, api):
    number = new_manifest(api, loop, 500)["number"]
    other = login(app, "other")
    assert other.post(f"/manifests/{number}/submit").status_code == 404
    assert other.post(f"/manifests/{number}/cancel").status_code == 404
    pickup = {"vehicle_plate": "浙J12345", "driver_name": "王", "driver_phone": "13812345678"}
    assert other.post(f"/m/{number}/pickup", data=pickup).status_code == 302  # back to the page, no form for them
    assert "data-steps" not in login(app, "reg_tt").get(f"/manifests/{number}").get_data(as_text=True)
    carrier = login(app, "drv")
    assert carrier.get("/manifests/new").status_code == 403
    assert carrier.get("/manifests/todo").status_code == 403
    r = carrier.post(f"/manifests/{number}/submit", follow_redirects=True)
    assert 'role="alert"' in r.get_data(as_text=True)
    assert manifest_status(number) == "draft"


# ---------------------------------------------------------------- the carrier's pickup page


def test_the_carrier_sees_what_is_taken_and_errors_as_errors(app, loop, api):
    number = new_manifest(api, loop, 700, submit=True)["number"]
    anonymous = app.test_client().get(f"/m/{number}").get_data(as_text=True)
    assert "data-quantity" not in anonymous and loop.world.enterprise.name not in anonymous
    carrier = login(app, "drv")
    page = carrier.get(f"/m/{number}?lang=zh").get_data(as_text=True)
    assert "<strong data-quantity>700.0<" in page and "吨袋" in page and loop.world.enterprise.name in page
    wrong = carrier.post(
        f"/m/{number}/pickup?lang=zh",
        data={"vehicle_plate": "浙J1", "driver_name": "王师傅", "driver_phone": "abc"},
    )
    assert wrong.status_code == 422
    html = wrong.get_data(as_text=True)
    assert 'class="error" role="alert"' in html and 'class="flash"' not in html
    assert 'data-error-for="vehicle_plate"' in html and 'data-error-for="driver_phone"' in html
    assert 'value="王师傅"' in html and 'value="浙J1"' in html and 'value="abc"' in html
    assert manifest_status(number) == "submitted"
    ok = carrier.post(
        f"/m/{number}/pickup",
        data={
            "vehicle_plate": "浙j 12345",
            "driver_name": "王师傅",
            "driver_phone": "0576-88123456",
            "signature_password": factories.PASSWORD,
            "handover_code": api.handover_code(number),
        },
    )
    assert ok.status_code == 302 and ok.headers["Location"].endswith(f"/m/{number}/picked-up")
    assert manifest_status(number) == "in_transit"
    stored = db.session.scalar(select(Manifest).where(Manifest.number == number))
    assert (stored.vehicle_plate, stored.driver_phone) == ("浙J12345", "0576-88123456")
    done = carrier.get(ok.headers["Location"] + "?lang=zh")
    assert done.status_code == 200 and "提货已确认" in text(done) and "浙J12345" in text(done)
    # Only the carrier sees the confirmation; others are sent to the verification page.
    assert login(app, "ent").get(f"/m/{number}/picked-up").status_code == 302


@pytest.mark.parametrize(
    ("phone", "valid"),
    [("13812345678", True), ("0576-88123456", True), ("057688123456", True), ("12345678901", False), ("abc", False)],
)
def test_phone_numbers(app, phone, valid):
    from app.ledger.verify_pages import PHONE_RE

    assert (PHONE_RE.match(phone) is not None) is valid


# ---------------------------------------------------------------- one language per page


_HAN = re.compile(r"[\u3400-\u9fff]+")


def test_the_new_pages_speak_english_when_asked(app, loop, api):
    number = new_manifest(api, loop, 300, submit=True)["number"]
    data = sorted(
        {
            loop.world.enterprise.name,
            loop.world.service.name,
            loop.carrier.name,
            "吨袋",
            "编织袋",
            "铁桶",
            "塑料桶",
            "托盘",
            "中文",
            "浙危废经第331000012号",  # the receiver's licence number
            *(m.waste_name for m in db.session.scalars(select(Manifest)).first().lines),
        },
        key=len,
        reverse=True,
    )
    admin, carrier = login(app, "ent"), login(app, "drv")
    for client, path in [
        (admin, "/enterprise/boxes/new"),
        (admin, "/enterprise/staff"),
        (admin, "/manifests/new"),
        (admin, "/manifests/todo"),
        (admin, f"/manifests/{number}"),
        (admin, "/boxes"),
        (carrier, f"/m/{number}"),
    ]:
        page = text(client.get(f"{path}?lang=en"))
        for value in data:
            page = page.replace(value, " ")
        assert not _HAN.findall(page), (path, _HAN.findall(page)[:10])
    wrong = text(carrier.post(f"/m/{number}/pickup?lang=en", data={"vehicle_plate": "x", "driver_phone": "abc"}))
    assert "a mobile number (11 digits)" in wrong and "not a vehicle plate" in wrong and "Driver: required" in wrong


def test_an_unusual_line_is_saved_only_once_confirmed(app, world, api):
    # 55 t on one line: possible (a clean-out), above plausibility.yaml's 50 t for one line.
    loop = build_loop(world, api, removed_kg=60000)
    client = login(app, "ent_staff")
    first = client.post("/manifests/new", data=_form(loop, quantity="55000", packaging="吨袋 55 只"))
    html = first.get_data(as_text=True)
    assert first.status_code == 422 and 'name="confirm_unusual"' in html, text(first)
    assert 'value="55000"' in html  # what was typed is kept
    assert db.session.scalar(select(Manifest).where(Manifest.consignor_id == loop.world.enterprise.id)) is None
    r = client.post(
        "/manifests/new", data=_form(loop, quantity="55000", packaging="吨袋 55 只", confirm_unusual="true")
    )
    assert r.status_code == 302, text(r)
    manifest = db.session.scalar(select(Manifest).where(Manifest.number == r.headers["Location"].rsplit("/", 1)[1]))
    assert float(manifest.lines[0].quantity_kg) == 55000 and manifest.lines[0].confirmed_unusual is True
