"""Ingest over HTTP: device tokens, per-item errors, duplicates, limits, isolation; reading back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.extensions import db
from app.telemetry.models import SensorReading
from tests import factories
from tests.telemetry.builders import device_token, post_readings, reading, state_of, stored_count, utc_now


def test_batch_with_bad_items_keeps_the_good_ones(api, world, sensor_box, gateway):
    now = utc_now()
    code = sensor_box.code
    batch = [
        reading(code, now - timedelta(minutes=3)),
        reading(code, now - timedelta(minutes=2), outlet_mg_m3=-1),  # 1 negative
        reading(code, now - timedelta(minutes=2), airflow_m3_h="lots"),  # 2 not a number
        reading(code, now - timedelta(minutes=2), bed_temp_c=400),  # 3 beyond the sensor range
        reading(code, "yesterday-ish"),  # 4 unparsable ts
        reading(code, now + timedelta(minutes=30)),  # 5 future
        reading("23-ZZZZZZ", now - timedelta(minutes=2)),  # 6 not a box code
        "not an object",  # 7
        {**reading(code, now - timedelta(minutes=1)), "colour": "green"},  # 8 unknown field
        reading(code, now - timedelta(minutes=2)),
        {k: v for k, v in reading(code, now).items() if k != "inlet_mg_m3"},  # 10 missing measure
        reading(code, now - timedelta(minutes=1), rh_pct=None, running=False),
    ]
    r = post_readings(api, gateway, batch)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (3, 0, 9)
    errors = {item["index"]: item["errors"] for item in body["rejected_items"]}
    assert sorted(errors) == [1, 2, 3, 4, 5, 6, 7, 8, 10]
    assert errors[1] == {"outlet_mg_m3": ["must not be negative"]}
    assert errors[2] == {"airflow_m3_h": ["not a number"]}
    assert "outside the sensor range" in errors[3]["bed_temp_c"][0]
    assert "ts" in errors[4] and errors[5] == {"ts": ["in the future"]}
    assert errors[6] == {"box_code": ["unknown box"]}
    assert "_item" in errors[7] and errors[8] == {"colour": ["unknown field"]}
    assert errors[10] == {"inlet_mg_m3": ["required"]}
    assert stored_count(sensor_box.id) == 3
    stopped = db.session.get(SensorReading, (sensor_box.id, now - timedelta(minutes=1)))
    assert stopped.running is False and stopped.rh_pct is None


def test_resending_a_batch_stores_nothing_twice(api, world, sensor_box, gateway):
    now = utc_now()
    batch = [reading(sensor_box.code, now - timedelta(minutes=m)) for m in (5, 4, 3)]
    first = post_readings(api, gateway, {"readings": batch}).get_json()
    assert (first["accepted"], first["duplicates"]) == (3, 0)
    adsorbed = state_of(sensor_box.id).adsorbed_kg
    assert adsorbed > 0
    again = post_readings(api, gateway, {"readings": [*batch, batch[0]]}).get_json()
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 4, 0)
    assert stored_count(sensor_box.id) == 3
    assert state_of(sensor_box.id).adsorbed_kg == adsorbed
    # The same instant written differently (offset vs UTC vs naive local) is the same reading.
    t = now - timedelta(minutes=5)
    variants = [
        reading(sensor_box.code, t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
        reading(sensor_box.code, (t + timedelta(hours=8)).replace(tzinfo=None).isoformat()),
    ]
    body = post_readings(api, gateway, variants).get_json()
    assert (body["accepted"], body["duplicates"]) == (0, 2)


def test_naive_timestamps_are_shanghai_time_and_epoch_seconds_work(api, world, sensor_box, gateway):
    local = (utc_now() - timedelta(hours=1)).astimezone(timezone(timedelta(hours=8))).replace(tzinfo=None)
    epoch = (utc_now() - timedelta(minutes=30)).timestamp()
    body = post_readings(
        api, gateway, [reading(sensor_box.code, local.isoformat()), {**reading(sensor_box.code, "x"), "ts": epoch}]
    ).get_json()
    assert body["accepted"] == 2, body
    stored = sorted(r.ts for r in db.session.query(SensorReading).filter_by(box_id=sensor_box.id))
    assert stored[0] == local.replace(tzinfo=timezone(timedelta(hours=8))).astimezone(UTC)
    assert stored[1] == datetime.fromtimestamp(epoch, UTC)


def test_malformed_json_oversized_batch_and_wrong_shape(api, world, sensor_box, gateway):
    headers = {"Authorization": f"Bearer {gateway}", "Content-Type": "application/json"}
    r = api.client.post("/api/v1/readings", data='[{"box_code": ', headers=headers)
    assert r.status_code == 400 and r.mimetype == "application/problem+json"
    now = utc_now()
    too_many = [reading(sensor_box.code, now - timedelta(seconds=s)) for s in range(5001)]
    r = api.client.post("/api/v1/readings", data=json.dumps(too_many), headers=headers)
    assert r.status_code == 413 and r.mimetype == "application/problem+json"
    assert r.get_json()["max_items"] == 5000
    for body in ({"items": []}, "readings", {"readings": {"box_code": sensor_box.code}}):
        r = post_readings(api, gateway, body)
        assert r.status_code == 422, body
        assert r.mimetype == "application/problem+json"
    assert stored_count() == 0
    assert post_readings(api, gateway, []).get_json() == {
        "accepted": 0,
        "duplicates": 0,
        "rejected": 0,
        "rejected_items": [],
    }


def test_a_gateway_writes_only_its_own_organisations_boxes(api, world, sensor_box):
    other_box = factories.box(world.other_enterprise, has_sensors=True)
    db.session.commit()
    other_gateway = device_token(api, world.other_enterprise)
    now = utc_now()
    body = post_readings(
        api,
        other_gateway,
        [reading(sensor_box.code, now), reading(other_box.code, now), reading("31-AAAAA" + "0", now)],
    ).get_json()
    assert body["accepted"] == 1
    # Someone else's box answers exactly like a box that does not exist.
    assert [i["errors"] for i in body["rejected_items"]] == [{"box_code": ["unknown box"]}] * 2
    assert stored_count(sensor_box.id) == 0 and stored_count(other_box.id) == 1


def test_who_may_ingest(api, world, sensor_box):
    now = utc_now()
    # The enterprise's own users may; an operator may, for any box.
    r = api.post("/api/v1/readings", [reading(sensor_box.code, now - timedelta(minutes=2))], as_="ent_staff")
    assert r.status_code == 200 and r.get_json()["accepted"] == 1
    r = api.post("/api/v1/readings", [reading(sensor_box.code, now - timedelta(minutes=1))], as_="op")
    assert r.get_json()["accepted"] == 1
    # Another enterprise's user: the box is unknown to it; a regulator does not ingest at all.
    r = api.post("/api/v1/readings", [reading(sensor_box.code, now)], as_="other")
    assert r.get_json()["rejected_items"][0]["errors"] == {"box_code": ["unknown box"]}
    assert api.post("/api/v1/readings", [reading(sensor_box.code, now)], as_="reg_tt").status_code == 403
    assert api.post("/api/v1/readings", [reading(sensor_box.code, now)], as_=None).status_code == 401
    assert stored_count(sensor_box.id) == 2


def test_device_tokens_cannot_read_or_manage(api, world, sensor_box, gateway):
    headers = {"Authorization": f"Bearer {gateway}"}
    assert api.client.get(f"/api/v1/boxes/{sensor_box.code}/readings", headers=headers).status_code == 403
    assert api.client.get(f"/api/v1/boxes/{sensor_box.code}", headers=headers).status_code == 403


def test_raw_hourly_and_daily_readings(api, world, sensor_box, gateway):
    shanghai = timezone(timedelta(hours=8))
    # Four readings around local midnight: two days in Asia/Shanghai, three hours. The midnight is
    # 2-26 h ago whatever the hour the test runs, so the last reading (+65 min) is never in the future.
    day = (utc_now() - timedelta(hours=26)).astimezone(shanghai).date()
    midnight = datetime(day.year, day.month, day.day, tzinfo=shanghai) + timedelta(days=1)
    ts = [
        midnight - timedelta(minutes=30),
        midnight - timedelta(minutes=25),
        midnight + timedelta(minutes=5),
        midnight + timedelta(minutes=65),
    ]
    values = [(100, 20, 700), (120, 30, 900), (80, 10, 1000), (90, 15, None)]
    batch = [
        reading(sensor_box.code, t, inlet_mg_m3=i, outlet_mg_m3=o, pressure_drop_pa=p)
        for t, (i, o, p) in zip(ts, values, strict=True)
    ]
    assert post_readings(api, gateway, batch).get_json()["accepted"] == 4
    start = (midnight - timedelta(hours=2)).isoformat()
    end = (midnight + timedelta(hours=3)).isoformat()
    raw = api.get(
        f"/api/v1/boxes/{sensor_box.code}/readings", query_string={"from": start, "to": end}, as_="ent"
    ).get_json()
    assert [r["inlet_mg_m3"] for r in raw["readings"]] == [100, 120, 80, 90] and raw["truncated"] is False
    hours = api.get(
        f"/api/v1/boxes/{sensor_box.code}/readings",
        query_string={"from": start, "to": end, "resolution": "hour"},
        as_="ent",
    ).get_json()["rollups"]
    assert [h["count"] for h in hours] == [2, 1, 1]
    first = hours[0]
    assert first["inlet_mg_m3"] == {"avg": 110.0, "min": 100.0, "max": 120.0}
    assert first["pressure_drop_pa"] == {"avg": 800.0, "min": 700.0, "max": 900.0}
    assert hours[2]["pressure_drop_pa"] == {"avg": None, "min": None, "max": None}
    # The first reading holds 5 min, the second 10 min (capped), the third 10 min (capped).
    assert first["adsorbed_kg"] == pytest.approx((80 * 5 / 60 + 90 * 10 / 60) * 5000e-6)
    days = api.get(
        f"/api/v1/boxes/{sensor_box.code}/readings",
        query_string={"from": start, "to": end, "resolution": "day"},
        as_="ent",
    ).get_json()["rollups"]
    assert [(d["date"], d["count"]) for d in days] == [(day.isoformat(), 2), ((day + timedelta(days=1)).isoformat(), 2)]
    assert days[1]["inlet_mg_m3"] == {"avg": 85.0, "min": 80.0, "max": 90.0}
    assert days[1]["start"] == midnight.astimezone(UTC).isoformat()
    total = sum(d["adsorbed_kg"] for d in days)
    assert total == pytest.approx(state_of(sensor_box.id).adsorbed_kg)
    # Visibility is the box's: another enterprise does not see it.
    assert api.get(f"/api/v1/boxes/{sensor_box.code}/readings", as_="other").status_code == 404
    assert (
        api.get(
            f"/api/v1/boxes/{sensor_box.code}/readings", query_string={"from": end, "to": start}, as_="ent"
        ).status_code
        == 422
    )


def test_readings_are_listed_in_openapi(api):
    spec = api.client.get("/openapi.json").get_json()
    assert "/api/v1/readings" in spec["paths"]
    assert "/api/v1/boxes/{code}/readings" in spec["paths"]
    assert "/api/v1/telemetry/dead-letters" in spec["paths"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream", None])
def test_a_body_nested_thousands_deep_is_refused_not_a_server_error(api, world, sensor_box, gateway, content_type):
    # Sent as anything but application/json it passes the request guard's depth check: the wire
    # decoder itself must turn the standard library's RecursionError into a 400.
    headers = {"Authorization": f"Bearer {gateway}"}
    if content_type:
        headers["Content-Type"] = content_type
    for body in ("[" * 10_000 + "]" * 10_000, '{"a":' * 10_000 + "1" + "}" * 10_000):
        r = api.client.post("/api/v1/readings", data=body, headers=headers)
        assert r.status_code == 400, r.get_data(as_text=True)[:200]
        assert r.mimetype == "application/problem+json"
        assert "nests too deeply" in r.get_json()["detail"]
    assert stored_count() == 0
