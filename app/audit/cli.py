"""``flask --app wsgi audit verify|digest``."""

from __future__ import annotations

import json

import click


def register(app) -> None:
    group = click.Group("audit", help="The audit trail (审计记录).")

    @group.command("verify")
    @click.option("--digest", "digest", default=None, help="SEQ:HASH recorded earlier: the chain up to it must match")
    @click.option("--max-findings", default=200, show_default=True, help="print at most this many findings")
    def verify(digest: str | None, max_findings: int) -> None:
        """Recompute the chain and compare the audited tables with it; exit 1 on any finding."""
        from app.audit import services
        from app.common.errors import InvalidInput
        from app.extensions import db

        try:
            wanted = services.parse_digest(digest) if digest else None
        except InvalidInput as exc:
            raise click.BadParameter(str(exc.errors or exc.detail), param_hint="--digest") from exc
        findings = services.verify(db.session(), wanted)
        db.session.rollback()
        head = services.chain_head(db.session())
        if not findings:
            click.echo(f"OK: {head['seq']} entries, head {head['hash']}; every audited row matches its trail")
            return
        for finding in findings[:max_findings]:
            click.echo(f"FAIL {finding}")
        click.echo(f"{len(findings)} finding(s)")
        raise SystemExit(1)

    @group.command("digest")
    def digest() -> None:
        """Print the chain head (seq, hash, time) as JSON, and as SEQ:HASH for `verify --digest`."""
        from app.audit import services
        from app.extensions import db

        head = services.chain_head(db.session())
        click.echo(json.dumps(head))
        click.echo(f"{head['seq']}:{head['hash']}")

    app.cli.add_command(group)
