"""The manifest registry (联单台账): its four views, keyset pages, CSV and XLSX equal to the JSON."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from app.common.errors import Forbidden, NotFound
from app.common.timeutil import SHANGHAI
from app.extensions import db
from app.ledger.services import registry_export
from tests import factories
from tests.ledger.builders import insert_manifests


@pytest.fixture
def parties(world):
    carrier = factories.org("台州危运物流有限公司", ["carrier"])
    other_carrier = factories.org("温岭危运有限公司", ["carrier"], county="331081")
    factories.user(carrier, "drv")
    factories.user(other_carrier, "drv2")
    db.session.commit()
    # 天台 (331023) ships 3 by the first carrier, 温岭 (331081) 2 by the other, both to the service;
    # a draft of 天台 is no transfer and never listed.
    tiantai = insert_manifests(world.enterprise, carrier, world.service, 3, start=0)
    wenling = insert_manifests(world.other_enterprise, other_carrier, world.service, 2, start=10, status="in_transit")
    draft = insert_manifests(world.enterprise, carrier, world.service, 1, start=20, status="draft")
    return {"tiantai": tiantai, "wenling": wenling, "draft": draft, "carrier": carrier}


def numbers(manifests) -> set[str]:
    return {m.number for m in manifests}


def read_all(api, view: str, as_: str, per_page: int = 100, **params) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in {"per_page": per_page, **params}.items())
    url = f"/api/v1/registry/{view}?{query}"
    items: list[dict] = []
    while url:
        r = api.get(url, as_=as_)
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        items += body["items"]
        assert (body["next"] is None) == (body["next_cursor"] is None) == ("Link" not in r.headers)
        url = body["next"] and body["next"].removeprefix("http://localhost")
    return items


@pytest.mark.parametrize(
    ("view", "as_", "expected"),
    [
        ("outgoing", "ent", ["tiantai"]),
        ("outgoing", "other", ["wenling"]),
        ("incoming", "svc", ["tiantai", "wenling"]),
        ("incoming", "ent", []),
        ("transported", "drv", ["tiantai"]),
        ("transported", "drv2", ["wenling"]),
        ("transported", "svc", []),
        ("managed", "reg_tt", ["tiantai"]),
        ("managed", "reg_city", ["tiantai", "wenling"]),
        ("managed", "op", ["tiantai", "wenling"]),
    ],
)
def test_each_view_lists_exactly_what_the_party_may_see(api, parties, view, as_, expected):
    listed = read_all(api, view, as_)
    want = set().union(*(numbers(parties[k]) for k in expected)) if expected else set()
    assert {row["number"] for row in listed} == want
    assert len(listed) == len(want)  # one line each
    assert numbers(parties["draft"]).isdisjoint(row["number"] for row in listed)


@pytest.mark.parametrize("extension", ["", ".csv", ".xlsx"])
def test_views_a_caller_has_no_part_in_are_refused(api, parties, extension):
    assert api.get(f"/api/v1/registry/managed{extension}", as_="ent").status_code == 403
    assert api.get(f"/api/v1/registry/managed{extension}", as_="park").status_code == 403
    assert api.get(f"/api/v1/registry/outgoing{extension}", as_="op").status_code == 403  # operators: managed
    assert api.get(f"/api/v1/registry/elsewhere{extension}", as_="reg_city").status_code == 404
    assert api.get(f"/api/v1/registry/outgoing{extension}", as_=None).status_code == 401


def test_keyset_pages_cover_every_line_once_under_concurrent_inserts(api, world, parties):
    before = {row["line_id"] for row in read_all(api, "incoming", "svc")}
    seen: list[int] = []
    url = "/api/v1/registry/incoming?per_page=2"
    inserted = 0
    while url:
        r = api.get(url, as_="svc")
        body = r.get_json()
        seen += [row["line_id"] for row in body["items"]]
        assert r.headers.get("Link", "") == (f'<{body["next"]}>; rel="next"' if body["next"] else "")
        if inserted < 6:  # other parties keep shipping while the registry is read (3 pages' worth)
            insert_manifests(world.enterprise, parties["carrier"], world.service, 2, start=100 + inserted)
            inserted += 2
        url = body["next"] and body["next"].removeprefix("http://localhost")
    assert len(seen) == len(set(seen))  # no line twice
    assert before <= set(seen)  # none of those there at the start missed
    assert len(seen) == len(before) + inserted  # those added meanwhile come at the end
    assert seen == sorted(seen)


def test_filters_and_bad_input(api, world, parties):
    rows = read_all(api, "incoming", "svc", status="in_transit")
    assert {r["number"] for r in rows} == numbers(parties["wenling"])
    assert read_all(api, "incoming", "svc", waste_code="900-041-49") == []
    assert len(read_all(api, "incoming", "svc", **{"from": "2026-03-01", "to": "2026-03-01"})) == 5
    for query, field in [
        ("cursor=%%%", "cursor"),
        ("cursor=WyJ4Il0", "cursor"),  # ["x"]: not a line id
        ("per_page=0", "per_page"),
        ("status=draft", "status"),
        ("from=2026-03-02&to=2026-03-01", "to"),
    ]:
        r = api.get(f"/api/v1/registry/incoming?{query}", as_="svc")
        assert r.status_code == 422, (query, r.get_json())
        assert field in r.get_json()["errors"], (query, r.get_json())


def _local(value: str | None) -> str:
    if value is None:
        return ""
    return datetime.fromisoformat(value).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def _as_text(row: dict) -> list[str]:
    """A JSON row as the CSV writes it."""
    cells = []
    for name in registry_export.FIELDS:
        value = row[name]
        cells.append(_local(value) if name.endswith("_at") else "" if value is None else str(value))
    return cells


def test_csv_and_xlsx_equal_the_json(api, parties):
    rows = read_all(api, "managed", "reg_city", per_page=2)
    assert len(rows) == 5

    r = api.get("/api/v1/registry/managed.csv", as_="reg_city")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    text = r.get_data().decode("utf-8")
    assert text.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert table[0] == registry_export.header("zh")
    assert table[1:] == [_as_text(row) for row in rows]

    english = api.get("/api/v1/registry/managed.csv?lang=en", as_="reg_city").get_data().decode()
    assert english.removeprefix("\ufeff").startswith("line id,manifest number,")

    r = api.get("/api/v1/registry/managed.xlsx", as_="reg_city")
    assert r.status_code == 200 and r.headers["Content-Length"] == str(len(r.get_data()))
    sheet = load_workbook(io.BytesIO(r.get_data()), read_only=True).active
    values = [list(v) for v in sheet.iter_rows(values_only=True)]
    assert list(values[0]) == registry_export.header("zh")
    for got, row in zip(values[1:], rows, strict=True):
        for name, cell in zip(registry_export.FIELDS, got, strict=True):
            want = row[name]
            if name.endswith("_kg") and want is not None:
                assert Decimal(str(cell)) == Decimal(want), name
            elif name.endswith("_at"):
                assert (cell or "") == _local(want), name
            else:
                assert (cell if cell is not None else "") == ("" if want is None else want), name


def test_cells_that_look_like_formulas_stay_text(api, world, parties):
    insert_manifests(
        world.enterprise, parties["carrier"], world.service, 1, start=50, waste_name='=HYPERLINK("http://x","y")'
    )
    insert_manifests(world.enterprise, parties["carrier"], world.service, 1, start=51, waste_name="@SUM(A1)\x07")
    r = api.get("/api/v1/registry/outgoing.csv", as_="ent")
    names = [row[registry_export.FIELDS.index("waste_name")] for row in csv.reader(io.StringIO(r.get_data().decode()))]
    assert '\'=HYPERLINK("http://x","y")' in names and "'@SUM(A1) " in names

    r = api.get("/api/v1/registry/outgoing.xlsx", as_="ent")
    sheet = load_workbook(io.BytesIO(r.get_data())).active
    column = registry_export.FIELDS.index("waste_name") + 1
    cells = [sheet.cell(row=i, column=column) for i in range(2, sheet.max_row + 1)]
    assert all(c.data_type == "s" for c in cells)  # never "f"
    assert {c.value for c in cells} >= {'\'=HYPERLINK("http://x","y")', "'@SUM(A1) "}


def test_the_writers_as_plain_services_for_the_job_queue(session, world, parties):
    from app.accounts.services import Principal

    actor = Principal(user=world.users["reg_city"])
    csv_file, xlsx_file = io.BytesIO(), io.BytesIO()
    assert registry_export.write_csv(registry_export.export_rows(session, actor, "managed"), csv_file) == 5
    assert registry_export.write_xlsx(registry_export.export_rows(session, actor, "managed"), xlsx_file) == 5
    assert csv_file.getvalue().decode().count("\r\n") == 6
    assert load_workbook(io.BytesIO(xlsx_file.getvalue())).active.max_row == 6
    with pytest.raises(Forbidden):
        registry_export.registry_rows(session, Principal(user=world.users["ent"]), "managed")
    with pytest.raises(NotFound):
        registry_export.registry_rows(session, actor, "everything")


def test_the_manifest_list_page_links_to_the_exports(app, world, parties):
    client = app.test_client()
    r = client.post("/login", data={"username": "reg_city", "password": factories.PASSWORD})
    assert r.status_code in (302, 303), r.status_code
    page = client.get("/manifests").get_data(as_text=True)
    assert "/api/v1/registry/managed.csv" in page and "/api/v1/registry/managed.xlsx" in page
    assert "/api/v1/registry/outgoing.csv" not in page
    r = client.get("/api/v1/registry/managed.csv")  # the page's session reads the export
    assert r.status_code == 200 and r.get_data().decode().count("\r\n") == 6
