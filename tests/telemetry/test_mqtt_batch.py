"""The subscriber's batch step without a broker: messages of one batch are stored in one
transaction, readings of several messages with one token go through one ingest, rejected readings
are dead-lettered with their own message's topic and indices, and a failing batch falls back to
one transaction per message (a poison message becomes a dead letter, the others get in) before
anything is acknowledged."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from app.extensions import db
from app.telemetry import mqtt as mqtt_module
from app.telemetry.models import DeadLetter
from app.telemetry.mqtt import Message, Subscriber, store_batch
from app.telemetry.services import Settings
from tests.telemetry.builders import make_sensor_box, reading, stored_count, utc_now


def _msg(topic: str, body, mid: int = 0) -> Message:
    return Message(topic, json.dumps(body).encode() if not isinstance(body, bytes) else body, mid, 1)


def test_a_batch_maps_rejected_readings_back_to_their_messages(app, api, world, sensor_box, gateway):
    other_box = make_sensor_box(world)
    now = utc_now()
    ok = lambda m, **over: reading(sensor_box.code, now - timedelta(minutes=m), **over)  # noqa: E731
    messages = [
        _msg("gw/a", {"token": gateway, "readings": [ok(10), ok(9)]}),
        _msg("gw/b", {"token": gateway, "readings": [ok(8), ok(7, inlet_mg_m3=-1), ok(6)]}),
        _msg("gw/c", b"{broken"),
        _msg("gw/d", {"token": gateway, **reading(other_box.code, now - timedelta(minutes=5))}),
        _msg("gw/e", {"token": gateway, "readings": [ok(10)]}),  # a repeat of the first reading
        _msg("gw/f", {"token": "txd_unknown", "readings": [ok(4)]}),
    ]
    with app.app_context():
        outcome = store_batch(db.session, messages, Settings())
        db.session.commit()
        letters = db.session.scalars(select(DeadLetter).order_by(DeadLetter.id)).all()
        rows = [
            (d.topic, d.reason, d.errors, json.loads(d.payload) if d.reason == "rejected_items" else None)
            for d in letters
        ]
        db.session.rollback()
    assert outcome.messages == 6
    assert outcome.dead_letters == [None, "rejected_items", "invalid_json", None, None, "unauthenticated"]
    assert (outcome.accepted, outcome.duplicates, outcome.rejected) == (5, 1, 1)
    assert stored_count(sensor_box.id) == 4 and stored_count(other_box.id) == 1
    rejected = [r for r in rows if r[1] == "rejected_items"]
    # The error names the reading's index within ITS message (1), not within the combined ingest.
    assert rejected == [
        (
            "gw/b",
            "rejected_items",
            [{"index": 1, "box_code": sensor_box.code, "errors": {"inlet_mg_m3": ["must not be negative"]}}],
            {"readings": [ok(7, inlet_mg_m3=-1)]},
        )
    ]
    assert sorted(r[1] for r in rows) == ["invalid_json", "rejected_items", "unauthenticated"]


class FakeClient:
    def __init__(self):
        self.acks: list[tuple[int, int]] = []

    def ack(self, mid, qos):
        self.acks.append((mid, qos))


def test_a_poison_message_is_dead_lettered_and_the_rest_stored_before_any_ack(
    app, world, sensor_box, gateway, monkeypatch
):
    now = utc_now()
    good = [
        _msg("gw/x", {"token": gateway, **reading(sensor_box.code, now - timedelta(minutes=m))}, mid=m) for m in (3, 2)
    ]
    poison = _msg("gw/poison", {"token": gateway, **reading(sensor_box.code, now - timedelta(minutes=1))}, mid=99)
    real = mqtt_module.store_batch

    def store(session, messages, settings):
        if any(m.topic == "gw/poison" for m in messages):
            raise RuntimeError("boom")
        return real(session, messages, settings)

    monkeypatch.setattr(mqtt_module, "store_batch", store)
    batches = []
    sub = Subscriber(app, "mqtt://127.0.0.1:1", "t/#", "c", on_batch=batches.append)
    sub.client = FakeClient()
    sub._pending = [good[0], poison, good[1]]
    assert sub.flush() is True
    assert sub.client.acks == [(3, 1), (99, 1), (2, 1)]  # in order, after the commits
    assert stored_count(sensor_box.id) == 2
    assert batches[0].dead_letters == [None, "store_failed", None]
    with app.app_context():
        assert db.session.scalars(select(DeadLetter.topic)).all() == ["gw/poison"]
        db.session.rollback()


def test_no_ack_when_the_database_is_down(app, world, sensor_box, gateway, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database down")

    monkeypatch.setattr(mqtt_module, "store_batch", broken)
    monkeypatch.setattr(mqtt_module, "record_dead_letter", broken)
    sub = Subscriber(app, "mqtt://127.0.0.1:1", "t/#", "c")
    sub.client = FakeClient()
    sub._pending = [_msg("gw/x", {"token": gateway, **reading(sensor_box.code, utc_now())}, mid=m) for m in (1, 2)]
    assert sub.flush() is False
    assert sub.client.acks == []  # the broker will redeliver both
    assert stored_count(sensor_box.id) == 0
