"""Ledger data files are checked when the app starts; ``flask --app wsgi ledger check-data`` reports them."""

from __future__ import annotations

import click

from app.ledger.catalogue import check_all, load_catalogue


def register(app) -> None:
    # A broken catalogue, calendar or threshold file stops the start with its problems listed,
    # like a broken colour rule file does.
    check_all(app.config.get("RULES_DIR"))
    group = click.Group("ledger", help="Hazardous-waste ledger and manifests.")

    @group.command("check-data")
    def check_data() -> None:
        """Validate the catalogue, the holiday calendar, the method codes and the thresholds."""
        check_all(app.config.get("RULES_DIR"))
        catalogue = load_catalogue()
        click.echo(f"{catalogue.title}: {len(catalogue)} codes; calendar, methods and thresholds OK")

    app.cli.add_command(group)
