"""anomaly figures in the roll-ups: replacements of a known fill per fill month, delivered manifests per month

The mass-balance anomalies (app/ledger/services/mass_balance.py) read the enterprise months for the
whole months of their period: ``rollup_fill_months`` gains the replacements that had a previous
fill and the waste carbon weighed at them, ``rollup_consignment_months`` counts the manifests
received of each pickup month. Every roll-up (those of d7e2a4c9b316 too, whose own backfill moved
here) is backfilled by the same recomputation ``flask --app wsgi statistics rebuild`` runs
(``ROLLUPS_BACKFILL=0`` skips it, to rebuild afterwards in bounded transactions).

Revision ID: f4b8d2a6c190
Revises: e3a9c5d71f42
Create Date: 2026-12-04 14:50:00.000000

"""

import os

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "f4b8d2a6c190"
down_revision = "e3a9c5d71f42"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "rollup_consignment_months",
        sa.Column("enterprise_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("delivered_count", sa.Integer(), nullable=False),
        sa.Column("delivered_shipped_kg", sa.Numeric(precision=14, scale=3), nullable=False),
        sa.Column("delivered_received_kg", sa.Numeric(precision=14, scale=3), nullable=False),
        sa.PrimaryKeyConstraint("enterprise_id", "month", name=op.f("pk_rollup_consignment_months")),
    )
    with op.batch_alter_table("rollup_consignment_months", schema=None) as batch_op:
        batch_op.create_index("ix_rollup_consignment_months_month", ["month"], unique=False)
    # NOT NULL columns on existing rows: a server default of 0 while they are added, then dropped
    # (the models give the default), the backfill writing the real figures.
    with op.batch_alter_table("rollup_fill_months", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replaced_count", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("replaced_weighed_kg", sa.Numeric(precision=14, scale=3), nullable=False, server_default="0")
        )
    with op.batch_alter_table("rollup_fill_months", schema=None) as batch_op:
        batch_op.alter_column("replaced_count", server_default=None)
        batch_op.alter_column("replaced_weighed_kg", server_default=None)
    if os.environ.get("ROLLUPS_BACKFILL", "1") != "0":
        _backfill()


def _backfill():
    from sqlalchemy.orm import Session

    from app.statistics.services import rollups

    session = Session(bind=op.get_bind())
    # Core statements on this connection: committed with the migration. The enterprise days come
    # later (c5d1e8a3f027, which fills them): their tables do not exist yet.
    rollups.rebuild(session, days=False)


def downgrade():
    with op.batch_alter_table("rollup_fill_months", schema=None) as batch_op:
        batch_op.drop_column("replaced_weighed_kg")
        batch_op.drop_column("replaced_count")
    with op.batch_alter_table("rollup_consignment_months", schema=None) as batch_op:
        batch_op.drop_index("ix_rollup_consignment_months_month")
    op.drop_table("rollup_consignment_months")
