"""MQTT ingest against the real Mosquitto at 127.0.0.1:1883: readings stored, garbage
dead-lettered, and messages published while the subscriber is down delivered after it restarts."""

from __future__ import annotations

import json
import socket
import uuid
from datetime import timedelta

import paho.mqtt.client as mqtt
import pytest

from tests.support import service_missing
from tests.telemetry.builders import reading, stored_count, utc_now
from tests.telemetry.mqtt_helpers import BROKER, Running, _message, publish

pytestmark = pytest.mark.mqtt


@pytest.fixture
def broker():
    try:
        socket.create_connection(BROKER, timeout=2).close()
    except OSError as exc:
        service_missing("Mosquitto at 127.0.0.1:1883", str(exc))
    return f"mqtt://{BROKER[0]}:{BROKER[1]}"


@pytest.fixture
def channel():
    """A topic and client id of this test only, so parallel runs never see each other's messages."""
    run = uuid.uuid4().hex[:12]
    yield {"topic": f"tanxiang-test/{run}/readings", "client_id": f"tanxiang-test-{run}"}
    # Drop the persistent session the test left on the broker.
    cleaner = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"tanxiang-test-{run}", clean_session=True)
    try:
        cleaner.connect(*BROKER)
        cleaner.loop(timeout=0.5)
        cleaner.disconnect()
    except OSError:
        pass


def test_readings_over_mqtt_are_stored(app, api, world, sensor_box, gateway, broker, channel):
    now = utc_now()
    batch = [reading(sensor_box.code, now - timedelta(minutes=m)) for m in (3, 2, 1)]
    single = {"token": gateway, **reading(sensor_box.code, now)}
    with Running(app, broker, channel) as sub:
        publish(channel["topic"], [_message(gateway, batch), json.dumps(single).encode(), _message(gateway, batch)])
        batches = sub.wait_for(3)
    # Whatever the batching, the repeated batch is stored once.
    assert (sum(b.accepted for b in batches), sum(b.duplicates for b in batches)) == (4, 3), batches
    assert sub.dead_letters() == [None, None, None]
    assert stored_count(sensor_box.id) == 4
    box = api.get(f"/api/v1/boxes/{sensor_box.code}", as_="ent").get_json()
    assert box["saturation_basis"] == "sensor" and box["latest_reading"] is not None


def test_unusable_messages_become_dead_letters(app, api, world, sensor_box, gateway, broker, channel):
    now = utc_now()
    good, bad = reading(sensor_box.code, now), reading(sensor_box.code, now - timedelta(minutes=1), inlet_mg_m3=-5)
    payloads = [
        b"\xff\xfe\x00garbage",  # not UTF-8
        b"{not json",  # not JSON
        _message("txd_not-a-real-token", [good]),  # unknown token
        json.dumps({"readings": [good]}).encode(),  # no token
        _message(gateway, [good, bad]),  # one bad reading: the good one is stored
    ]
    with Running(app, broker, channel) as sub:
        publish(channel["topic"], payloads)
        sub.wait_for(len(payloads))
    assert sub.dead_letters() == ["undecodable", "invalid_json", "unauthenticated", "unauthenticated", "rejected_items"]
    assert stored_count(sensor_box.id) == 1
    listed = api.get("/api/v1/telemetry/dead-letters", as_="op").get_json()
    assert listed["total"] == 5
    by_reason = {d["reason"]: d for d in listed["items"]}
    assert by_reason["undecodable"]["topic"] == channel["topic"]
    assert by_reason["invalid_json"]["payload"] == "{not json"
    rejected = by_reason["rejected_items"]
    assert rejected["errors"] == [
        {"index": 1, "box_code": sensor_box.code, "errors": {"inlet_mg_m3": ["must not be negative"]}}
    ]
    assert gateway not in json.dumps(listed["items"])  # device tokens never reach the list
    assert all(
        "txd_[redacted]" in d["payload"]
        for d in listed["items"]
        if d["reason"] == "unauthenticated" and "token" in d["payload"]
    )
    # Operators only.
    assert api.get("/api/v1/telemetry/dead-letters", as_="ent").status_code == 403
    assert api.get("/api/v1/telemetry/dead-letters?reason=invalid_json", as_="op").get_json()["total"] == 1


def test_messages_published_while_the_subscriber_is_down_arrive_after_restart(
    app, api, world, sensor_box, gateway, broker, channel
):
    now = utc_now()
    with Running(app, broker, channel):
        pass  # the first run creates the persistent session and its QoS 1 subscription
    messages = [_message(gateway, [reading(sensor_box.code, now - timedelta(minutes=m))]) for m in (5, 4, 3)]
    publish(channel["topic"], messages)
    assert stored_count(sensor_box.id) == 0
    with Running(app, broker, channel) as sub:  # same client id: the broker kept the messages
        batches = sub.wait_for(3)
    assert sum(b.accepted for b in batches) == 3
    assert stored_count(sensor_box.id) == 3
