"""``flask --app wsgi telemetry mqtt-subscribe``: the MQTT ingest process (see app/telemetry/mqtt.py)."""
from __future__ import annotations

import logging
import signal
import threading

import click
from flask import current_app


def register(app) -> None:
    group = click.Group("telemetry", help="Sensor telemetry (在线监测).")

    @group.command("mqtt-subscribe")
    @click.option("--url", default=None, help="broker URL, e.g. mqtt://user:pass@host:1883 (default: MQTT_URL)")
    @click.option("--topic", default=None, help="topic filter (default: tanxiang/readings/#)")
    @click.option("--client-id", default=None,
                  help="fixed client id of the persistent session (default: tanxiang-ingest); one per subscriber")
    def mqtt_subscribe(url: str | None, topic: str | None, client_id: str | None) -> None:
        """Consume gateway readings from MQTT until interrupted (SIGINT/SIGTERM)."""
        from app.telemetry.mqtt import Subscriber

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        counts = {"messages": 0, "accepted": 0, "dead_letters": 0}

        def report(topic_: str, outcome) -> None:
            counts["messages"] += 1
            counts["accepted"] += outcome.accepted
            counts["dead_letters"] += 1 if outcome.dead_letter else 0
            if counts["messages"] % 1000 == 0:
                click.echo(f"{counts['messages']} messages, {counts['accepted']} readings, "
                           f"{counts['dead_letters']} dead letters")

        # An explicit worker boundary: the subscriber commits each message's batch itself
        # (app.telemetry.mqtt), outside the request boundary of app.common.tx.
        subscriber = Subscriber(current_app._get_current_object(), url, topic, client_id, on_outcome=report)
        click.echo(f"subscribing to {subscriber.topic} at {subscriber.address.host}:{subscriber.address.port} "
                   f"as {subscriber.client_id}")
        subscriber.run(stop)
        click.echo(f"stopped: {counts['messages']} messages, {counts['accepted']} readings, "
                   f"{counts['dead_letters']} dead letters")

    app.cli.add_command(group)
