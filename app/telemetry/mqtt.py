"""MQTT ingest: ``flask --app wsgi telemetry mqtt-subscribe``.

Contract for gateways:
- publish with QoS 1 to ``tanxiang/readings/<gateway id>`` (the subscriber takes
  ``tanxiang/readings/#``; the last level is for the operators' eyes only);
- the payload is UTF-8 JSON: ``{"token": "txd_…", "readings": [ … ]}`` with the same readings as
  ``POST /api/v1/readings`` (at most 5,000), or one reading with the token beside its fields.
  The broker has no authentication here, so the device token in the payload is what
  authenticates a message, and it limits the message to its organisation's boxes, as over HTTP.

Delivery (zero loss of what the broker acknowledged to a gateway):
- the broker runs with ``deploy/mosquitto.conf``: persistence on, no per-client queue limit that
  a burst can reach (Mosquitto's default of 1,000 queued messages silently dropped the rest);
- a persistent session (MQTT 3.1.1 clean_session=False, a fixed client id) and a QoS 1
  subscription make the broker keep messages while the subscriber is down;
- messages are collected in batches (up to ``batch_messages`` messages, ``batch_bytes`` bytes of
  payload or ``batch_ms`` milliseconds after the first), stored in ONE transaction, committed, and
  only then acknowledged one by one, in the order received (paho's manual ack). A crash or a
  broker restart before the commit means redelivery, and redelivery is harmless because ingest is
  idempotent on (box, ts). A batch never spans two connections: on a disconnect the uncommitted
  batch is dropped (the broker redelivers it) and message ids of an old connection are never
  acknowledged on a new one;
- if the database fails, the subscriber disconnects without acknowledging and reconnects: the
  broker redelivers.

A message that cannot be used (not UTF-8, not JSON, no valid token, wrong shape, too large) is
kept whole in the dead-letter table with the reason, in the same transaction as the good ones; a
message with some bad readings stores the good ones and dead-letters the bad ones with their
errors (indices within that message). If a whole batch fails unexpectedly, its messages are
retried one per transaction so that a poison message becomes a ``store_failed`` dead letter
instead of blocking the others. Operators list dead letters at
``GET /api/v1/telemetry/dead-letters``. A redelivered dead letter may be stored twice.

A little over ~400 lines because the subscriber's contract, batching and acknowledgement after commit are one flow.
"""

from __future__ import annotations

import bisect
import json
import logging
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from sqlalchemy.orm import Session

from app.accounts.services import principal_for_token
from app.audit.recorder import set_context as set_audit_context
from app.common.errors import DomainError, Forbidden, Unauthorized
from app.common.timeutil import utcnow
from app.telemetry import setting
from app.telemetry.services import (
    BatchTooLarge,
    Settings,
    ingest,
    readings_of,
    record_dead_letter,
    sqlite_writer_lock,
)

log = logging.getLogger(__name__)

# Defaults of a batch (CLI options --batch-messages, --batch-ms, --batch-bytes). The broker's
# max_inflight_messages (deploy/mosquitto.conf: 1000) must be at least batch_messages, or a batch
# never fills and waits for batch_ms every time.
BATCH_MESSAGES = 500
BATCH_MS = 100
BATCH_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 1


@dataclass
class Outcome:
    """What one batch did: totals over its messages, and per message its dead-letter reason or None."""

    messages: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    dead_letters: list[str | None] = field(default_factory=list)


