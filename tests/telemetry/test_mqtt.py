"""MQTT ingest against the real Mosquitto at 127.0.0.1:1883: readings stored, garbage
dead-lettered, and messages published while the subscriber is down delivered after it restarts."""
from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from datetime import timedelta

import paho.mqtt.client as mqtt
import pytest

from app.telemetry.mqtt import Subscriber
from tests.conftest import service_missing
from tests.test_telemetry_support import (  # noqa: F401  (fixtures)
    gateway, reading, sensor_box, stored_count, utc_now,
)

pytestmark = pytest.mark.mqtt
BROKER = ("127.0.0.1", 1883)


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


class Running:
    """A subscriber consuming in a thread, like the CLI process."""

    def __init__(self, app, url, channel):
        self.outcomes = []
        self.subscriber = Subscriber(app, url, channel["topic"], channel["client_id"],
                                     on_outcome=lambda topic, outcome: self.outcomes.append(outcome),
                                     reconnect_delay_s=0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.subscriber.run, args=(self.stop,), daemon=True)

    def __enter__(self):
        self.thread.start()
        assert self.subscriber.subscribed.wait(10), "the subscriber did not subscribe"
        return self

    def wait_for(self, n: int, timeout: float = 15) -> list:
        deadline = time.monotonic() + timeout
        while len(self.outcomes) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.outcomes) >= n, f"{len(self.outcomes)} of {n} messages consumed"
        return self.outcomes

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


def publish(topic: str, payloads: list[bytes], broker: tuple[str, int] = BROKER) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"gw-{uuid.uuid4().hex[:8]}")
    client.connect(*broker)
    client.loop_start()
    try:
        for payload in payloads:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()


def _message(token, readings):
    return json.dumps({"token": token, "readings": readings}).encode()


def test_readings_over_mqtt_are_stored(app, api, world, sensor_box, gateway, broker, channel):
    now = utc_now()
    batch = [reading(sensor_box.code, now - timedelta(minutes=m)) for m in (3, 2, 1)]
    single = {"token": gateway, **reading(sensor_box.code, now)}
    with Running(app, broker, channel) as sub:
        publish(channel["topic"], [_message(gateway, batch), json.dumps(single).encode(), _message(gateway, batch)])
        outcomes = sub.wait_for(3)
    assert [(o.accepted, o.duplicates, o.dead_letter) for o in outcomes] == [(3, 0, None), (1, 0, None), (0, 3, None)], outcomes
    assert stored_count(sensor_box.id) == 4
    box = api.get(f"/api/v1/boxes/{sensor_box.code}", as_="ent").get_json()
    assert box["saturation_basis"] == "sensor" and box["latest_reading"] is not None


def test_unusable_messages_become_dead_letters(app, api, world, sensor_box, gateway, broker, channel):
    now = utc_now()
    good, bad = reading(sensor_box.code, now), reading(sensor_box.code, now - timedelta(minutes=1), inlet_mg_m3=-5)
    payloads = [
        b"\xff\xfe\x00garbage",                                        # not UTF-8
        b"{not json",                                                  # not JSON
        _message("txd_not-a-real-token", [good]),                      # unknown token
        json.dumps({"readings": [good]}).encode(),                     # no token
        _message(gateway, [good, bad]),                                # one bad reading: the good one is stored
    ]
    with Running(app, broker, channel) as sub:
        publish(channel["topic"], payloads)
        outcomes = sub.wait_for(len(payloads))
    assert [o.dead_letter for o in outcomes] == ["undecodable", "invalid_json", "unauthenticated", "unauthenticated",
                                                 "rejected_items"]
    assert stored_count(sensor_box.id) == 1
    listed = api.get("/api/v1/telemetry/dead-letters", as_="op").get_json()
    assert listed["total"] == 5
    by_reason = {d["reason"]: d for d in listed["items"]}
    assert by_reason["undecodable"]["topic"] == channel["topic"]
    assert by_reason["invalid_json"]["payload"] == "{not json"
    rejected = by_reason["rejected_items"]
    assert rejected["errors"] == [{"index": 1, "box_code": sensor_box.code,
                                   "errors": {"inlet_mg_m3": ["must not be negative"]}}]
    assert gateway not in json.dumps(listed["items"])  # device tokens never reach the list
    assert all("txd_[redacted]" in d["payload"] for d in listed["items"] if d["reason"] == "unauthenticated" and "token" in d["payload"])
    # Operators only.
    assert api.get("/api/v1/telemetry/dead-letters", as_="ent").status_code == 403
    assert api.get("/api/v1/telemetry/dead-letters?reason=invalid_json", as_="op").get_json()["total"] == 1


def test_messages_published_while_the_subscriber_is_down_arrive_after_restart(
        app, api, world, sensor_box, gateway, broker, channel):
    now = utc_now()
    with Running(app, broker, channel):
        pass  # the first run creates the persistent session and its QoS 1 subscription
    messages = [_message(gateway, [reading(sensor_box.code, now - timedelta(minutes=m))]) for m in (5, 4, 3)]
    publish(channel["topic"], messages)
    assert stored_count(sensor_box.id) == 0
    with Running(app, broker, channel) as sub:  # same client id: the broker kept the messages
        outcomes = sub.wait_for(3)
    assert sum(o.accepted for o in outcomes) == 3
    assert stored_count(sensor_box.id) == 3
