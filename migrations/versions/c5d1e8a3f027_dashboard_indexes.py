"""the regulator's dashboard and lists (issue 12): boxes by colour and since, enterprise-day roll-ups

``ix_boxes_colour_since_id`` (colour, colour_since, id) replaces ``ix_boxes_colour``: the dashboard's
longest red boxes are an index range of 20 entries instead of a sort of every red box, and every
filter on the colour alone still has its index (the leading column).

``rollup_fill_days`` and ``rollup_consignment_days``: the mass-balance anomalies' figures per
enterprise and Asia/Shanghai day, for the whole days of their period's partial months (a rolling
year read ≈ 40,000 manifests raw per request at 10⁶). Backfilled from the raw rows by the same
recomputation ``flask --app wsgi statistics rebuild`` runs, month by month (``ROLLUPS_BACKFILL=0``
skips it, to rebuild afterwards in bounded transactions).

Revision ID: c5d1e8a3f027
Revises: b8e4f2a61c07
Create Date: 2026-12-08 00:40:00.000000

"""

import os

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c5d1e8a3f027"
down_revision = "b8e4f2a61c07"
branch_labels = None
depends_on = None

_KG = sa.Numeric(precision=14, scale=3)


def upgrade():
    with op.batch_alter_table("boxes", schema=None) as batch_op:
        batch_op.create_index("ix_boxes_colour_since_id", ["colour", "colour_since", "id"], unique=False)
        batch_op.drop_index("ix_boxes_colour")
    op.create_table(
        "rollup_fill_days",
        sa.Column("enterprise_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("replaced_count", sa.Integer(), nullable=False),
        sa.Column("replaced_weighed_kg", _KG, nullable=False),
        sa.Column("replaced_kg", _KG, nullable=False),
        sa.PrimaryKeyConstraint("enterprise_id", "day", name=op.f("pk_rollup_fill_days")),
    )
    with op.batch_alter_table("rollup_fill_days", schema=None) as batch_op:
        batch_op.create_index("ix_rollup_fill_days_day", ["day"], unique=False)
    op.create_table(
        "rollup_consignment_days",
        sa.Column("enterprise_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("delivered_count", sa.Integer(), nullable=False),
        sa.Column("delivered_shipped_kg", _KG, nullable=False),
        sa.Column("delivered_received_kg", _KG, nullable=False),
        sa.PrimaryKeyConstraint("enterprise_id", "day", name=op.f("pk_rollup_consignment_days")),
    )
    with op.batch_alter_table("rollup_consignment_days", schema=None) as batch_op:
        batch_op.create_index("ix_rollup_consignment_days_day", ["day"], unique=False)
    if os.environ.get("ROLLUPS_BACKFILL", "1") != "0":
        _backfill()


def _backfill():
    from sqlalchemy.orm import Session

    from app.statistics.services import rollups

    session = Session(bind=op.get_bind())
    for month in rollups.all_months(session):  # Core statements on this connection: committed with the migration
        rollups.rewrite_days(session, month, None)


def downgrade():
    with op.batch_alter_table("rollup_consignment_days", schema=None) as batch_op:
        batch_op.drop_index("ix_rollup_consignment_days_day")
    op.drop_table("rollup_consignment_days")
    with op.batch_alter_table("rollup_fill_days", schema=None) as batch_op:
        batch_op.drop_index("ix_rollup_fill_days_day")
    op.drop_table("rollup_fill_days")
    with op.batch_alter_table("boxes", schema=None) as batch_op:
        batch_op.create_index("ix_boxes_colour", ["colour"], unique=False)
        batch_op.drop_index("ix_boxes_colour_since_id")
