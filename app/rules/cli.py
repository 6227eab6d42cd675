"""``flask --app wsgi rules check DIR``: validate every rule file of a folder; the start checks $RULES_DIR."""

from __future__ import annotations

import sys

import click

from app.rules import RulesError
from app.rules.loader import check_dir, rule_files_in


def register(app) -> None:
    # A broken file in RULES_DIR stops the start with every problem of the folder listed (the
    # domains' loaders then check the shipped files they use, each when it loads).
    override = app.config.get("RULES_DIR")
    if override:
        problems = check_dir(override)
        if problems:
            raise RulesError("\n".join(problems), problems)
    group = click.Group("rules", help="Rule files (colour rules, holidays, ledger thresholds, index…).")

    @group.command("check")
    @click.argument("folder", type=click.Path(file_okay=False))
    def check(folder: str) -> None:
        """Validate every rule file in FOLDER (e.g. app/data, or a copy meant for RULES_DIR)."""
        problems = check_dir(folder)
        for problem in problems:
            click.echo(problem)
        if problems:
            click.echo(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {folder}", err=True)
            sys.exit(1)
        names = rule_files_in(folder)
        click.echo(
            f"{folder}: {len(names)} rule file{'s' if len(names) != 1 else ''} valid"
            + (f" ({', '.join(names)})" if names else "")
        )

    app.cli.add_command(group)
