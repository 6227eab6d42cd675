"""stored box evaluation: saturation, predicted replacement date and the shown figures on boxes

Reads serve the stored evaluation (app/boxes/stored.py) instead of evaluating the box. Existing
boxes get the columns empty (``colour_detail`` NULL): the colour sweep
(``flask --app wsgi boxes refresh-colours``, which takes boxes without a stored evaluation as due)
or the first read evaluates and stores each one once; until then a read of such a box evaluates
it, as every read did before.

Revision ID: c4f81e2b7d95
Revises: 6c9e3c31131c
Create Date: 2026-12-03 16:50:00.000000

"""

from alembic import op
import sqlalchemy as sa

import app.common.types


# revision identifiers, used by Alembic.
revision = "c4f81e2b7d95"
down_revision = "6c9e3c31131c"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("boxes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("saturation", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("predicted_replacement_at", app.common.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("colour_detail", sa.JSON(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_boxes_predicted_replacement_at"), ["predicted_replacement_at"], unique=False
        )


def downgrade():
    with op.batch_alter_table("boxes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_boxes_predicted_replacement_at"))
        batch_op.drop_column("colour_detail")
        batch_op.drop_column("predicted_replacement_at")
        batch_op.drop_column("saturation")
