"""``flask --app wsgi boxes refresh-colours`` (and ``boxes sweep [--queue]``): the periodic sweep of
time-driven colour changes; with ``--queue`` it runs as a job (app/jobs)."""

from __future__ import annotations

import gc
import multiprocessing
import os
import time
from datetime import datetime

import click
from flask import Flask, current_app

from app.boxes.services.sweep import due_ids, sweep_ids
from app.common.timeutil import utcnow
from app.common.tx import cli_transaction
from app.common.wiring import current_wiring, wiring_of
from app.extensions import db


def _sweep_chunks(chunks: list[list[int]], now: datetime) -> int:
    """The boxes of ``chunks`` (ids listed by ``due_ids``), a chunk per transaction: how many
    were evaluated."""
    rules = wiring_of(db.session()).colour_rules()
    n = 0
    for ids in chunks:
        with cli_transaction(db.session()):
            n += sweep_ids(db.session(), now, ids, rules)
    return n


def _worker(app: Flask, chunks: list[list[int]], now: datetime, part: tuple[int, int], results) -> None:
    """One worker process's share of a sweep: forked from the command, the app with it (a fork's
    copy of the process: nothing is pickled but the count or the failure it sends back)."""
    try:
        with app.app_context():
            db.engine.dispose(close=False)  # the parent's pooled connections stay the parent's
            try:
                results.put((part[1], _sweep_chunks(chunks, now), None))
            finally:
                db.session.remove()
    except BaseException as exc:
        results.put((part[1], 0, f"{type(exc).__name__}: {exc}"))
        raise


def default_workers() -> int:
    """Worker processes of a sweep: one per core on PostgreSQL (the engine's Python is most of a
    box's time, and one process has one core), one on SQLite (a single writer)."""
    return 1 if db.engine.dialect.name == "sqlite" else max(1, min(os.cpu_count() or 1, 4))


def _sweep_once(chunk: int, workers: int | None = None) -> int:
    """The boxes due now, a chunk per transaction, shared by ``workers`` processes (each its own
    connection and transactions; the due boxes listed once, cut into chunks of neighbouring ids
    dealt to the workers in turn): how many were evaluated.

    The objects alive before the sweep (the app, its modules, its metadata: some 200,000) are
    frozen out of the garbage collector meanwhile: each full collection the sweep's allocations
    set off went through all of them (a third of the engine's time at 2,000-box chunks), and the
    forked workers share their pages instead of copying them."""
    now = utcnow()
    workers = workers or default_workers()
    gc.collect()
    gc.freeze()
    try:
        with cli_transaction(db.session()):
            # In id order: a chunk's rows are then neighbours on the table's pages and in its
            # primary key (a chunk of 1,000 at 10x: about half the UPDATE's time of 1,000 boxes
            # taken at random), and a sweep does every box listed before it ends anyway.
            ids = sorted(due_ids(db.session(), now, unstored=True))
        chunks = [ids[i : i + chunk] for i in range(0, len(ids), chunk)]
        workers = max(1, min(workers, len(chunks)))
        if workers <= 1:
            return _sweep_chunks(chunks, now)
        db.session.remove()
        db.engine.dispose()  # no connection crosses the fork
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        context = multiprocessing.get_context("fork")
        results = context.SimpleQueue()
        processes = [
            context.Process(
                target=_worker, args=(app, chunks[k::workers], now, (workers, k), results), name=f"colour-sweep-{k}"
            )
            for k in range(workers)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        outcomes = [results.get() for _ in range((results.empty() is False and workers) or 0)]
        failures = [f"worker {k}: {error}" for k, _, error in outcomes if error]
        failures += [f"{p.name} exited with {p.exitcode}" for p in processes if p.exitcode and not failures]
        if failures or len(outcomes) < workers:
            raise click.ClickException("; ".join(failures) or "a sweep worker sent no result")
        return sum(n for _, n, _ in outcomes)
    finally:
        gc.unfreeze()


def register(app) -> None:
    group = click.Group("boxes", help="Carbon boxes.")

    @group.command("refresh-colours")
    @click.option("--every", type=int, default=0, help="repeat every N seconds (0: once)")
    @click.option("--chunk", type=int, default=1000, show_default=True, help="boxes per transaction")
    @click.option("--workers", type=int, default=0, help="processes sharing the boxes (0: one a core on PostgreSQL)")
    def refresh_colours(every: int, chunk: int, workers: int) -> None:
        """Re-evaluate boxes whose colour can have changed with time (saturation, due dates,
        silence), and boxes without a stored evaluation: only those, a chunk per transaction."""
        while True:
            click.echo(f"{_sweep_once(chunk, workers)} boxes re-evaluated")
            if not every:
                return
            time.sleep(every)

    @group.command("sweep")
    @click.option("--chunk", type=int, default=1000, show_default=True, help="boxes per transaction")
    @click.option("--workers", type=int, default=0, help="processes sharing the boxes (0: one a core on PostgreSQL)")
    @click.option("--queue", "queued", is_flag=True, help="run as a job (on JOB_QUEUE_URL's queue when set)")
    def sweep(chunk: int, workers: int, queued: bool) -> None:
        """The colour sweep once (as ``refresh-colours``); with ``--queue``, asked for as a
        ``colour_sweep`` job: enqueued for ``flask jobs worker``, or, with no queue configured,
        run here as a job (its progress and outcome recorded, visible at /jobs/<id>)."""
        if not queued:
            click.echo(f"{_sweep_once(chunk, workers)} boxes re-evaluated")
            return
        request = current_wiring().cli_job_request
        if request is None:
            raise click.ClickException("this app runs no jobs (no job kinds wired)")
        job_id, outcome = request("colour_sweep", {"chunk": chunk})
        click.echo(f"job {job_id}: {outcome or 'queued'}")
        if outcome == "failed":
            raise SystemExit(1)

    app.cli.add_command(group)
