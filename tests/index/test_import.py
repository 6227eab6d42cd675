"""Importing synergy index values: JSON, CSV, XLSX; all or nothing; who may import."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.accounts.services import Principal
from app.common.errors import Forbidden, InvalidInput
from app.extensions import db
from app.index import importing, services
from app.index.models import IndicatorValue, IndicatorValueRevision
from tests.index.builders import csv_bytes, row, stored, upload, xlsx_bytes

ROWS = [
    {"county_code": "331023", "period": "2025", "indicator": 1, "value": 28.5, "source_department": "市生态环境局"},
    {"county_code": "331081", "period": "2025", "indicator": 1, "value": 31, "source_department": "市生态环境局"},
    {"county_code": "331023", "period": "2025-Q2", "indicator": 27, "value": 2, "source_department": "市生态环境局"},
]


def test_json_import_inserts_then_updates_with_an_audit(api, world):
    r = api.post("/api/v1/index/values", ROWS)
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {"rows": 3, "inserted": 3, "updated": 0, "unchanged": 0, "ignored_columns": []}
    assert stored() == {
        ("331023", "2025", 1): (28.5, "市生态环境局"),
        ("331081", "2025", 1): (31.0, "市生态环境局"),
        ("331023", "2025-Q2", 27): (2.0, "市生态环境局"),
    }
    row = db.session.scalar(
        select(IndicatorValue).where(IndicatorValue.indicator == 1, IndicatorValue.county_code == "331023")
    )
    assert row.unit == "μg/m³" and row.imported_by_user_id == world.users["op"].id and row.imported_at

    again = [dict(ROWS[0], value=27.9), ROWS[1], dict(ROWS[2], source_department="市生态环境局天台分局")]
    r = api.post("/api/v1/index/values", {"values": again}, as_="reg_city")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["inserted"] == 0 and r.get_json()["updated"] == 2 and r.get_json()["unchanged"] == 1
    assert stored()[("331023", "2025", 1)] == (27.9, "市生态环境局")
    revisions = {
        (x.value, x.source_department, x.replaced_by_user_id)
        for x in db.session.scalars(select(IndicatorValueRevision))
    }
    assert revisions == {
        (28.5, "市生态环境局", world.users["reg_city"].id),
        (2.0, "市生态环境局", world.users["reg_city"].id),
    }

    listed = api.get("/api/v1/index/values?period=2025", as_="reg_tt").get_json()
    assert listed["total"] == 2 and {i["county_code"] for i in listed["items"]} == {"331023", "331081"}


def test_csv_with_chinese_headers(api, world):
    data = csv_bytes(
        ["县市区代码", "期间", "指标序号", "指标名称", "数值", "数据来源"],
        [
            ["331002", "2025", "3", "AQI 指数优良比例", "92.3", "市生态环境局"],
            ["椒江区", "2025", "17", "可再生能源发电量增长率", "-1.5", "市供电局"],  # a county name is accepted too
            ["", "", "", "", "", ""],  # a blank line is not a row
            ["331083", "2025-q1", "19", "新能源车占注册登记车辆比例", "12", "市公安局"],
        ],
    )
    r = upload(api, data, "指标.csv", as_="reg_city")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["inserted"] == 3 and r.get_json()["ignored_columns"] == ["指标名称"]
    assert stored() == {
        ("331002", "2025", 3): (92.3, "市生态环境局"),
        ("331002", "2025", 17): (-1.5, "市供电局"),
        ("331083", "2025-Q1", 19): (12.0, "市公安局"),
    }


def test_csv_in_gb18030_as_excel_writes_it(api, world):
    data = csv_bytes(
        ["county_code", "period", "indicator", "value", "source_department"],
        [["331082", "2024", "21", "88", "市分类办"]],
        encoding="gb18030",
    )
    r = upload(api, data, "values.csv")
    assert r.status_code == 200, r.get_json()
    assert stored() == {("331082", "2024", 21): (88.0, "市分类办")}


def test_xlsx_with_english_headers(api, world):
    data = xlsx_bytes(
        ["county_code", "period", "indicator", "value", "source_department", "unit"],
        [
            [331004, 2025, 24, 35.5, "市行政执法局", "%"],
            [331022, "2025-Q3", 26, 7, "市生态环境局", None],
        ],
    )
    # Detected by the extension, and again by content when the name and type say nothing.
    r = upload(api, data, "upload.xlsx")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["inserted"] == 2
    assert stored() == {
        ("331004", "2025", 24): (35.5, "市行政执法局"),
        ("331022", "2025-Q3", 26): (7.0, "市生态环境局"),
    }
    r = upload(api, data, "upload", content_type="application/octet-stream")
    assert r.status_code == 200 and r.get_json()["unchanged"] == 2


def test_a_bad_row_refuses_the_whole_import(api, world):
    api.post("/api/v1/index/values", [ROWS[0]])
    before = stored()
    data = csv_bytes(
        ["县市区代码", "期间", "指标序号", "数值", "数据来源"],
        [
            ["331023", "2025", "2", "5.1", "市生态环境局"],  # line 2: good
            ["330000", "2025", "3", "90", "市生态环境局"],  # line 3: not a Taizhou county
            ["331023", "2025", "33", "1", "市生态环境局"],  # line 4: no such indicator
            ["331023", "2025", "25", "99", "市生态环境局"],  # line 5: computed here
            ["331023", "2025-Q5", "3", "90", "市生态环境局"],  # line 6: bad period
            ["331023", "2025", "3", "abc", ""],  # line 7: value and source
            ["331023", "2025-Q1", "9", "80", "市生态环境局"],  # line 8: previous-year indicator in a quarter
            ["331023", "2025", "2", "5.2", "市生态环境局"],  # line 9: duplicate of line 2
            ["331023", "2025", "1", "29", "市生态环境局"],  # line 10: good (would update)
        ],
    )
    r = upload(api, data, "bad.csv")
    assert r.status_code == 422
    assert r.headers["Content-Type"].startswith("application/problem+json")
    body = r.get_json()
    errors = body["errors"]["rows"]
    assert set(errors) == {"3", "4", "5", "6", "7", "8", "9"}
    assert list(errors["3"]) == ["county_code"] and "not a Taizhou county" in errors["3"]["county_code"][0]
    assert list(errors["4"]) == ["indicator"]
    assert "computed" in errors["5"]["indicator"][0]
    assert list(errors["6"]) == ["period"]
    assert set(errors["7"]) == {"value", "source_department"} and "not a number" in errors["7"]["value"][0]
    assert "previous year" in errors["8"]["period"][0] and "2024" in errors["8"]["period"][0]
    assert "line 2" in errors["9"]["indicator"][0]
    assert body["place"] == "line" and "nothing was imported" in body["detail"]
    assert stored() == before  # nothing stored, nothing updated


def test_json_errors_name_the_position_and_field(api, world):
    r = api.post("/api/v1/index/values", [ROWS[0], {**ROWS[1], "value": True, "valu": 1}, "x"])
    assert r.status_code == 422
    errors = r.get_json()["errors"]["rows"]
    assert set(errors) == {"1", "2"}
    assert set(errors["1"]) == {"value", "valu"} and errors["2"] == {"_row": ["expected an object"]}
    assert stored() == {}
    for payload in ([], {"rows": []}, None):
        r = api.post("/api/v1/index/values", payload)
        assert r.status_code == 422, payload
    assert upload(api, b"county_code,period\n331023,2025\n", "x.csv").get_json()["errors"]["file"]
    assert upload(api, b"\x00\x01", "x.xls").status_code == 422
    assert stored() == {}


def test_unit_must_match_the_indicator(api, world):
    r = api.post("/api/v1/index/values", [{**ROWS[0], "unit": "mg/m³"}])
    assert r.status_code == 422 and "μg/m³" in r.get_json()["errors"]["rows"]["0"]["unit"][0]


@pytest.mark.parametrize("user, status", [("reg_tt", 403), ("ent", 403), ("park", 403), ("svc", 403), (None, 401)])
def test_who_may_not_import(api, world, user, status):
    r = api.post("/api/v1/index/values", ROWS, as_=user)
    assert r.status_code == status
    r = upload(api, csv_bytes(["county_code"], [["x"]]), "x.csv", as_=user) if user else None
    assert r is None or r.status_code == status  # refused before the file is read
    assert stored() == {}


def test_services_import_directly(app, world):
    actor = Principal(user=world.users["reg_city"])
    raw = importing.read_json(ROWS)
    result = services.import_values(db.session, actor, raw)
    db.session.commit()
    assert result["inserted"] == 3
    assert db.session.scalar(select(func.count()).select_from(IndicatorValue)) == 3
    with pytest.raises(Forbidden):
        services.import_values(db.session, Principal(user=world.users["reg_tt"]), raw)
    with pytest.raises(InvalidInput) as err:
        services.import_values(db.session, actor, importing.read_json([{**ROWS[0], "indicator": 25}]))
    assert "computed" in err.value.errors["rows"]["0"]["indicator"][0]


def test_a_device_token_reads_and_imports_nothing(api, world):
    r = api.post("/api/v1/device-tokens", {"organization_id": world.regulator_city.id, "name": "gw"}, as_="op")
    assert r.status_code == 201, r.get_json()
    headers = {"Authorization": f"Bearer {r.get_json()['token']}"}
    for url in ("/api/v1/index/definition", "/api/v1/index/scores?period=2025", "/api/v1/index/values"):
        assert api.client.get(url, headers=headers).status_code == 403, url
    assert api.client.post("/api/v1/index/values", json=[row()], headers=headers).status_code == 403
    assert stored() == {}


def test_values_listing_asks_who_before_what(api, world):
    assert api.get("/api/v1/index/values?period=1999", as_=None).status_code == 401


def test_an_absurd_value_is_refused_with_its_limit(api, world):
    # Imports bypass the JSON schema; 1e308 once reached the min–max scoring.
    absurd = [{**ROWS[0], "value": 1e308}]
    r = api.post("/api/v1/index/values", absurd)
    assert r.status_code == 422, r.get_json()
    assert "at most" in str(r.get_json()), r.get_json()
    assert stored() == {}
