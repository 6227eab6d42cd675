"""``flask --app wsgi jobs worker`` (the RQ worker) and ``jobs resume`` (jobs left unfinished)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from app.extensions import db
from app.jobs import dispatch
from app.jobs.models import Job, JobState


def register(app) -> None:
    # AppGroup: every command runs in the app's context (also when invoked outside `flask`).
    group = AppGroup("jobs", help="Long work run as jobs (the colour sweep, exports).")

    @group.command("worker")
    @click.option("--burst", is_flag=True, help="stop when the queue is empty")
    def worker(burst: bool) -> None:
        """Work the jobs of JOB_QUEUE_URL's queue (RQ). Each job runs in a work horse forked from
        this process, in its own app context and session; its steps commit as a command's do."""
        from rq import Worker

        app_ = current_app._get_current_object()  # type: ignore[attr-defined]  # a LocalProxy typed as Flask
        queue = dispatch.queue_of(app_)
        if queue is None:
            raise click.ClickException(
                "JOB_QUEUE_URL is not set: without a queue, jobs run in the web process (see README, Jobs)"
            )
        # The work horses are forked from here: no pooled connection may be shared with them.
        db.session.remove()
        db.engine.dispose()
        Worker([queue], connection=queue.connection).work(burst=burst, with_scheduler=True)

    @group.command("resume")
    def resume() -> None:
        """Hand queued jobs, and running ones whose worker is gone, to the queue again (or, with
        no queue configured, run them here): after a restart of the web process or a lost queue.
        Run it only when no worker is working them (a running job would be started twice)."""
        app_ = current_app._get_current_object()  # type: ignore[attr-defined]  # a LocalProxy typed as Flask
        ids = list(
            db.session.scalars(
                select(Job.id).where(Job.state.in_((JobState.QUEUED, JobState.RUNNING))).order_by(Job.id)
            )
        )
        db.session.rollback()
        queued = dispatch.queue_of(app_) is not None
        for job_id in ids:
            if queued:
                dispatch.submit(app_, job_id)
                click.echo(f"job {job_id}: enqueued")
            else:
                click.echo(f"job {job_id}: {dispatch.run_in_process(app_, job_id)}")
        if not ids:
            click.echo("no unfinished jobs")

    app.cli.add_command(group)
