"""Not visible is 404 (product.md: "404 not found or not visible") on the routes that take lists of
box codes or an enterprise id: the label sheets (API and page) and the box list's filter. An
unknown code and another tenant's code get the same answer, so a sheet discloses no existence."""

from __future__ import annotations

from app.boxes.codes import make_code, normalise
from app.extensions import db
from tests import factories
from tests.web.builders import login


def _boxes(world):
    mine = factories.box(world.enterprise, world.service)
    theirs = factories.box(world.other_enterprise)
    db.session.commit()
    return mine, theirs


def test_another_enterprises_code_on_a_sheet_is_404_like_an_unknown_one(api, world):
    mine, theirs = _boxes(world)
    foreign = api.get(f"/api/v1/labels.pdf?codes={mine.code},{theirs.code}", as_="ent")
    assert foreign.status_code == 404 and foreign.mimetype == "application/problem+json"
    detail = foreign.get_json()["detail"]
    assert theirs.code in detail and mine.code not in detail  # names only what it did not find
    # A well-formed code of no box at all: the same status, the same shape.
    made = (make_code("331023", body) for body in ("AAAAA", "BBBBB", "CCCCC"))
    unknown = next(c for c in made if c not in (mine.code, theirs.code))
    assert normalise(unknown) == unknown
    missing = api.get(f"/api/v1/labels.pdf?codes={unknown}", as_="ent")
    assert missing.status_code == 404 and set(missing.get_json()) == set(foreign.get_json())
    # Written in lower case with spaces, the foreign code is still not visible (not 422, not 200).
    assert api.get(f"/api/v1/labels.pdf?codes=%20{theirs.code.lower()}%20", as_="ent").status_code == 404
    # Its own enterprise and a regulator of both counties print it.
    assert api.get(f"/api/v1/labels.pdf?codes={theirs.code}", as_="other").status_code == 200
    assert api.get(f"/api/v1/labels.pdf?codes={mine.code},{theirs.code}", as_="reg_city").status_code == 200
    # A malformed code is bad input, named per field.
    bad = api.get("/api/v1/labels.pdf?codes=not-a-code", as_="ent")
    assert bad.status_code == 422 and "codes" in bad.get_json()["errors"]


def test_the_label_page_answers_404_in_chinese(app, world):
    mine, theirs = _boxes(world)
    client = login(app, "ent_staff")
    r = client.get(f"/boxes/labels.pdf?codes={theirs.code}")
    assert r.status_code == 404 and r.mimetype == "text/html" and "未找到" in r.get_data(as_text=True)
    assert client.get(f"/boxes/labels.pdf?codes={mine.code}").status_code == 200


def test_the_box_list_filtered_by_an_invisible_enterprise_is_404(api, world):
    mine, _ = _boxes(world)
    other = world.other_enterprise.id
    for url in (f"/api/v1/boxes?enterprise={other}", "/api/v1/boxes?enterprise=999999"):
        r = api.get(url, as_="ent")
        assert r.status_code == 404 and r.mimetype == "application/problem+json", url
    own = api.get(f"/api/v1/boxes?enterprise={world.enterprise.id}", as_="ent").get_json()
    assert [b["code"] for b in own["items"]] == [mine.code]
    # The carbon service sees the enterprise of the box it serves; the city regulator sees both.
    assert api.get(f"/api/v1/boxes?enterprise={world.enterprise.id}", as_="svc").get_json()["total"] == 1
    assert api.get(f"/api/v1/boxes?enterprise={other}", as_="reg_city").get_json()["total"] == 1
