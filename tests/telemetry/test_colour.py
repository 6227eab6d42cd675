"""Sensor rules turn boxes yellow or red, with observed value and threshold, into the history."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from app.boxes.services import record_fill, refresh_due
from app.extensions import db
from tests import factories
from tests.telemetry.builders import make_sensor_box, post_readings, reading, utc_now


def _box(api, code):
    return api.get(f"/api/v1/boxes/{code}", as_="ent").get_json()


def _reasons(body):
    return {r["code"]: r for r in body["reasons"]}


def _history(api, code):
    return api.get(f"/api/v1/boxes/{code}/history", as_="ent").get_json()["colour_changes"]


def _send(api, gateway, code, minutes_ago, **over):
    now = utc_now()
    body = post_readings(api, gateway, [reading(code, now - timedelta(minutes=m), **over) for m in minutes_ago])
    assert body.status_code == 200 and body.get_json()["rejected"] == 0, body.get_json()
    return body.get_json()


def test_healthy_readings_keep_a_box_green(api, world, sensor_box, gateway):
    _send(api, gateway, sensor_box.code, [3, 2, 1])
    body = _box(api, sensor_box.code)
    assert body["colour"] == "green", body["reasons"]
    assert body["latest_reading"]["bed_temp_c"] == 30


def test_sustained_breakthrough_is_red_but_a_spike_is_not(api, world, sensor_box, gateway):
    code = sensor_box.code
    _send(api, gateway, code, [10, 9])
    _send(api, gateway, code, [8], outlet_mg_m3=95.0)  # one spike above the 60 mg/m³ limit
    _send(api, gateway, code, [7])
    assert _box(api, code)["colour"] == "green"
    _send(api, gateway, code, [6, 5, 4, 3], outlet_mg_m3=75.0)
    body = _box(api, code)
    assert body["colour"] == "red"
    reason = _reasons(body)["sensor_breakthrough"]
    assert (reason["level"], reason["observed"], reason["threshold"]) == ("red", 75.0, 60.0)
    assert "75.0" in reason["zh"] and "60.0" in reason["en"]
    changes = _history(api, code)
    # The batch describes the past: its history is replayed reading by reading. The first 75
    # mg/m³ reading lowers the removal efficiency (yellow); the third, 2 min later, makes the
    # breakthrough sustained (red), and the change is dated at that reading, not at arrival.
    assert [c["colour"] for c in changes][-3:] == ["green", "yellow", "red"]
    assert "sensor_breakthrough" in [r["code"] for r in changes[-1]["reasons"]]
    from datetime import datetime

    red_at = datetime.fromisoformat(changes[-1]["changed_at"])
    assert abs((utc_now() - red_at).total_seconds() - 4 * 60) < 30
    # Clean readings end the streak: green again, and the history says so.
    _send(api, gateway, code, [2, 1])
    assert _box(api, code)["colour"] == "green"
    assert _history(api, code)[-1]["colour"] == "green"


@pytest.mark.parametrize(
    "over, code, level, observed, threshold",
    [
        ({"bed_temp_c": 85.0}, "bed_temperature_high", "red", 85.0, 83),
        ({"inlet_temp_c": 45.5}, "inlet_temperature_high", "yellow", 45.5, 40),
        ({"pressure_drop_pa": 1500.0}, "pressure_drop_out_of_band", "yellow", 1500.0, "300–1200"),
        ({"pressure_drop_pa": 120.0}, "pressure_drop_out_of_band", "yellow", 120.0, "300–1200"),
        ({"outlet_mg_m3": 40.0}, "removal_efficiency_low", "yellow", "60%", "70%"),
    ],
)
def test_each_sensor_alarm(api, world, sensor_box, gateway, over, code, level, observed, threshold):
    _send(api, gateway, sensor_box.code, [2])
    _send(api, gateway, sensor_box.code, [1], **over)
    body = _box(api, sensor_box.code)
    assert body["colour"] == level
    reason = _reasons(body)[code]
    assert (reason["level"], reason["observed"], reason["threshold"]) == (level, observed, threshold)
    assert reason["zh"] and reason["en"]
    changes = _history(api, sensor_box.code)
    assert changes[-1]["colour"] == level and changes[-1]["previous_colour"] == "green"
    assert code in [r["code"] for r in changes[-1]["reasons"]]
    # The scan page shows the reason too.
    page = api.client.get(f"/c/{sensor_box.code}?lang=zh").get_data(as_text=True)
    assert f'data-rule="{code}"' in page


def test_a_stopped_fan_raises_no_pressure_or_efficiency_alarm(api, world, sensor_box, gateway):
    _send(api, gateway, sensor_box.code, [1], running=False, pressure_drop_pa=0.0, outlet_mg_m3=95.0)
    assert _box(api, sensor_box.code)["colour"] == "green"


def test_silence_turns_a_sensor_box_yellow_then_red(api, world, gateway):
    box = make_sensor_box(world, filled_days_ago=10)
    plain = factories.box(world.enterprise, has_sensors=False)
    record_fill(
        db.session,
        factories.op_principal(),
        plain,
        {"mass_kg": 2000.0, "iodine_mg_g": 950.0, "filled_at": utc_now() - timedelta(days=2)},
    )
    db.session.commit()
    _send(api, gateway, plain.code, [30 * 60])
    _send(api, gateway, box.code, [30 * 60])
    body = _box(api, box.code)
    assert body["colour"] == "yellow"
    reason = _reasons(body)["no_sensor_data"]
    assert reason["observed"] == pytest.approx(30.0, abs=0.1) and reason["threshold"] == 24
    _send(api, gateway, box.code, [80 * 60])  # a late reading does not end the silence
    assert _box(api, box.code)["colour"] == "yellow"
    # Time alone moves it on: the sweep re-evaluates boxes whose next check is due.
    now = utc_now()
    assert refresh_due(db.session, now + timedelta(hours=43)) >= 1
    db.session.commit()
    db.session.refresh(box)
    assert box.colour == "red"
    assert "no_sensor_data_long" in [r["code"] for r in box.colour_reasons]
    # A box without sensors is never flagged for silence.
    plain_body = _box(api, plain.code)
    assert plain_body["colour"] == "green" and plain_body["latest_reading"] is not None


def test_a_reading_that_ends_a_silence_already_evaluated_redates_the_silence_alarms(api, world, gateway):
    """The box is read (evaluated) after a long silence, then a reading from inside the silence
    arrives: it is newer than every stored reading, and the box is still silent for more than
    72 h now, so its colour does not change, but the silence alarms start again from it."""
    box = make_sensor_box(world, filled_days_ago=10)
    now = utc_now()
    t1, t2 = now - timedelta(days=9, hours=12), now - timedelta(days=9)
    assert post_readings(api, gateway, [reading(box.code, t1)]).get_json()["accepted"] == 1
    assert _box(api, box.code)["colour"] == "red"  # evaluated now: silent since t1
    assert ("red", t1 + timedelta(hours=72)) in _changes(api, box.code)
    assert post_readings(api, gateway, [reading(box.code, t2)]).get_json()["accepted"] == 1
    changes = _changes(api, box.code)
    assert changes[-2:] == [("yellow", t2 + timedelta(hours=24)), ("red", t2 + timedelta(hours=72))]
    assert ("red", t1 + timedelta(hours=72)) not in changes


def _changes(api, code):
    return [(c["colour"], datetime.fromisoformat(c["changed_at"])) for c in _history(api, code)]


def test_a_sensor_box_that_never_reported_is_flagged_from_its_fill(api, world):
    box = make_sensor_box(world, filled_days_ago=2)
    body = _box(api, box.code)
    assert body["colour"] == "yellow"
    assert _reasons(body)["no_sensor_data"]["observed"] == pytest.approx(48.0, abs=0.1)
