"""MQTT ingest: ``flask --app wsgi telemetry mqtt-subscribe``.

Contract for gateways:
- publish with QoS 1 to ``tanxiang/readings/<gateway id>`` (the subscriber takes
  ``tanxiang/readings/#``; the last level is for the operators' eyes only);
- the payload is UTF-8 JSON: ``{"token": "txd_…", "readings": [ … ]}`` with the same readings as
  ``POST /api/v1/readings`` (at most 5,000), or one reading with the token beside its fields.
  The broker has no authentication here, so the device token in the payload is what
  authenticates a message, and it limits the message to its organisation's boxes, as over HTTP.

Delivery: a persistent session (MQTT 3.1.1 clean_session=False, a fixed client id) and QoS 1
subscriptions make the broker keep messages while the subscriber is down. Acknowledgements are
manual and sent only after the database commit, so a crash before the commit means redelivery,
and redelivery is harmless because ingest is idempotent on (box, ts). If the database fails, the
subscriber disconnects without acknowledging and reconnects: the broker redelivers. For messages
to survive a broker restart too, Mosquitto needs ``persistence true``.

A message that cannot be used (not UTF-8, not JSON, no valid token, wrong shape, too large) is
kept whole in the dead-letter table with the reason; a message with some bad readings stores the
good ones and dead-letters the bad ones with their errors. Operators list them at
``GET /api/v1/telemetry/dead-letters``.
"""
from __future__ import annotations

import json
import logging
import threading
from contextlib import ExitStack
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from sqlalchemy.orm import Session

from app.accounts.services import principal_for_token
from app.common.errors import DomainError, Forbidden, Unauthorized
from app.common.timeutil import utcnow
from app.telemetry import services, setting

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    dead_letter: str | None = None  # the reason, when (part of) the message was dead-lettered


def handle_message(session: Session, topic: str, payload: bytes, settings: services.Settings,
                   held: ExitStack | None = None) -> Outcome:
    """Validate and store one message (no commit: the caller commits, then acknowledges)."""
    now = utcnow()

    def dead(reason: str, detail: str, errors=()) -> Outcome:
        services.record_dead_letter(session, topic=topic, payload=payload, reason=reason, detail=detail,
                                    errors=errors, now=now)
        return Outcome(dead_letter=reason)

    try:
        body = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return dead("undecodable", f"not UTF-8: {exc}")
    except ValueError as exc:
        return dead("invalid_json", f"not JSON: {exc}")
    if not isinstance(body, dict):
        return dead("invalid_shape", 'expected an object {"token": …, "readings": [...]}')
    token = body.get("token")
    if not isinstance(token, str) or not token:
        return dead("unauthenticated", "no device token in the payload")
    try:
        actor = principal_for_token(session, token, now)
    except Unauthorized as exc:
        return dead("unauthenticated", exc.detail)
    if "readings" in body:
        items = body["readings"]
    else:
        items = [{k: v for k, v in body.items() if k != "token"}]
    try:
        items = services.readings_of(items, settings.max_batch)
        result = services.ingest(session, actor, items, settings, now, held=held)
    except services.BatchTooLarge as exc:
        return dead("too_large", exc.detail)
    except Forbidden as exc:
        return dead("forbidden", exc.detail)
    except DomainError as exc:
        return dead("invalid_shape", exc.detail)
    if result.rejected_items:
        rejected = [items[r["index"]] for r in result.rejected_items]
        services.record_dead_letter(
            session, topic=topic, payload=json.dumps({"readings": rejected}, ensure_ascii=False, default=str).encode(),
            reason="rejected_items", detail=f"{result.rejected} of {len(items)} readings rejected; the others were stored",
            errors=result.rejected_items, now=now,
        )
    return Outcome(result.accepted, result.duplicates, result.rejected,
                   "rejected_items" if result.rejected_items else None)


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
    return BrokerAddress(parts.hostname or "127.0.0.1", parts.port or (8883 if tls else 1883), tls,
                         unquote(parts.username) if parts.username else None,
                         unquote(parts.password) if parts.password else None)


class Subscriber:
    """Consumes readings from the broker into the database of ``app``."""

    def __init__(self, app, url: str | None = None, topic: str | None = None, client_id: str | None = None,
                 on_outcome: Callable[[str, Outcome], Any] | None = None, reconnect_delay_s: float = 1.0):
        self.app = app
        self.address = parse_url(url or app.config["MQTT_URL"])
        self.topic = topic or setting(app.config, "TELEMETRY_MQTT_TOPIC")
        self.client_id = client_id or setting(app.config, "TELEMETRY_MQTT_CLIENT_ID")
        self.on_outcome = on_outcome
        self.reconnect_delay_s = reconnect_delay_s
        self.settings = services.Settings.from_config(app.config)
        self.subscribed = threading.Event()
        self.client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False,
                             protocol=mqtt.MQTTv311)
        # Acknowledge only after the commit (see the module docstring).
        client.manual_ack_set(True)
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
        log.info("MQTT connected to %s:%s (session present: %s)", self.address.host, self.address.port,
                 flags.session_present)
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self.subscribed.set()

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage):
        from app.extensions import db

        try:
            with self.app.app_context(), ExitStack() as held:
                try:
                    outcome = handle_message(db.session, message.topic, message.payload, self.settings, held)
                    db.session.commit()
                except Exception:
                    db.session.rollback()
                    raise
                finally:
                    db.session.remove()
        except Exception as exc:
            log.exception("storing an MQTT message failed")
            outcome = self._dead_letter_failure(message, exc)
            if outcome is None:
                # The database is unusable: no acknowledgement, and a new connection so that the
                # broker redelivers the message.
                client.disconnect()
                return
        client.ack(message.mid, message.qos)
        if self.on_outcome is not None:
            self.on_outcome(message.topic, outcome)

    def _dead_letter_failure(self, message: mqtt.MQTTMessage, exc: Exception) -> Outcome | None:
        """A message that fails while the database works would fail for ever (a poison message):
        keep it as a dead letter and move on. If even that fails, the database is down."""
        from app.extensions import db

        try:
            with self.app.app_context():
                try:
                    services.record_dead_letter(db.session, topic=message.topic, payload=message.payload,
                                                reason="store_failed", detail=f"{type(exc).__name__}: {exc}")
                    db.session.commit()
                finally:
                    db.session.remove()
        except Exception:
            log.exception("the dead letter could not be stored either")
            return None
        return Outcome(dead_letter="store_failed")

    def run(self, stop: threading.Event | None = None) -> None:
        """Consume until ``stop`` is set (for ever without one), reconnecting after broker restarts."""
        stop = stop or threading.Event()
        client = self.client
        connected = False
        first = True
        while not stop.is_set():
            if not connected:
                try:
                    if first:
                        client.connect(self.address.host, self.address.port, keepalive=30)
                    else:
                        client.reconnect()
                    connected, first = True, False
                except OSError as exc:
                    log.warning("MQTT broker %s:%s unreachable (%s); retrying", self.address.host,
                                self.address.port, exc)
                    stop.wait(self.reconnect_delay_s)
                    continue
            rc = client.loop(timeout=0.2)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                connected = False
                self.subscribed.clear()
                stop.wait(self.reconnect_delay_s)
        if connected:
            client.disconnect()
            # Let the DISCONNECT packet leave before the socket closes.
            deadline = time.monotonic() + 1.0
            while client.want_write() and time.monotonic() < deadline:
                client.loop_write()
