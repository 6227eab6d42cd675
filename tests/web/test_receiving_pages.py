"""The receiver's pages over HTTP (app/web/receiving.py): the incoming list, the receipt with its
review, the whole refusal, the treatment method; only the manifest's receiver gets them."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.ledger.models import Manifest
from tests import factories
from tests.ledger.builders import ago, build_loop, manifest_status
from tests.web.builders import login, other_receiver, text, two_lines_in_transit

# The receiver's signature (app/audit/signing_forms.py): the signed-in user's password.
SIGNED = {"signature_password": factories.PASSWORD}


@pytest.fixture
def loop(world, api):
    return build_loop(world, api, removed_kg=1800, replaced_at=ago(days=20))


def stored(number: str) -> Manifest:
    db.session.rollback()
    return db.session.query(Manifest).filter_by(number=number).one()


def receipt_form(**lines) -> dict:
    """The receipt's fields, per line ``l<no>=(received, decision, accepted, reason)``, without a button."""
    form = {}
    for no, (received, decision, accepted, reason) in lines.items():
        form.update(
            {
                f"received_kg_{no[1:]}": received,
                f"decision_{no[1:]}": decision,
                f"accepted_kg_{no[1:]}": accepted,
                f"reason_{no[1:]}": reason,
            }
        )
    return form


def test_incoming_lists_what_is_in_transit_and_to_process(app, world, api, loop):
    number = two_lines_in_transit(api, loop)["number"]
    client = login(app, "svc")
    r = client.get("/receiving")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    to_receive = html.split('data-section="to-receive"')[1].split('data-section="to-process"')[0]
    assert number in to_receive and "1,600.0" in to_receive and "称重接收" in to_receive
    assert world.enterprise.name in to_receive
    # The top bar leads there.
    assert 'href="/receiving"' in client.get("/").get_data(as_text=True)
    # The manifest's page leads its receiver to the receipt.
    assert f'href="/receiving/{number}" data-link="receive"' in client.get(f"/manifests/{number}").get_data(
        as_text=True
    )
    # An enterprise is no receiver.
    assert login(app, "ent").get("/receiving").status_code == 403


def test_receive_in_part_and_refuse_a_line_after_the_review(app, world, api, loop):
    number = two_lines_in_transit(api, loop)["number"]
    client = login(app, "svc")
    page = client.get(f"/receiving/{number}")
    assert page.status_code == 200
    assert 'name="received_kg_1"' in page.get_data(as_text=True) and "整单拒收" in text(page)

    form = receipt_form(l1=("940", "partial", "900", "含水过多"), l2=("600", "refuse", "", "包装破损"))
    review = client.post(f"/receiving/{number}", data={**form, "review": "1"})
    edit = client.post(f"/receiving/{number}", data={**form, "edit": "1"})
    assert edit.status_code == 200 and 'value="含水过多"' in edit.get_data(as_text=True)
    assert review.status_code == 200
    html, words = review.get_data(as_text=True), text(review)
    assert 'data-step="review"' in html
    # Line 1 weighed 940 of 1,000 declared: -60 kg, 6.0 %, beyond the 5 % tolerance.
    assert 'data-beyond="1"' in html and 'data-beyond="2"' not in html
    assert "-60.0 kg（6.0%）" in words and "超出允差 5%" in words and "在允差内" in words
    assert "退回 40.0 kg" in words and "退回 600.0 kg" in words
    assert stored(number).status == "in_transit"  # nothing stored by the review

    unsigned = client.post(f"/receiving/{number}", data={**form, "confirm": "1"})
    assert unsigned.status_code == 422 and manifest_status(number) == "in_transit"  # a step is signed
    done = client.post(f"/receiving/{number}", data={**form, "confirm": "1", **SIGNED})
    assert done.status_code == 302 and done.location.endswith(f"/receiving/{number}/process")
    m = stored(number)
    assert m.status == "received" and m.acceptance == "partial" and m.discrepant
    lines = {line.line_no: line for line in m.lines}
    assert (float(lines[1].received_kg), float(lines[1].accepted_kg), lines[1].refusal_reason) == (940, 900, "含水过多")
    assert (float(lines[2].received_kg), float(lines[2].accepted_kg), lines[2].refusal_reason) == (600, 0, "包装破损")

    process = client.get(done.location)
    assert process.status_code == 200
    assert "已接收（部分接收）" in text(process)
    assert 'name="method_1"' in process.get_data(as_text=True) and 'name="method_2"' not in process.get_data(
        as_text=True
    )
    assert "R7 回收污染减除剂的组分" in text(process) and "第 2 行已拒收" in text(process)
    refused = client.post(done.location, data={})
    assert refused.status_code == 422 and "请选择利用/处置方式" in text(refused)
    closed = client.post(done.location, data={"method_1": "R7", **SIGNED})
    assert closed.status_code == 302 and closed.location.endswith(f"/manifests/{number}")
    m = stored(number)
    assert m.status == "closed" and m.lines[0].method_code == "R7" and m.lines[1].method_code is None
    assert "已登记利用/处置方式并办结" in text(client.get(closed.location))


