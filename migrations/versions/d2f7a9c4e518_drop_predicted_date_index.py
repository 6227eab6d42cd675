"""boxes: the predicted replacement date's index dropped (issue 12: every sweep and batch rewrites it)

No query filters or sorts boxes by ``predicted_replacement_at`` (lists sort by saturation, colour
and since; the statistics read roll-ups), yet the date moves at nearly every evaluation, and a
box's row is never updated in place (its next check is indexed), so each sweep and ingest write
also wrote a new entry into this index for every box: one index of seven, for nothing read.

Revision ID: d2f7a9c4e518
Revises: c5d1e8a3f027
Create Date: 2026-12-08 01:35:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "d2f7a9c4e518"
down_revision = "c5d1e8a3f027"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("boxes", schema=None) as batch_op:
        batch_op.drop_index("ix_boxes_predicted_replacement_at")


def downgrade():
    with op.batch_alter_table("boxes", schema=None) as batch_op:
        batch_op.create_index("ix_boxes_predicted_replacement_at", ["predicted_replacement_at"], unique=False)
