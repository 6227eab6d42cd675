"""``flask --app wsgi statistics verify`` and ``statistics rebuild``: the roll-ups against the raw records."""

from __future__ import annotations

import sys

import click

from app.common.tx import cli_transaction


def register(app) -> None:
    group = click.Group("statistics", help="Statistics roll-ups (汇总表): verify and rebuild.")

    @group.command("verify")
    @click.option("--limit", default=200, show_default=True, help="differences printed at most")
    def verify(limit: int) -> None:
        """Compare every roll-up row with its recomputation from the raw records; exit 1 on a difference."""
        from app.extensions import db
        from app.statistics.services import rollups

        problems = rollups.verify(db.session())
        db.session.rollback()  # read only
        for line in problems[:limit]:
            click.echo(line)
        if len(problems) > limit:
            click.echo(f"… and {len(problems) - limit} more")
        if problems:
            click.echo(f"{len(problems)} roll-up row(s) differ from the raw records", err=True)
            sys.exit(1)
        click.echo("roll-ups equal their recomputation from the raw records")

    @group.command("rebuild")
    @click.option("--box-chunk", default=2000, show_default=True, help="boxes per transaction")
    def rebuild(box_chunk: int) -> None:
        """Recompute every roll-up from the raw records, a transaction per month and per chunk of boxes."""
        from app.extensions import db
        from app.statistics.services import rollups

        session = db.session()
        steps = 0
        for label, step in rollups.rebuild_steps(session, box_chunk):
            with cli_transaction(session):
                step()
            steps += 1
            click.echo(f"rebuilt {label}")
        click.echo(f"rebuilt the roll-ups in {steps} step(s)")

    app.cli.add_command(group)
