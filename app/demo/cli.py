"""``flask --app wsgi demo``: load the Taizhou demo data into an empty database (idempotent)."""

from __future__ import annotations

import time

import click
from sqlalchemy import inspect

from app.extensions import db


def _print_summary(summary: dict) -> None:
    colours = summary["colours"]
    click.echo(
        f"  {summary['counties']} 县市区 counties · {summary['parks']} 园区 parks · "
        f"{summary['organizations']} 单位 organisations · {summary['users']} 用户 users"
    )
    click.echo(
        f"  {summary['boxes']} 碳箱 boxes · {summary['fills']} 装填/换炭 fills · "
        f"红 red {colours['red']} · 黄 yellow {colours['yellow']} · "
        f"绿 green {colours['green']} · 灰 grey {colours['grey']}"
    )


def _print_logins(summary: dict) -> None:
    if not summary["logins"]:
        return
    click.echo(f"Demo logins (password for all: {summary['password']}):")
    width = max(len(login["username"]) for login in summary["logins"])
    for login in summary["logins"]:
        click.echo(f"  {login['username']:<{width}}  {login['role_zh']} ({login['role_en']})  {login['organization']}")


def register(app) -> None:
    @app.cli.group("demo", invoke_without_command=True)
    @click.option(
        "--now",
        "now_text",
        metavar="ISO-TIME",
        default=None,
        help="the moment the demo's colours are planned for (default: now); no offset means Asia/Shanghai",
    )
    @click.pass_context
    def demo(click_ctx: click.Context, now_text: str | None) -> None:
        """Load the Taizhou demo data (parks, enterprises, boxes with histories) into an empty database."""
        if click_ctx.invoked_subcommand is not None:
            return
        from datetime import datetime

        from app.common.timeutil import as_utc
        from app.demo.data import load_demo

        try:
            now = as_utc(datetime.fromisoformat(now_text)) if now_text else None
        except ValueError as exc:
            raise click.BadParameter(f"not an ISO 8601 time: {now_text}", param_hint="--now") from exc

        if not inspect(db.engine).has_table("organizations"):
            raise click.ClickException("数据库尚未建表 (no tables): run `flask --app wsgi db upgrade` first")
        started = time.monotonic()
        # An explicit worker boundary: the demo loader commits its own work (app.demo.data), not
        # through app.common.tx.cli_transaction.
        summary = load_demo(db.session(), now)
        if summary["status"] == "already_loaded":
            click.echo("演示数据已存在，未做任何修改 (the demo data is already loaded; nothing changed).")
            _print_summary(summary)
            _print_logins(summary)
            return
        if summary["status"] == "not_empty":
            raise click.ClickException(
                f"数据库不是空的 ({summary['organizations']} organisations, {summary['boxes']} boxes) and holds no demo "
                "data: the demo loads only into an empty database. Nothing changed."
            )
        click.echo(f"台州演示数据已载入 (Taizhou demo data loaded in {time.monotonic() - started:.1f} s):")
        _print_summary(summary)
        _print_logins(summary)

    @demo.command("generate")
    @click.option("--scale", type=float, default=1.0, show_default=True, help="1: 10,000 boxes; 10: 100,000")
    @click.option("--now", "now_text", metavar="ISO-TIME", default=None, help="the data set's present (default: now)")
    @click.option(
        "--readings-per-box",
        type=click.IntRange(0, 100_000),
        default=1000,
        show_default=True,
        help="readings of each sensor box, one a minute up to --now",
    )
    def generate(scale: float, now_text: str | None, readings_per_box: int) -> None:
        """The benchmark data set: N × 10,000 boxes, 10⁶ readings and 10⁵ manifests (scripts/bench --scale N)."""
        from contextlib import contextmanager
        from datetime import datetime

        from flask import current_app

        from app.common.timeutil import as_utc, utcnow
        from app.common.wiring import generate_extensions, generate_registered
        from app.demo.generate import database_is_empty
        from app.demo.generate import generate as generate_data_set

        if not 0 < scale <= 100:
            raise click.BadParameter("between 0 and 100", param_hint="--scale")
        try:
            now = as_utc(datetime.fromisoformat(now_text)) if now_text else utcnow()
        except ValueError as exc:
            raise click.BadParameter(f"not an ISO 8601 time: {now_text}", param_hint="--now") from exc
        if not inspect(db.engine).has_table("organizations"):
            raise click.ClickException("数据库尚未建表 (no tables): run `flask --app wsgi db upgrade` first")
        session = db.session()
        if not database_is_empty(session):
            raise click.ClickException(
                "数据库不是空的 (the database is not empty): the data set loads only into an empty one"
            )
        started = time.monotonic()

        def progress(message: str) -> None:
            click.echo(f"  {time.monotonic() - started:7.1f} s  {message}")

        app = current_app._get_current_object()  # type: ignore[attr-defined]

        @contextmanager
        def worker_session():
            """A session of its own for a part run in another thread (its own app context)."""
            with app.app_context():
                try:
                    yield db.session()
                finally:
                    db.session.remove()

        # A worker boundary like the demo's: a load of millions of rows commits chunk by chunk
        # (the generators call ``commit`` between chunks), never as one transaction.
        try:
            ctx = generate_data_set(
                session,
                scale,
                now,
                generate_extensions(),
                session.commit,
                progress,
                readings_per_box,
                worker_session,
                generate_registered(),
            )  # (it commits its last chunk itself)
        except BaseException:
            session.rollback()
            raise
        counts = " · ".join(f"{k} {v}" for k, v in ctx.counts.items())
        click.echo(
            f"基准数据已生成 (benchmark data set, scale {scale:g}, in {time.monotonic() - started:.1f} s): {counts}"
        )
