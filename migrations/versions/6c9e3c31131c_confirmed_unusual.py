"""confirmed_unusual on fills, ledger records and manifest lines: an unusual value the person confirmed

Existing rows were stored before unusual values needed a confirmation: false.

Revision ID: 6c9e3c31131c
Revises: 9f750897c9e3
Create Date: 2026-12-03 17:10:00

"""

from alembic import op
import sqlalchemy as sa

revision = "6c9e3c31131c"
down_revision = "9f750897c9e3"  # this branch's idempotency_keys; the chain's head was a7d3e9c1f404
branch_labels = None
depends_on = None


def upgrade():
    for table in ("fills", "ledger_records", "manifest_lines"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("confirmed_unusual", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade():
    for table in ("fills", "ledger_records", "manifest_lines"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("confirmed_unusual")
