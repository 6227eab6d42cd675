"""session generation of users; issuer and expiry of device tokens

- ``users.session_token``: part of the id the session and remember cookies hold; a new one
  (sign-out, a new password) ends every cookie issued before. Existing users get a random one
  each (their current cookies stop working once: they sign in again).
- ``api_tokens.issued_by_user_id``: who issued a token (NULL for the tokens issued before).
- Device tokens issued before never expired: they now expire 365 days after this upgrade.

Revision ID: 7b4d2e9a1c63
Revises: 5d1e7c3a9b20
Create Date: 2026-12-10 10:00:00

"""

import secrets
from datetime import datetime, timedelta, timezone

from alembic import op
import sqlalchemy as sa


revision = "7b4d2e9a1c63"
down_revision = "5d1e7c3a9b20"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_token", sa.String(length=64), nullable=True))
    conn = op.get_bind()
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("session_token", sa.String))
    for (user_id,) in conn.execute(sa.select(users.c.id)).all():
        conn.execute(users.update().where(users.c.id == user_id).values(session_token=secrets.token_urlsafe(32)))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("session_token", existing_type=sa.String(length=64), nullable=False)

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("issued_by_user_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_api_tokens_issued_by_user_id_users"),
            "users",
            ["issued_by_user_id"],
            ["id"],
            ondelete="SET NULL",
        )
    tokens = sa.table("api_tokens", sa.column("kind", sa.String), sa.column("expires_at", sa.DateTime(timezone=True)))
    # UTCDateTime stores naive UTC on SQLite, timestamptz on PostgreSQL.
    in_a_year = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=365)
    if conn.dialect.name == "sqlite":
        in_a_year = in_a_year.replace(tzinfo=None)
    conn.execute(
        tokens.update().where(tokens.c.kind == "device", tokens.c.expires_at.is_(None)).values(expires_at=in_a_year)
    )


def downgrade():
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_api_tokens_issued_by_user_id_users"), type_="foreignkey")
        batch_op.drop_column("issued_by_user_id")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_token")