def test_field_errors_in_chinese_keep_what_was_typed(app, world, api, loop):
    number = two_lines_in_transit(api, loop)["number"]
    client = login(app, "svc")
    form = receipt_form(l1=("abc", "accept", "", ""), l2=("600", "partial", "", ""))
    r = client.post(f"/receiving/{number}", data={**form, "review": "1"})
    assert r.status_code == 422
    html, words = r.get_data(as_text=True), text(r)
    assert 'data-error-for="received_kg_1"' in html and "不是有效的数字" in words
    assert 'data-error-for="accepted_kg_2"' in html and "部分接受时请填写接受量" in words
    assert 'data-error-for="reason_2"' in html and "部分接受或拒收时必须填写原因" in words
    assert 'value="abc"' in html or 'name="received_kg_1"' in html
    assert 'name="received_kg_2" type="number" step="0.001" min="0" inputmode="decimal" value="600"' in html
    assert 'value="partial" checked' in html
    # Beyond the plausible range: the schema's limit, in Chinese.
    r = client.post(
        f"/receiving/{number}", data=receipt_form(l1=("99999999", "accept", "", ""), l2=("1", "accept", "", ""))
    )
    assert r.status_code == 422 and 'data-error-for="received_kg_1"' in r.get_data(as_text=True)
    assert "不能超过 1e+07 kg" in text(r) and "plausible" not in text(r)
    # Every line refused: the page points to the whole refusal.
    r = client.post(
        f"/receiving/{number}", data=receipt_form(l1=("1000", "refuse", "", "x"), l2=("600", "refuse", "", "y"))
    )
    assert r.status_code == 422 and "整单拒收" in text(r)
    assert manifest_status(number) == "in_transit"


def test_whole_refusal_needs_a_reason(app, world, api, loop):
    number = two_lines_in_transit(api, loop)["number"]
    client = login(app, "svc")
    r = client.post(f"/receiving/{number}/reject", data={"reject_reason": " "})
    assert r.status_code == 422 and 'data-error-for="reject_reason"' in r.get_data(as_text=True)
    assert manifest_status(number) == "in_transit"
    r = client.post(f"/receiving/{number}/reject", data={"reject_reason": "非本单位许可类别", **SIGNED})
    assert r.status_code == 302 and r.location.endswith("/receiving")
    m = stored(number)
    assert m.status == "rejected" and m.reject_reason == "非本单位许可类别"
    assert "已整单拒收" in text(client.get("/receiving"))


@pytest.mark.parametrize("path", ["/receiving/{n}", "/receiving/{n}/process"])
def test_other_receivers_and_parties_get_not_found(app, world, api, loop, path):
    number = two_lines_in_transit(api, loop)["number"]
    other_receiver(world)
    db.session.commit()
    for user in ("plant2", "ent", "reg_tt"):
        client = login(app, user)
        assert client.get(path.format(n=number)).status_code == 404, user
        assert client.post(path.format(n=number), data={"method_1": "R7", **SIGNED}).status_code == 404, user
    assert login(app, "plant2").post(f"/receiving/{number}/reject", data={"reject_reason": "x"}).status_code == 404
    assert manifest_status(number) == "in_transit"
    assert login(app, "plant2").get("/receiving/20253310009999").status_code == 404


def test_anonymous_is_sent_to_sign_in(client):
    for path in ("/receiving", "/receiving/20253310000001", "/regeneration", "/regeneration/new"):
        r = client.get(path)
        assert r.status_code == 302 and r.location.startswith("/login"), path


def test_the_receipt_in_english(app, world, api, loop):
    from flask_babel import refresh

    number = two_lines_in_transit(api, loop)["number"]
    client = login(app, "svc")
    refresh()  # the test's app context outlives the requests: forget the locale it cached
    r = client.post(
        f"/receiving/{number}?lang=en",
        data={**receipt_form(l1=("940", "partial", "", ""), l2=("600", "accept", "", "")), "review": "1"},
    )
    words = text(r)
    assert r.status_code == 422
    assert "Weighed (kg)" in words and "Accept in part" in words and "give the accepted quantity" in words
    assert "称重量" not in words and "部分接受" not in words
    refresh()


def test_an_unusual_weight_is_stored_only_once_confirmed(app, world, api, loop):
    # 1,600 kg weighed for 1,000 shipped: possible, but above plausibility.yaml's 1.5 × ratio.
    number = two_lines_in_transit(api, loop)["number"]
    client = login(app, "svc")
    form = {**receipt_form(l1=("1600", "accept", "", ""), l2=("600", "accept", "", "")), "confirm": "1", **SIGNED}
    first = client.post(f"/receiving/{number}", data=form)
    html = first.get_data(as_text=True)
    assert first.status_code == 422 and 'data-step="review"' in html and 'name="confirm_unusual"' in html
    assert "接收称重量远高于联单数量" in text(first) or "不常见" in text(first)
    assert manifest_status(number) == "in_transit"  # nothing stored before the confirmation
    done = client.post(f"/receiving/{number}", data={**form, "confirm_unusual": "true"})
    assert done.status_code == 302, text(done)
    line = stored(number).lines[0]
    assert float(line.received_kg) == 1600 and line.confirmed_unusual is True
