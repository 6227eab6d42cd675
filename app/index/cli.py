"""The index definition is validated when the app starts; ``flask --app wsgi index check-data`` reports it."""

from __future__ import annotations

import click

from app.index.definition import load_definition


def register(app) -> None:
    # A structurally broken synergy_index.yaml stops the start with its problems listed (like the
    # colour rules); weight mismatches of the published table are logged as warnings and kept.
    load_definition(app.config.get("RULES_DIR"))  # logs each weight problem as a warning when it loads
    group = click.Group("index", help="County synergy index (减污降碳协同指数).")

    @group.command("check-data")
    def check_data() -> None:
        """Validate synergy_index.yaml and list the weight problems of the table."""
        d = load_definition(app.config.get("RULES_DIR"))
        click.echo(
            f"{d.version}: {len(d.first_level)} / {len(d.second_level)} / {len(d.indicators)} indicators, "
            f"best total {d.max_score:g}"
        )
        for problem in d.problems:
            click.echo(f"warning: {problem}")

    app.cli.add_command(group)
