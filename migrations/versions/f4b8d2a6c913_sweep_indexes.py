"""indexes of the colour sweep: the waste still on site per box; boxes by (next check, id)

``ledger_records`` holds every generation batch a box ever produced (ten and more per box); the
colour's "waste on site" facts want the few whose waste is still on site. The index
``(box_id) WHERE stage = 'generation' AND on_site_kg > 0.0005`` holds only those: the sweep of
100,000 boxes no longer visits a million heap pages to find none.

``boxes``: the index of ``colour_next_check_at`` becomes one of ``(colour_next_check_at, id)``,
the order in which the sweep takes the due boxes a chunk at a time (with all 100,000 due, each
chunk was a sequential scan and a sort of every due box); ``ix_boxes_unstored``, the boxes without
a stored evaluation (``colour_detail IS NULL``), which the sweep's last chunk asks for (a
sequential scan of every box). No data changes.

Revision ID: f4b8d2a6c913
Revises: f4b8d2a6c190
Create Date: 2026-12-04 19:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "f4b8d2a6c913"
down_revision = "f4b8d2a6c190"
branch_labels = None
depends_on = None

WASTE_ON_SITE = "stage = 'generation' AND on_site_kg > 0.0005"  # as app.ledger.models.WASTE_ON_SITE


def upgrade():
    op.create_index(
        "ix_ledger_records_waste_on_site",
        "ledger_records",
        ["box_id"],
        postgresql_where=sa.text(WASTE_ON_SITE),
        sqlite_where=sa.text(WASTE_ON_SITE),
    )

    op.drop_index("ix_boxes_colour_next_check_at", table_name="boxes")
    op.create_index("ix_boxes_colour_next_check_at_id", "boxes", ["colour_next_check_at", "id"])
    op.create_index(
        "ix_boxes_unstored",
        "boxes",
        ["id"],
        postgresql_where=sa.text("colour_detail IS NULL"),
        sqlite_where=sa.text("colour_detail IS NULL"),
    )


def downgrade():
    op.drop_index("ix_boxes_unstored", table_name="boxes")
    op.drop_index("ix_boxes_colour_next_check_at_id", table_name="boxes")
    op.create_index("ix_boxes_colour_next_check_at", "boxes", ["colour_next_check_at"])
    op.drop_index("ix_ledger_records_waste_on_site", table_name="ledger_records")
