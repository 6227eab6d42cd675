"""The subscriber survives restarts of the broker itself: a private Mosquitto (the machine's
binary with deploy/mosquitto.conf, its own port and folder) is stopped and started under a running
subscriber, and no QoS 1 message is lost — neither those sent after the restart nor those queued
for the subscriber's persistent session before it."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest

from tests.telemetry.builders import reading, stored_count, utc_now
from tests.telemetry.mosquitto_private import PrivateBroker
from tests.telemetry.mqtt_helpers import Running, _message, publish

pytestmark = pytest.mark.mqtt


class Broker(PrivateBroker):
    def publish(self, topic: str, payloads: list[bytes]) -> None:
        publish(topic, payloads, ("127.0.0.1", self.port))


@pytest.fixture
def private_broker(tmp_path):
    broker = Broker(tmp_path)
    broker.start()
    yield broker
    broker.stop()


def test_subscriber_rides_out_broker_restarts(app, world, sensor_box, gateway, private_broker):
    run = uuid.uuid4().hex[:10]
    channel = {"topic": f"tanxiang-test/{run}/readings", "client_id": f"tanxiang-restart-{run}"}
    now = utc_now()
    with Running(app, private_broker.url, channel) as sub:
        private_broker.publish(
            channel["topic"], [_message(gateway, [reading(sensor_box.code, now - timedelta(minutes=9))])]
        )
        sub.wait_for(1)
        # The broker goes away under the running subscriber and comes back.
        private_broker.stop()
        time.sleep(0.5)
        private_broker.start()
        # The subscriber reconnects by itself, resumes its session and keeps consuming.
        private_broker.publish(
            channel["topic"], [_message(gateway, [reading(sensor_box.code, now - timedelta(minutes=8))])]
        )
        sub.wait_for(2, timeout=20)
    assert stored_count(sensor_box.id) == 2

    # Messages queued for the (stopped) subscriber's persistent session survive a broker restart.
    private_broker.publish(
        channel["topic"], [_message(gateway, [reading(sensor_box.code, now - timedelta(minutes=m))]) for m in (7, 6, 5)]
    )
    private_broker.stop()
    private_broker.start()
    with Running(app, private_broker.url, channel) as sub:
        batches = sub.wait_for(3, timeout=20)
    assert sum(b.accepted for b in batches) == 3
    assert stored_count(sensor_box.id) == 5
    assert "dropped" not in private_broker.log_text()
