"""``flask --app wsgi create-superuser USERNAME``: a platform operator."""

from __future__ import annotations

import os

import click
from sqlalchemy import select

from app.accounts.models import User
from app.accounts.passwords import password_problems
from app.accounts.reference import ensure_counties
from app.accounts.services import set_password
from app.common.tx import cli_transaction
from app.extensions import db


def register(app) -> None:
    @app.cli.command("create-superuser")
    @click.argument("username")
    def create_superuser(username: str) -> None:
        """Create (or reset the password of) a platform operator. Password from $PASSWORD, else a prompt."""
        password = os.environ.get("PASSWORD") or click.prompt("Password", hide_input=True, confirmation_prompt=True)
        problems = password_problems(password, username)
        if problems:
            raise click.ClickException("the password is refused: " + "; ".join(problems))
        with cli_transaction(db.session()):
            ensure_counties(db.session())
            user = db.session.scalar(select(User).where(User.username == username))
            if user is None:
                user = User(username=username, display_name=username, is_operator=True, role="admin", password_hash="")
                db.session.add(user)
                verb = "created"
            else:
                user.is_operator = True
                verb = "updated"
            set_password(db.session(), user, password)
        click.echo(f"operator {username} {verb}")
