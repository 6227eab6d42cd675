"""``flask --app wsgi boxes refresh-colours``: the periodic sweep of time-driven colour changes."""

from __future__ import annotations

import time

import click

from app.boxes.services import refresh_due_chunk
from app.common.timeutil import utcnow
from app.common.tx import cli_transaction
from app.extensions import db


def register(app) -> None:
    group = click.Group("boxes", help="Carbon boxes.")

    @group.command("refresh-colours")
    @click.option("--every", type=int, default=0, help="repeat every N seconds (0: once)")
    @click.option("--chunk", type=int, default=500, show_default=True, help="boxes per transaction")
    def refresh_colours(every: int, chunk: int) -> None:
        """Re-evaluate boxes whose colour can have changed with time (saturation, due dates,
        silence), and boxes without a stored evaluation: only those, a chunk per transaction."""
        while True:
            n, now = 0, utcnow()
            while True:
                with cli_transaction(db.session()):
                    done = refresh_due_chunk(db.session(), now, chunk, unstored=True)
                n += done
                if done < chunk:
                    break
            click.echo(f"{n} boxes re-evaluated")
            if not every:
                return
            time.sleep(every)

    app.cli.add_command(group)
