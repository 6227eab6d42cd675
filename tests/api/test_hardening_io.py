"""Hardening of the API's input and output (black-box findings): strict JSON, bounded numbers and
dates, bounded nesting, auth before input, errors documented as served, spreadsheet-safe exports.
Each test goes through HTTP; the database ones run on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import math

import pytest

from app.common.errors import json_body_problem
from app.common.jsonprovider import StrictJSONProvider
from app.common.limits import limits, parse
from app.rules import RulesError

PROBLEM = "application/problem+json"
HUGE = 1e308


def _problem(r, status):
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:300])
    assert r.mimetype == PROBLEM
    return r.get_json()


def _strict(r):
    """The body parses as RFC 8259 JSON (no NaN / Infinity literals)."""

    def refuse(name):
        raise AssertionError(f"{name} in the response")

    return json.loads(r.get_data(as_text=True), parse_constant=refuse)


# ---------------------------------------------------------------- dates in JSON columns


def test_organisation_with_licence_dates_is_created_and_served(world, api):
    r = api.post(
        "/api/v1/organizations",
        {
            "name": "台州危废处置有限公司",
            "roles": ["receiver"],
            "county_code": "331023",
            "licences": [{"number": "L-1", "valid_until": "2030-01-01"}],
        },
    )
    assert r.status_code == 201, r.get_json()
    body = _strict(r)
    assert body["licences"][0]["valid_until"] == "2030-01-01"
    listed = api.get(f"/api/v1/organizations/{body['id']}")
    if listed.status_code == 200:
        assert listed.get_json()["licences"][0]["valid_until"] == "2030-01-01"


@pytest.mark.parametrize("when", ["1999-12-31", "2100-01-01"])
def test_licence_dates_outside_the_window_are_refused(world, api, when):
    r = api.post(
        "/api/v1/organizations",
        {"name": "某公司", "roles": ["receiver"], "licences": [{"number": "L-1", "valid_until": when}]},
    )
    body = _problem(r, 422)
    assert "licences" in body["errors"]


# ---------------------------------------------------------------- bounded numbers

BOUNDED = [
    ("/api/v1/ledger", lambda q: {"waste_code": "900-041-49", "quantity_kg": q}, "quantity_kg"),
    (
        "/api/v1/boxes/TX-NONE/fills",
        lambda q: {"mass_kg": 100, "iodine_mg_g": 900, "removed_waste_kg": q},
        "removed_waste_kg",
    ),
    ("/api/v1/boxes/TX-NONE/fills", lambda q: {"mass_kg": 100, "iodine_mg_g": q}, "iodine_mg_g"),
    ("/api/v1/boxes/TX-NONE/fills", lambda q: {"mass_kg": q, "iodine_mg_g": 900}, "mass_kg"),
    (
        "/api/v1/manifests",
        lambda q: {"carrier_id": 1, "receiver_id": 2, "lines": [{"waste_code": "900-039-49", "quantity_kg": q}]},
        "lines",
    ),
    ("/api/v1/manifests/20253310000001/receive", lambda q: {"lines": [{"line_no": 1, "received_kg": q}]}, "lines"),
    (
        "/api/v1/value-added",
        lambda q: [{"scope": "city", "period": "2024", "value_added_10k_yuan": q, "source_department": "台州市统计局"}],
        None,
    ),
    (
        "/api/v1/regeneration-batches",
        lambda q: {
            "batch_no": "B-1",
            "output_kg": q,
            "iodine_mg_g": 800,
            "inputs": [{"manifest_number": "20253310000001", "line_no": 1, "quantity_kg": 10}],
        },
        "output_kg",
    ),
]


@pytest.mark.parametrize("url,body,field", BOUNDED, ids=[f"{u}:{f}" for u, _, f in BOUNDED])
def test_implausible_numbers_are_refused(world, api, url, body, field):
    who = "svc" if "receive" in url or "regeneration" in url else ("op" if "value-added" in url else "ent")
    for value in (HUGE, 1e12, -1):
        r = api.post(url, body(value), as_=who)
        problem = _problem(r, 422)
        if field:
            assert field in json.dumps(problem["errors"]), problem


def test_box_design_values_are_bounded(world, api):
    base = {
        "enterprise_id": world.enterprise.id,
        "facility_code": "TA001",
        "outlet_code": "DA001",
        "carbon_type": "granular",
        "design_fill_kg": 2000.0,
        "design_airflow_m3_h": 15000.0,
        "design_removed_mg_m3": 80.0,
        "hours_per_day": 16.0,
        "emission_limit_mg_m3": 60.0,
    }
    for name in (
        "design_fill_kg",
        "design_airflow_m3_h",
        "design_removed_mg_m3",
        "emission_limit_mg_m3",
        "pressure_drop_max_pa",
        "hours_per_day",
    ):
        r = api.post("/api/v1/boxes", {**base, name: HUGE}, as_="ent")
        assert name in _problem(r, 422)["errors"], name
    assert api.post("/api/v1/boxes", base, as_="ent").status_code == 201


def test_plausible_maximum_is_accepted_and_statistics_stay_strict_json(world, api):
    biggest = limits().fields["waste_kg"].max
    for _ in range(3):
        # Possible (the hard limit) but unusual: confirmed (plausibility.yaml unusual.waste_record_kg).
        body = {"waste_code": "900-041-49", "quantity_kg": biggest, "confirm_unusual": True}
        r = api.post("/api/v1/ledger", body, as_="ent")
        assert r.status_code == 201, r.get_json()
    for url in (
        "/api/v1/metrics?period=" + r.get_json()["occurred_at"][:4],
        f"/api/v1/parks/{world.park.id}/metrics?period=" + r.get_json()["occurred_at"][:4],
    ):
        m = api.get(url, as_="op")
        assert m.status_code == 200, m.get_json()
        body = _strict(m)
        assert body["generated_kg"] == pytest.approx(3 * biggest)
    stock = api.get("/api/v1/stock", as_="ent")
    assert stock.status_code == 200
    _strict(stock)


def test_nan_and_infinity_literals_are_refused(world, api):
    for literal in ("Infinity", "-Infinity", "NaN", "1e999"):
        r = api.client.post(
            "/api/v1/ledger",
            data=f'{{"waste_code": "900-041-49", "quantity_kg": {literal}}}',
            content_type="application/json",
            headers=api._headers("ent", None),
        )
        assert r.status_code in (400, 422), (literal, r.status_code)
        assert r.mimetype == PROBLEM
    # inside a string they are ordinary text
    assert json_body_problem(b'{"note": "NaN Infinity [[[["}') is None


# ---------------------------------------------------------------- strict JSON out


def test_json_provider_never_writes_nan_or_infinity(app):
    provider = StrictJSONProvider(app)
    text = provider.dumps({"a": math.inf, "b": [math.nan, 1.5], "c": {"d": -math.inf}})
    assert json.loads(text) == {"a": None, "b": [None, 1.5], "c": {"d": None}}
    with pytest.raises(ValueError):
        provider.loads('{"a": NaN}')
    assert app.json.__class__ is StrictJSONProvider
    import datetime as dt

    assert provider.dumps({"d": dt.date(2030, 1, 1)}) == '{"d": "2030-01-01"}'


# ---------------------------------------------------------------- dates


@pytest.mark.parametrize(
    "url,body,field",
    [
        (
            "/api/v1/ledger",
            {"waste_code": "900-041-49", "quantity_kg": 5, "generated_at": "1999-12-31T08:00:00"},
            "generated_at",
        ),
        (
            "/api/v1/boxes/TX-NONE/fills",
            {"mass_kg": 100, "iodine_mg_g": 900, "filled_at": "1970-01-01T00:00:00Z"},
            "filled_at",
        ),
        (
            "/api/v1/regeneration-batches",
            {
                "batch_no": "B-1",
                "output_kg": 5,
                "iodine_mg_g": 800,
                "produced_on": "1999-01-01",
                "inputs": [{"manifest_number": "20253310000001", "line_no": 1, "quantity_kg": 10}],
            },
            "produced_on",
        ),
        (
            "/api/v1/manifests/20253310000001/pickup",
            {"vehicle_plate": "浙J12345", "driver_name": "王师傅", "picked_up_at": "0001-01-01T00:00:00+08:00"},
            "picked_up_at",
        ),
        (
            "/api/v1/manifests/20253310000001/receive",
            {"received_at": "1999-06-01T00:00:00", "lines": [{"line_no": 1, "received_kg": 1}]},
            "received_at",
        ),
    ],
)
def test_implausibly_old_dates_are_refused(world, api, url, body, field):
    who = "svc" if ("receive" in url or "regeneration" in url) else "ent"
    r = api.post(url, body, as_=who)
    assert field in _problem(r, 422)["errors"]


# ---------------------------------------------------------------- nesting and size


def test_deeply_nested_bodies_answer_400_on_every_write(world, api):
    deep = "[" * 10_000 + "]" * 10_000
    r = api.client.post("/api/v1/auth/token", data=deep, content_type="application/json")
    assert "deeper" in _problem(r, 400)["detail"]
    r = api.client.post(
        "/api/v1/ledger",
        data='{"a":' * 10_000 + "1" + "}" * 10_000,
        content_type="application/json",
        headers=api._headers("ent", None),
    )
    _problem(r, 400)
    r = api.client.post(
        "/api/v1/readings", data=deep, content_type="application/json", headers=api._headers("ent", None)
    )
    assert r.status_code in (400, 403)
    # unbalanced or unclosed brackets: malformed, 400 as well
    r = api.client.post("/api/v1/auth/token", data="[" * 100_000, content_type="application/json")
    _problem(r, 400)


def test_oversized_bodies_answer_413(world, api, app):
    body = b'{"username": "' + b"x" * (app.config["MAX_CONTENT_LENGTH"] + 10) + b'"}'
    r = api.client.post("/api/v1/auth/token", data=body, content_type="application/json")
    _problem(r, 413)


def test_depth_check_unit():
    assert json_body_problem(b"[[[]]]", max_depth=3) is None
    assert "deeper" in json_body_problem(b"[[[[]]]]", max_depth=3)
    assert json_body_problem(b'{"a": "]]]]}}}"}', max_depth=2) is None
    assert json_body_problem(b'{"a": "\\"[[[["}', max_depth=2) is None
    assert json_body_problem(b"") is None


# ---------------------------------------------------------------- auth before input, 405


def test_anonymous_writes_answer_401_before_input_is_checked(world, api):
    for url, body in [
        ("/api/v1/value-added", {"nonsense": True}),
        ("/api/v1/ledger", []),
        ("/api/v1/boxes/TX-NONE/fills", {"mass_kg": "x"}),
        ("/api/v1/index/values", "x"),
    ]:
        r = api.client.post(url, json=body)
        assert _problem(r, 401)["status"] == 401, url
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = api.client.post("/api/v1/ledger", json=[], headers={"Authorization": "Bearer not-a-token"})
    _problem(r, 401)
    # getting a token stays public: a bad body is the caller's input error
    assert api.client.post("/api/v1/auth/token", json={"nope": 1}).status_code == 422


def test_page_session_does_not_write_through_the_api(world, api, client):
    r = client.post("/login", data={"username": "ent", "password": "correct-horse-9"})
    assert r.status_code in (302, 303)
    assert client.get("/api/v1/ledger").status_code == 200  # reads with the session
    _problem(client.post("/api/v1/ledger", json={"waste_code": "900-041-49", "quantity_kg": 1}), 401)


def test_405_names_the_allowed_methods(world, api):
    r = api.client.delete("/api/v1/ledger", headers=api._headers("ent", None))
    _problem(r, 405)
    allowed = {m.strip() for m in r.headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allowed


# ---------------------------------------------------------------- OpenAPI as served


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_openapi_refs_resolve_and_errors_are_problem_json(client):
    spec = client.get("/openapi.json").get_json()
    for ref in set(_refs(spec)):
        section, name = ref.split("/")[2:4]
        assert name in spec["components"][section], ref
    body = spec["paths"]["/api/v1/index/values"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["items"]["$ref"] == "#/components/schemas/ValueIn"
    for name, response in spec["components"]["responses"].items():
        content = response.get("content") or {}
        assert "application/json" not in content, name
        if content:
            assert content == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}, name
    quantity = spec["components"]["schemas"]["LedgerIn"]["properties"]["quantity_kg"]
    assert quantity["maximum"] == limits().fields["waste_kg"].max


# ---------------------------------------------------------------- the rule file


def test_plausibility_file_is_complete_and_checked():
    loaded = limits()
    for name, entry in loaded.fields.items():
        assert entry.min < entry.max and entry.zh and entry.en and entry.source, name
        # no sum of a million records can overflow a float
        assert math.isfinite(entry.max * 1e9)
    with pytest.raises(RulesError) as err:
        parse({"fields": {"x": {"min": 5, "max": 1, "unit": "kg", "zh": "", "en": "x", "source": "y"}}})
    assert "min must be below max" in str(err.value) and "zh" in str(err.value)


# ---------------------------------------------------------------- exports


def test_exports_survive_control_characters_and_guard_formulas(world, api, session):
    from openpyxl import load_workbook

    from app.accounts.services import create_park
    from tests.factories import op_principal

    weird = create_park(session, op_principal(), {"name": "Park\u0001x", "county_code": "331023"})
    formula = create_park(session, op_principal(), {"name": '=HYPERLINK("http://x")', "county_code": "331023"})
    session.commit()
    r = api.get(f"/api/v1/parks/{weird.id}/metrics.xlsx?period=2024", as_="op")
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    sheet = load_workbook(io.BytesIO(r.get_data()))["汇总"]
    assert sheet["B2"].value == "Park\ufffdx"
    r = api.get(f"/api/v1/parks/{formula.id}/metrics.xlsx?period=2024", as_="op")
    sheet = load_workbook(io.BytesIO(r.get_data()))["汇总"]
    assert sheet["B2"].value.startswith("'=") and sheet["B2"].data_type == "s"
    r = api.get(f"/api/v1/parks/{formula.id}/metrics.csv?period=2024", as_="op")
    assert "'=HYPERLINK" in r.get_data(as_text=True)
    assert "inf" not in r.get_data(as_text=True).lower().replace("info", "")
