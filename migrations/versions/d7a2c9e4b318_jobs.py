"""jobs: long work (the colour sweep, exports) run on a queue or in-process, with its progress

A new table only: no existing data to migrate.

Revision ID: d7a2c9e4b318
Revises: c4f81e2b7d95
Create Date: 2026-12-03 19:15:00.000000

"""

from alembic import op
import sqlalchemy as sa

import app.common.types


# revision identifiers, used by Alembic.
revision = "d7a2c9e4b318"
down_revision = "c4f81e2b7d95"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("progress_done", sa.Integer(), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.Column("result_path", sa.String(length=300), nullable=True),
        sa.Column("result_name", sa.String(length=200), nullable=True),
        sa.Column("result_mime", sa.String(length=120), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("created_at", app.common.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", app.common.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", app.common.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", app.common.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('queued', 'running', 'succeeded', 'failed')", name=op.f("ck_jobs_state")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_jobs_attempts_not_negative")),
        sa.CheckConstraint("progress_done >= 0", name=op.f("ck_jobs_progress_done_not_negative")),
        sa.CheckConstraint(
            "progress_total IS NULL OR progress_total >= 0", name=op.f("ck_jobs_progress_total_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_jobs_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(["requested_by_id"], ["users.id"], name=op.f("fk_jobs_requested_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_requested_by_id_id", ["requested_by_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_jobs_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_jobs_state"), ["state"], unique=False)


def downgrade():
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_state"))
        batch_op.drop_index(batch_op.f("ix_jobs_organization_id"))
        batch_op.drop_index("ix_jobs_requested_by_id_id")
    op.drop_table("jobs")
