"""The subscriber survives restarts of the broker itself: a private Mosquitto (the machine's
binary, persistence on, its own port and folder) is stopped and started under a running
subscriber, and no QoS 1 message is lost — neither those sent after the restart nor those queued
for the subscriber's persistent session before it."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from datetime import timedelta

import pytest

from tests.support import service_missing
from tests.telemetry.builders import reading, stored_count, utc_now
from tests.telemetry.mqtt_helpers import Running, _message, publish

pytestmark = pytest.mark.mqtt


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateBroker:
    def __init__(self, folder):
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not shutil.which(binary):
            service_missing("the mosquitto binary", "not installed")
        self.binary = binary
        self.port = _free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {folder}/\nautosave_interval 1\n"
            # Run as whoever runs the tests (mosquitto started as root would drop to its own
            # user and could not write its persistence file in our folder).
            + ("user root\n" if os.geteuid() == 0 else "")
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("private mosquitto did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # SIGTERM: mosquitto writes its persistence file on the way out
            self.process.wait(10)
            self.process = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def publish(self, topic: str, payloads: list[bytes]) -> None:
        publish(topic, payloads, ("127.0.0.1", self.port))


@pytest.fixture
def private_broker(tmp_path):
    broker = PrivateBroker(tmp_path)
    broker.start()
    yield broker
    broker.stop()


def test_subscriber_rides_out_broker_restarts(app, world, sensor_box, gateway, private_broker):
    run = uuid.uuid4().hex[:10]
    channel = {"topic": f"tanxiang-test/{run}/readings", "client_id": f"tanxiang-restart-{run}"}
    now = utc_now()
    with Running(app, private_broker.url, channel) as sub:
        private_broker.publish(channel["topic"], [_message(gateway, [reading(sensor_box.code, now - timedelta(minutes=9))])])
        sub.wait_for(1)
        # The broker goes away under the running subscriber and comes back.
        private_broker.stop()
        time.sleep(0.5)
        private_broker.start()
        # The subscriber reconnects by itself, resumes its session and keeps consuming.
        private_broker.publish(channel["topic"], [_message(gateway, [reading(sensor_box.code, now - timedelta(minutes=8))])])
        sub.wait_for(2, timeout=20)
    assert stored_count(sensor_box.id) == 2

    # Messages queued for the (stopped) subscriber's persistent session survive a broker restart.
    private_broker.publish(channel["topic"], [_message(gateway, [reading(sensor_box.code, now - timedelta(minutes=m))])
                                              for m in (7, 6, 5)])
    private_broker.stop()
    private_broker.start()
    with Running(app, private_broker.url, channel) as sub:
        outcomes = sub.wait_for(3, timeout=20)
    assert sum(o.accepted for o in outcomes) == 3
    assert stored_count(sensor_box.id) == 5
