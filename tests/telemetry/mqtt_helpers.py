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

    def __init__(self, app, url, channel, **batching):
        self.batches = []
        self.subscriber = Subscriber(
            app,
            url,
            channel["topic"],
            channel["client_id"],
            on_batch=self.batches.append,
            reconnect_delay_s=0.2,
            **batching,
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.subscriber.run, args=(self.stop,), daemon=True)

    def __enter__(self):
        self.thread.start()
        assert self.subscriber.subscribed.wait(10), "the subscriber did not subscribe"
        return self

    @property
    def messages(self) -> int:
        return sum(b.messages for b in self.batches)

    def wait_for(self, n: int, timeout: float = 15) -> list:
        """The batches once ``n`` messages are stored and acknowledged."""
        deadline = time.monotonic() + timeout
        while self.messages < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.messages >= n, f"{self.messages} of {n} messages consumed"
        return self.batches

    def dead_letters(self) -> list:
        return [reason for b in self.batches for reason in b.dead_letters]

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
