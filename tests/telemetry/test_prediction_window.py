"""The predicted replacement date follows the measured load over a real 24-hour window (gaps and
stopped fans as the integral counts them), and falls back to the design load, said so, when the
window holds less than the colour rules' ``measured_load.min_covered_hours`` of readings."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
import yaml

from app.boxes.colour import parse_rules
from app.common.wiring import EXTENSION_KEY, SESSION_KEY, wiring_of
from app.extensions import db
from app.rules import DATA_DIR, RulesError
from tests.telemetry.builders import make_sensor_box, post_readings, reading, utc_now
from tests.web.builders import login

SHIPPED = yaml.safe_load((DATA_DIR / "colour_rules.yaml").read_text(encoding="utf-8"))
# inlet 200, outlet 20 mg/m³, 10,000 m³/h: 1.8 kg/h while a reading holds (10 minutes at most)
ISSUE = dict(inlet_mg_m3=200.0, outlet_mg_m3=20.0, airflow_m3_h=10000.0)


def _sparse_box(api, world, gateway, facility_code="TA101", running=lambda i: True):
    """The issue's box: 24 readings 30 minutes apart over the last 12 h, filled just before."""
    now = utc_now()
    box = make_sensor_box(world, filled_days_ago=0.5 + 1 / 1440, facility_code=facility_code)
    first = now - timedelta(hours=12)
    items = [reading(box.code, first + timedelta(minutes=30 * i), running=running(i), **ISSUE) for i in range(24)]
    assert post_readings(api, gateway, items).get_json()["accepted"] == 24
    return box, now


def _hours_ahead(body, now: datetime) -> float:
    return (datetime.fromisoformat(body["predicted_replacement_at"]) - now).total_seconds() / 3600


def test_the_issue_example_predicts_from_kg_over_the_window(app, api, world, gateway):
    box, now = _sparse_box(api, world, gateway)
    body = api.get(f"/api/v1/boxes/{box.code}", as_="ent").get_json()
    assert body["adsorbed_kg"] == pytest.approx(7.2, abs=1e-6)
    assert body["load_basis"] == "measured"
    window = body["load_window"]
    # 23 closed intervals of 10 min held, 6.9 kg, over the 11.5 h (and a minute) since the fill.
    assert window["covered_hours"] == pytest.approx(23 / 6, abs=1e-3)
    assert window["hours"] == pytest.approx(11.5 + 1 / 60, abs=0.01)
    assert window["adsorbed_kg"] == pytest.approx(6.9, abs=1e-6)
    assert window["min_covered_hours"] == 1.0
    assert body["load_kg_per_day"] / 24 == pytest.approx(0.6, rel=0.01)  # not 1.8 kg/h
    assert _hours_ahead(body, now) == pytest.approx((200.0 - 7.2) / 0.6, rel=0.02)
    # The page says which load the date comes from.
    page = login(app, "ent").get(f"/boxes/{box.code}").get_data(as_text=True)
    assert "按近24小时实测负荷" in page


def test_stopped_fans_count_as_time_at_no_load(api, world, gateway):
    # The fan runs only every other reading: half the kg in the same window.
    box, _ = _sparse_box(api, world, gateway, running=lambda i: i % 2 == 0)
    body = api.get(f"/api/v1/boxes/{box.code}", as_="ent").get_json()
    assert body["load_basis"] == "measured"
    assert body["load_window"]["covered_hours"] == pytest.approx(23 / 6, abs=1e-3)  # stopped time is known
    assert body["load_window"]["adsorbed_kg"] == pytest.approx(12 * 0.3, abs=1e-6)
    assert body["load_kg_per_day"] == pytest.approx(3.6 / (11.5 + 1 / 60) * 24, rel=1e-3)


def test_too_little_data_is_the_rule_files_threshold_and_falls_back_to_the_design_load(
    tmp_path, monkeypatch, app, api, world, gateway
):
    # A regulator asking for 4 hours of readings: the issue's 3.83 h are too little.
    data = yaml.safe_load(yaml.safe_dump(SHIPPED, allow_unicode=True))
    data["measured_load"]["min_covered_hours"] = 4
    data["version"] = "four-hours"
    (tmp_path / "colour_rules.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    strict = replace(wiring_of(db.session), rules_dir=str(tmp_path))
    monkeypatch.setitem(app.extensions, EXTENSION_KEY, strict)
    monkeypatch.setitem(db.session.info, SESSION_KEY, strict)
    box, now = _sparse_box(api, world, gateway)
    body = api.get(f"/api/v1/boxes/{box.code}", as_="ent").get_json()
    assert body["rules_version"] == "four-hours"
    assert body["load_basis"] == "design"
    assert body["load_kg_per_day"] == pytest.approx(body["design_daily_load_kg"])
    assert body["load_window"]["covered_hours"] == pytest.approx(23 / 6, abs=1e-3)
    assert body["load_window"]["min_covered_hours"] == 4.0
    remaining = body["capacity_kg"] - body["adsorbed_kg"]
    assert _hours_ahead(body, now) == pytest.approx(remaining / body["design_daily_load_kg"] * 24, rel=0.01)
    page = login(app, "ent").get(f"/boxes/{box.code}").get_data(as_text=True)
    assert "近24小时监测数据不足，按设计负荷" in page


def test_a_box_without_sensors_says_design_without_a_window(api, world):
    from tests.boxes.builders import register

    code = register(api)["code"]
    api.post(f"/api/v1/boxes/{code}/fills", {"mass_kg": 2000, "iodine_mg_g": 900}, as_="ent")
    body = api.get(f"/api/v1/boxes/{code}", as_="ent").get_json()
    assert body["load_basis"] == "design" and body["load_window"] is None


@pytest.mark.parametrize("value", [0, -1, 25, "one"])
def test_a_wrong_threshold_is_refused_with_its_key(value):
    data = yaml.safe_load(yaml.safe_dump(SHIPPED, allow_unicode=True))
    data["measured_load"]["min_covered_hours"] = value
    with pytest.raises(RulesError, match=r"measured_load\.min_covered_hours"):
        parse_rules(data)


def test_the_schema_refuses_a_wrong_threshold(tmp_path):
    from app.rules import load_rule_file

    data = yaml.safe_load(yaml.safe_dump(SHIPPED, allow_unicode=True))
    data["measured_load"] = {"min_covered_hours": 30}
    (tmp_path / "colour_rules.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RulesError, match="min_covered_hours"):
        load_rule_file("colour_rules.yaml", str(tmp_path))
    assert parse_rules(SHIPPED).min_load_covered_h == 1.0
