"""Zero loss under a burst: 12,000 QoS 1 readings published as fast as a paho client can (10,000
messages of one reading, 200 of ten) to a private Mosquitto running deploy/mosquitto.conf, while
the real subscriber process (``flask --app wsgi telemetry mqtt-subscribe``) is SIGKILLed and
started again and the broker is restarted. Every reading ends up stored exactly once, the unusable
messages are dead letters, and the broker dropped nothing.

Before deploy/mosquitto.conf and the batched subscriber, 2,000 messages in a burst lost about
1,000 (Mosquitto's default max_queued_messages)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import select

from app.extensions import db
from app.telemetry.models import DeadLetter, SensorReading
from tests.telemetry.builders import BASE, make_sensor_box, stored_count, utc_now
from tests.telemetry.mosquitto_private import PrivateBroker

pytestmark = pytest.mark.mqtt
ROOT = Path(__file__).resolve().parents[2]  # the repository (this file is tests/telemetry/…)
SINGLES = 10_000  # messages of one reading
MULTI, PER_MULTI = 200, 10  # messages of ten readings
GARBAGE = [f"{{not json {n}".encode() for n in range(5)]


def _flask() -> list[str]:
    flask = Path(sys.executable).with_name("flask")
    return [str(flask)] if flask.exists() else [sys.executable, "-m", "flask"]


class SubscriberProcess:
    """The CLI subscriber as its own process, with the test's database."""

    def __init__(self, app, broker: PrivateBroker, topic: str, client_id: str, folder: Path):
        self.args = [
            *_flask(),
            "--app",
            "wsgi",
            "telemetry",
            "mqtt-subscribe",
            "--url",
            broker.url,
            "--topic",
            topic,
            "--client-id",
            client_id,
        ]
        self.env = {
            **os.environ,
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "SECRET_KEY": "burst-" + uuid.uuid4().hex,
            "INSTANCE_PATH": str(folder / "instance"),
            "PYTHONUNBUFFERED": "1",
        }
        self.folder = folder
        self.runs = 0
        self.process: subprocess.Popen | None = None

    def start(self, ready: str = "MQTT subscribed") -> None:
        """``ready``: the log line to wait for; a resumed session is ready once connected (its
        subscription exists, and the broker sends the SUBACK after the queued messages)."""
        self.runs += 1
        self.log = self.folder / f"subscriber-{self.runs}.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while ready not in self.log.read_text(errors="replace"):
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "the subscriber did not subscribe: " + self.log.read_text()
            time.sleep(0.05)

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no flush, no acknowledgement, no goodbye
        self.process.wait(10)

    def terminate(self) -> int:
        self.process.terminate()
        return self.process.wait(20)

    def cleanup(self) -> None:
        """A failed test leaves no subscriber behind."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class Publisher(threading.Thread):
    """A gateway publishing everything at once with QoS 1; paho resends what the broker did not
    acknowledge after a reconnect."""

    def __init__(self, port: int, topic: str, payloads: list[bytes]):
        super().__init__(daemon=True)
        self.port, self.topic, self.payloads = port, topic, payloads
        self.infos: list[mqtt.MQTTMessageInfo] = []
        self.error: BaseException | None = None
        self.seconds = 0.0

    def run(self) -> None:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"gw-burst-{uuid.uuid4().hex[:8]}")
        client.reconnect_delay_set(min_delay=0.1, max_delay=0.5)
        try:
            client.connect("127.0.0.1", self.port)
            client.loop_start()
            started = time.monotonic()
            for payload in self.payloads:
                self.infos.append(client.publish(self.topic, payload, qos=1))
            deadline = time.monotonic() + 60
            while not all(i.is_published() for i in self.infos) and time.monotonic() < deadline:
                time.sleep(0.02)
            self.seconds = time.monotonic() - started
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            client.loop_stop()
            client.disconnect()

    @property
    def acknowledged(self) -> int:
        return sum(1 for i in list(self.infos) if i.is_published())


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _naive_utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def test_burst_with_subscriber_kill_and_broker_restart_loses_nothing(app, world, gateway, tmp_path):
    (tmp_path / "broker").mkdir()
    broker = PrivateBroker(tmp_path / "broker")
    broker.start()
    subscriber: SubscriberProcess | None = None
    try:
        boxes = [make_sensor_box(world), make_sensor_box(world)]
        run = uuid.uuid4().hex[:10]
        topic, client_id = f"tanxiang-test/{run}/readings/gw-1", f"tanxiang-burst-{run}"
        start = utc_now() - timedelta(seconds=1)
        total = SINGLES + MULTI * PER_MULTI
        expected = {box.id: set() for box in boxes}

        counter = iter(range(total))

        def one() -> dict:
            n = next(counter)  # in publishing order, so the readings come in time order, as from gateways
            box = boxes[n % 2]
            ts = start - timedelta(seconds=total - n // 2)
            expected[box.id].add(_naive_utc(ts))
            return {"box_code": box.code, "ts": ts.isoformat(), **BASE}

        def single() -> bytes:
            return json.dumps({"token": gateway, **one()}).encode()

        def multi() -> bytes:
            return json.dumps({"token": gateway, "readings": [one() for _ in range(PER_MULTI)]}).encode()

        # The ten-reading messages and the garbage in the middle of the singles.
        half = SINGLES // 2
        payloads = (
            [single() for _ in range(half)]
            + [multi() for _ in range(MULTI // 2)]
            + GARBAGE
            + [multi() for _ in range(MULTI - MULTI // 2)]
            + [single() for _ in range(SINGLES - half)]
        )
        assert sum(len(v) for v in expected.values()) == total

        first, second = payloads[:6_000], payloads[6_000:]

        subscriber = SubscriberProcess(app, broker, topic.rsplit("/", 1)[0] + "/#", client_id, tmp_path)
        subscriber.start()  # creates the persistent session before anything is published
        publisher = Publisher(broker.port, topic, first)
        publisher.start()

        # The subscriber dies in the middle of the stream, while the burst is queued for it.
        _wait(lambda: stored_count() >= 1_500, 40, "the subscriber stored nothing")
        subscriber.kill()
        at_kill = stored_count()
        assert at_kill < total
        subscriber.start("session present: True")  # the same client id resumes the session and its queue

        # Then the broker restarts under the running (storing) subscriber and a publishing gateway.
        _wait(lambda: stored_count() >= at_kill + 1_000, 40, "the restarted subscriber stored nothing")
        late = Publisher(broker.port, topic, second)
        late.start()
        _wait(lambda: late.acknowledged >= 1_000, 30, "the second gateway published nothing")
        acknowledged_before_restart = late.acknowledged
        broker.restart()
        at_restart = stored_count()
        assert at_kill < at_restart < total
        assert acknowledged_before_restart < len(second), "the restart came after the publishing"

        for gateway_ in (publisher, late):
            gateway_.join(70)
            assert gateway_.error is None, gateway_.error
            assert gateway_.acknowledged == len(gateway_.payloads), "the broker did not acknowledge every message"
        _wait(lambda: stored_count() >= total, 60, f"{stored_count()} of {total} readings stored")
        time.sleep(0.5)  # nothing more arrives (no reading stored twice later either)
        assert subscriber.terminate() == 0, subscriber.log.read_text()[-3000:]

        with app.app_context():
            assert stored_count() == total
            for box in boxes:
                rows = (
                    db.session.execute(select(SensorReading.ts).where(SensorReading.box_id == box.id)).scalars().all()
                )
                stored = [_naive_utc(ts) for ts in rows]
                assert len(stored) == len(set(stored)), "a (box, ts) is stored twice"
                assert set(stored) == expected[box.id]
            letters = db.session.execute(select(DeadLetter.reason, DeadLetter.payload)).all()
            db.session.rollback()
        # Every garbage message is a dead letter (a redelivered one may be there twice), nothing else is.
        assert {reason for reason, _ in letters} == {"invalid_json"}
        assert {payload for _, payload in letters} == {g.decode() for g in GARBAGE}
        log = broker.log_text()
        assert "dropped" not in log.lower(), log[-3000:]
        print(
            f"\nburst: {len(payloads)} messages / {total} readings; {len(first)} published in {publisher.seconds:.1f} s, "
            f"{len(second)} in {late.seconds:.1f} s; subscriber killed at {at_kill} readings stored, broker "
            f"restarted at {at_restart} stored and {acknowledged_before_restart} of the second gateway's acknowledged"
        )
    finally:
        if subscriber is not None:
            subscriber.cleanup()
        broker.stop()
