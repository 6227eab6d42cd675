"""measured load over a real time window

The predicted replacement date of a box with sensors follows the adsorbed kg of the last 24 hours
of readings divided by the window's length (app.telemetry.integration.window_load), kept per box
as a small ring of (hour, kg, held seconds): box_sensor_states.load_hours replaces the per-reading
EWMA (load_ewma_kg_per_day, load_weight). Existing states forget their fill (fill_id NULL), so
that the next ingest or evaluation rebuilds each one's integral and ring from its readings, once.
(colour_changes.recorded_at, the time a change was written beside the time it describes, exists
since the initial schema and keeps its values.)

Revision ID: 5d1e7c3a9b20
Revises: 5e7a3c1d9b20
Create Date: 2026-11-27 09:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "5d1e7c3a9b20"
down_revision = "5e7a3c1d9b20"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("box_sensor_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("load_hours", sa.JSON(), nullable=True))
    op.execute("UPDATE box_sensor_states SET load_hours = '[]', fill_id = NULL, fill_started_at = NULL")
    with op.batch_alter_table("box_sensor_states", schema=None) as batch_op:
        batch_op.alter_column("load_hours", existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column("load_ewma_kg_per_day")
        batch_op.drop_column("load_weight")


def downgrade():
    with op.batch_alter_table("box_sensor_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("load_weight", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("load_ewma_kg_per_day", sa.Float(), nullable=True))
    op.execute("UPDATE box_sensor_states SET load_weight = 0.0, load_ewma_kg_per_day = 0.0")
    with op.batch_alter_table("box_sensor_states", schema=None) as batch_op:
        batch_op.alter_column("load_weight", existing_type=sa.Float(), nullable=False)
        batch_op.alter_column("load_ewma_kg_per_day", existing_type=sa.Float(), nullable=False)
        batch_op.drop_column("load_hours")
