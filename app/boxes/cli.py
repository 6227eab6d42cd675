"""``flask --app wsgi boxes refresh-colours`` (and ``boxes sweep [--queue]``): the periodic sweep of
time-driven colour changes; with ``--queue`` it runs as a job (app/jobs)."""

from __future__ import annotations

import time

import click

from app.boxes.services import refresh_due_chunk
from app.common.timeutil import utcnow
from app.common.tx import cli_transaction
from app.common.wiring import current_wiring
from app.extensions import db


def _sweep_once(chunk: int) -> int:
    """The boxes due now, a chunk per transaction: how many were evaluated."""
    n, now = 0, utcnow()
    while True:
        with cli_transaction(db.session()):
            done = refresh_due_chunk(db.session(), now, chunk, unstored=True)
        n += done
        if done < chunk:
            return n


def register(app) -> None:
    group = click.Group("boxes", help="Carbon boxes.")

    @group.command("refresh-colours")
    @click.option("--every", type=int, default=0, help="repeat every N seconds (0: once)")
    @click.option("--chunk", type=int, default=500, show_default=True, help="boxes per transaction")
    def refresh_colours(every: int, chunk: int) -> None:
        """Re-evaluate boxes whose colour can have changed with time (saturation, due dates,
        silence), and boxes without a stored evaluation: only those, a chunk per transaction."""
        while True:
            click.echo(f"{_sweep_once(chunk)} boxes re-evaluated")
            if not every:
                return
            time.sleep(every)

    @group.command("sweep")
    @click.option("--chunk", type=int, default=500, show_default=True, help="boxes per transaction")
    @click.option("--queue", "queued", is_flag=True, help="run as a job (on JOB_QUEUE_URL's queue when set)")
    def sweep(chunk: int, queued: bool) -> None:
        """The colour sweep once (as ``refresh-colours``); with ``--queue``, asked for as a
        ``colour_sweep`` job: enqueued for ``flask jobs worker``, or, with no queue configured,
        run here as a job (its progress and outcome recorded, visible at /jobs/<id>)."""
        if not queued:
            click.echo(f"{_sweep_once(chunk)} boxes re-evaluated")
            return
        request = current_wiring().cli_job_request
        if request is None:
            raise click.ClickException("this app runs no jobs (no job kinds wired)")
        job_id, outcome = request("colour_sweep", {"chunk": chunk})
        click.echo(f"job {job_id}: {outcome or 'queued'}")
        if outcome == "failed":
            raise SystemExit(1)

    app.cli.add_command(group)