def store_batch(session: Session, messages: list[Message], settings: Settings) -> Outcome:
    """Validate and store the messages of one batch (no commit: the caller commits, then
    acknowledges). The readings of all messages with the same token go to one ingest call."""
    now = utcnow()
    reasons: list[str | None] = [None] * len(messages)
    outcome = Outcome(messages=len(messages), dead_letters=reasons)

    def dead(i: int, reason: str, detail: str, errors=()) -> None:
        record_dead_letter(
            session,
            topic=messages[i].topic,
            payload=messages[i].payload,
            reason=reason,
            detail=detail,
            errors=errors,
            now=now,
        )
        reasons[i] = reason

    # token -> [(message index, its readings)], in arrival order
    groups: dict[str, list[tuple[int, list]]] = {}
    for i, message in enumerate(messages):
        try:
            body = json.loads(message.payload.decode("utf-8"))
        except UnicodeDecodeError as exc:
            dead(i, "undecodable", f"not UTF-8: {exc}")
            continue
        except ValueError as exc:
            dead(i, "invalid_json", f"not JSON: {exc}")
            continue
        except RecursionError:  # a hostile payload nesting thousands deep must not stop the subscriber
            dead(i, "invalid_json", "not JSON: the document nests too deeply")
            continue
        if not isinstance(body, dict):
            dead(i, "invalid_shape", 'expected an object {"token": …, "readings": [...]}')
            continue
        token = body.get("token")
        if not isinstance(token, str) or not token:
            dead(i, "unauthenticated", "no device token in the payload")
            continue
        items = body["readings"] if "readings" in body else [{k: v for k, v in body.items() if k != "token"}]
        try:
            items = readings_of(items, settings.max_batch)
        except BatchTooLarge as exc:
            dead(i, "too_large", exc.detail)
            continue
        except DomainError as exc:
            dead(i, "invalid_shape", exc.detail)
            continue
        groups.setdefault(token, []).append((i, items))

    for token, members in groups.items():
        try:
            actor = principal_for_token(session, token, now)
        except Unauthorized as exc:
            for i, _ in members:
                dead(i, "unauthenticated", exc.detail)
            continue
        combined: list = []
        offsets: list[int] = []
        for _, items in members:
            offsets.append(len(combined))
            combined.extend(items)
        try:
            result = ingest(session, actor, combined, settings, now)
        except Forbidden as exc:
            for i, _ in members:
                dead(i, "forbidden", exc.detail)
            continue
        except DomainError as exc:
            for i, _ in members:
                dead(i, "invalid_shape", exc.detail)
            continue
        outcome.accepted += result.accepted
        outcome.duplicates += result.duplicates
        outcome.rejected += result.rejected
        # The rejected readings go back to their own messages, with indices within them.
        per_member: dict[int, list[dict[str, Any]]] = {}
        for item in result.rejected_items:
            k = bisect.bisect_right(offsets, item["index"]) - 1
            per_member.setdefault(k, []).append({**item, "index": item["index"] - offsets[k]})
        for k, errors in per_member.items():
            i, items = members[k]
            rejected = [items[e["index"]] for e in errors]
            record_dead_letter(
                session,
                topic=messages[i].topic,
                payload=json.dumps({"readings": rejected}, ensure_ascii=False, default=str).encode(),
                reason="rejected_items",
                detail=f"{len(errors)} of {len(items)} readings rejected; the others were stored",
                errors=errors,
                now=now,
            )
            reasons[i] = "rejected_items"
    return outcome


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


def parse_url(url: str) -> BrokerAddress:
    parts = urlsplit(url if "://" in url else "mqtt://" + url)
    tls = parts.scheme in ("mqtts", "ssl")
    return BrokerAddress(
        parts.hostname or "127.0.0.1",
        parts.port or (8883 if tls else 1883),
        tls,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
    )


