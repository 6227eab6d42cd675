"""MQTT helpers for the telemetry tests (no tests here): a subscriber running in a thread and a publisher."""
from __future__ import annotations

import json
import threading
import time
import uuid

import paho.mqtt.client as mqtt

from app.telemetry.mqtt import Subscriber

BROKER = ("127.0.0.1", 1883)


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
