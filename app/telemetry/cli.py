"""``flask --app wsgi telemetry``: ``mqtt-subscribe``, the MQTT ingest process (see
app/telemetry/mqtt.py); ``partitions`` and ``retention``, the readings' monthly partitions and
the retention policy of raw readings (app/telemetry/services/partitions.py, app/data/retention.yaml)."""

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
    @click.option(
        "--client-id",
        default=None,
        help="fixed client id of the persistent session (default: tanxiang-ingest); one per subscriber",
    )
    @click.option(
        "--batch-messages",
        type=click.IntRange(min=1),
        default=None,
        help="store at most this many messages per transaction (default 500; keep it at most the "
        "broker's max_inflight_messages)",
    )
    @click.option(
        "--batch-ms",
        type=click.FloatRange(min=0),
        default=None,
        help="commit a batch at most this many ms after its first message (default 100)",
    )
    @click.option(
        "--batch-bytes",
        type=click.IntRange(min=1),
        default=None,
        help="store at most this many payload bytes per transaction (default 4 MiB)",
    )
    def mqtt_subscribe(
        url: str | None,
        topic: str | None,
        client_id: str | None,
        batch_messages: int | None,
        batch_ms: float | None,
        batch_bytes: int | None,
    ) -> None:
        """Consume gateway readings from MQTT until interrupted (SIGINT/SIGTERM)."""
        from app.telemetry import mqtt

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        counts = {"messages": 0, "accepted": 0, "dead_letters": 0}

        def report(outcome) -> None:
            before = counts["messages"]
            counts["messages"] += outcome.messages
            counts["accepted"] += outcome.accepted
            counts["dead_letters"] += sum(1 for reason in outcome.dead_letters if reason)
            if counts["messages"] // 1000 != before // 1000:
                click.echo(
                    f"{counts['messages']} messages, {counts['accepted']} readings, "
                    f"{counts['dead_letters']} dead letters"
                )

        # An explicit worker boundary: the subscriber commits each batch of messages itself
        # (app.telemetry.mqtt), outside the request boundary of app.common.tx.
        flask_app = current_app._get_current_object()  # type: ignore[attr-defined]  # current_app: a LocalProxy typed as Flask
        subscriber = mqtt.Subscriber(
            flask_app,
            url,
            topic,
            client_id,
            on_batch=report,
            batch_messages=batch_messages or mqtt.BATCH_MESSAGES,
            batch_ms=mqtt.BATCH_MS if batch_ms is None else batch_ms,
            batch_bytes=batch_bytes or mqtt.BATCH_BYTES,
        )
        click.echo(
            f"subscribing to {subscriber.topic} at {subscriber.address.host}:{subscriber.address.port} "
            f"as {subscriber.client_id}"
        )
        subscriber.run(stop)
        click.echo(
            f"stopped: {counts['messages']} messages, {counts['accepted']} readings, "
            f"{counts['dead_letters']} dead letters"
        )

    @group.command("partitions")
    @click.option(
        "--ahead",
        type=click.IntRange(min=0, max=120),
        default=None,
        help="months after the current one to create (default: retention.yaml partitions_ahead)",
    )
    def partitions_command(ahead: int | None) -> None:
        """Create the monthly partitions of the readings ahead (PostgreSQL; run it monthly)."""
        from app.common.timeutil import utcnow
        from app.common.tx import cli_transaction
        from app.common.wiring import wiring_of
        from app.extensions import db
        from app.telemetry.services import partitions

        with cli_transaction(db.session()) as session:
            if not partitions.is_partitioned(session):
                click.echo("sensor_readings is not partitioned here (SQLite, or not migrated): nothing to do")
                return
            months = wiring_of(session).retention().partitions_ahead if ahead is None else ahead
            created = partitions.ensure_partitions(session, utcnow(), months)
            names = [p.name for p in partitions.partitions(session)]
        click.echo(f"created {len(created)}: {', '.join(created) or '-'}; partitions now: {', '.join(names)}")

    @group.command("retention")
    @click.option(
        "--keep-months",
        type=click.IntRange(min=1),
        default=None,
        help="whole months of raw readings to keep before the current one (default: retention.yaml)",
    )
    def retention_command(keep_months: int | None) -> None:
        """Remove raw readings older than the retention policy allows (hourly roll-ups are kept)."""
        from app.common.timeutil import utcnow
        from app.common.tx import cli_transaction
        from app.common.wiring import wiring_of
        from app.extensions import db
        from app.telemetry.services import partitions

        with cli_transaction(db.session()) as session:
            keep = wiring_of(session).retention().keep_months if keep_months is None else keep_months
            result = partitions.apply_retention(session, utcnow(), keep)
        click.echo(
            f"raw readings before {result.cutoff.isoformat()} removed: "
            f"{len(result.dropped)} partitions dropped ({', '.join(result.dropped) or '-'}), "
            f"{result.deleted} rows deleted; hourly roll-ups kept"
        )

    app.cli.add_command(group)