class Subscriber:
    """Consumes readings from the broker into the database of ``app``, a batch per transaction."""

    def __init__(
        self,
        app,
        url: str | None = None,
        topic: str | None = None,
        client_id: str | None = None,
        on_batch: Callable[[Outcome], Any] | None = None,
        reconnect_delay_s: float = 1.0,
        batch_messages: int = BATCH_MESSAGES,
        batch_ms: float = BATCH_MS,
        batch_bytes: int = BATCH_BYTES,
    ):
        self.app = app
        self.address = parse_url(url or app.config["MQTT_URL"])
        self.topic = topic or setting(app.config, "TELEMETRY_MQTT_TOPIC")
        self.client_id = client_id or setting(app.config, "TELEMETRY_MQTT_CLIENT_ID")
        self.on_batch = on_batch
        self.reconnect_delay_s = reconnect_delay_s
        self.batch_messages = max(1, int(batch_messages))
        self.batch_s = max(0.0, float(batch_ms)) / 1000.0
        self.batch_bytes = max(1, int(batch_bytes))
        self.settings = Settings.from_config(app.config)
        self.subscribed = threading.Event()
        # The batch being collected: messages of the current connection only.
        self._pending: list[Message] = []
        self._pending_bytes = 0
        self._deadline = 0.0
        self.client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        # Acknowledge only after the commit (see the module docstring).
        if self.address.username:
            client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("MQTT connection refused: %s", reason_code)
            return
        log.info(
            "MQTT connected to %s:%s (session present: %s)", self.address.host, self.address.port, flags.session_present
        )
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        log.info("MQTT subscribed to %s as %s", self.topic, self.client_id)
        self.subscribed.set()

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage):
        if not self._pending:
            self._deadline = time.monotonic() + self.batch_s
        self._pending.append(Message(message.topic, message.payload, message.mid, message.qos))
        self._pending_bytes += len(message.payload)

    def _batch_due(self) -> bool:
        return bool(self._pending) and (
            len(self._pending) >= self.batch_messages
            or self._pending_bytes >= self.batch_bytes
            or time.monotonic() >= self._deadline
        )

    def _drop_pending(self) -> None:
        if self._pending:
            log.info("connection lost: %d uncommitted messages left to the broker's redelivery", len(self._pending))
        self._pending, self._pending_bytes = [], 0

    def flush(self) -> bool:
        """Store the collected batch, commit, then acknowledge its messages in order. False when
        the database is unusable (nothing acknowledged: the caller reconnects for redelivery)."""
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        if not batch:
            return True
        outcome = self._store(batch)
        if outcome is None:
            outcome = self._store_one_by_one(batch)
            if outcome is None:
                return False
        for message in batch:
            self.client.ack(message.mid, message.qos)
        if self.on_batch is not None:
            self.on_batch(outcome)
        return True

    def _store(self, batch: list[Message]) -> Outcome | None:
        from app.extensions import db

        try:
            with self.app.app_context(), ExitStack() as held:
                try:
                    # One SQLite writer at a time, held until after the commit (services.ingest).
                    held.enter_context(sqlite_writer_lock(db.session()))
                    outcome = store_batch(db.session(), batch, self.settings)
                    set_audit_context(db.session(), "mqtt", actor="mqtt-subscriber")
                    db.session.commit()
                    return outcome
                except Exception:
                    db.session.rollback()
                    raise
                finally:
                    db.session.remove()
        except Exception:
            log.exception("storing a batch of %d MQTT messages failed", len(batch))
            return None

    def _store_one_by_one(self, batch: list[Message]) -> Outcome | None:
        """After a failed batch: each message in its own transaction, so that a poison message
        (one that fails while the database works) becomes a dead letter and the others get in."""
        total = Outcome()
        for message in batch:
            outcome = self._store([message]) if len(batch) > 1 else None
            if outcome is None:
                outcome = self._dead_letter_failure(message)
                if outcome is None:
                    return None
            total.messages += 1
            total.accepted += outcome.accepted
            total.duplicates += outcome.duplicates
            total.rejected += outcome.rejected
            total.dead_letters.extend(outcome.dead_letters)
        return total

    def _dead_letter_failure(self, message: Message) -> Outcome | None:
        """Keep a message that cannot be stored as a dead letter; if even that fails, the database
        is down (None)."""
        from app.extensions import db

        try:
            with self.app.app_context():
                try:
                    record_dead_letter(
                        db.session(),
                        topic=message.topic,
                        payload=message.payload,
                        reason="store_failed",
                        detail="storing it failed (see the subscriber's log)",
                    )
                    set_audit_context(db.session(), "mqtt", actor="mqtt-subscriber")
                    db.session.commit()
                finally:
                    db.session.remove()
        except Exception:
            log.exception("the dead letter could not be stored either")
            return None
        return Outcome(messages=1, dead_letters=["store_failed"])

    def run(self, stop: threading.Event | None = None) -> None:
        """Consume until ``stop`` is set (for ever without one), reconnecting after broker restarts."""
        stop = stop or threading.Event()
        client = self.client
        connected = False
        first = True
        while not stop.is_set():
            if not connected:
                self._drop_pending()
                try:
                    if first:
                        client.connect(self.address.host, self.address.port, keepalive=30)
                    else:
                        client.reconnect()
                    connected, first = True, False
                except OSError as exc:
                    log.warning(
                        "MQTT broker %s:%s unreachable (%s); retrying", self.address.host, self.address.port, exc
                    )
                    stop.wait(self.reconnect_delay_s)
                    continue
            timeout = 0.2
            if self._pending:
                timeout = min(timeout, max(0.0, self._deadline - time.monotonic()))
            rc = client.loop(timeout=timeout)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                connected = False
                self.subscribed.clear()
                self._drop_pending()
                stop.wait(self.reconnect_delay_s)
                continue
            if self._batch_due() and not self.flush():
                # The database is unusable: no acknowledgement, and a new connection so that the
                # broker redelivers the messages.
                client.disconnect()
                connected = False
                self.subscribed.clear()
                stop.wait(self.reconnect_delay_s)
        if connected:
            # Stopping (SIGTERM): what was received is stored and acknowledged before leaving.
            if self._pending:
                self.flush()
            client.disconnect()
            # Let the acknowledgements and the DISCONNECT packet leave before the socket closes.
            deadline = time.monotonic() + 2.0
            while client.want_write() and time.monotonic() < deadline:
                if client.loop_write() != mqtt.MQTT_ERR_SUCCESS:
                    break
