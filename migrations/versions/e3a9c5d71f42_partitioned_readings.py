"""readings partitioned by month (PostgreSQL); a sensor state for every box

PostgreSQL: ``sensor_readings`` becomes a declaratively partitioned table (PARTITION BY RANGE
(ts)), with the same columns, primary key (box_id, ts) (the time column is part of it, as a
partitioned table's key must be) and foreign key. Its partitions live in the schema
``telemetry_partitions``: one per calendar month (Asia/Shanghai) from the oldest stored reading's
month to three months ahead, and a DEFAULT partition for readings of months not created yet
(``flask --app wsgi telemetry partitions --ahead 3`` creates them ahead, monthly). The stored
readings are copied into it and the old table dropped. SQLite: nothing structural.

Both: every box gets its ``box_sensor_states`` row (ingest used to create it on the first reading;
it now exists from the box's registration).

Revision ID: e3a9c5d71f42
Revises: d7e2a4c9b316
Create Date: 2026-12-03 19:40:00.000000

"""

from datetime import date, datetime
from zoneinfo import ZoneInfo

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "e3a9c5d71f42"
down_revision = "d7e2a4c9b316"
branch_labels = None
depends_on = None

SCHEMA = "telemetry_partitions"
AHEAD = 3
COLUMNS = (
    "box_id integer NOT NULL, ts timestamp with time zone NOT NULL, inlet_mg_m3 double precision NOT NULL, "
    "outlet_mg_m3 double precision NOT NULL, airflow_m3_h double precision NOT NULL, "
    "pressure_drop_pa double precision, inlet_temp_c double precision, bed_temp_c double precision, "
    "rh_pct double precision, running boolean NOT NULL"
)
KEYS = (
    "CONSTRAINT pk_sensor_readings PRIMARY KEY (box_id, ts), "
    "CONSTRAINT fk_sensor_readings_box_id_boxes FOREIGN KEY (box_id) REFERENCES boxes (id)"
)


def _add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def _bound(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}-01 00:00:00+08"


def _month_of(moment: datetime) -> date:
    local = moment.astimezone(ZoneInfo("Asia/Shanghai"))
    return date(local.year, local.month, 1)


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        op.execute("ALTER TABLE sensor_readings RENAME TO sensor_readings_plain")
        op.execute("ALTER TABLE sensor_readings_plain RENAME CONSTRAINT pk_sensor_readings TO pk_sensor_readings_plain")
        op.execute(
            "ALTER TABLE sensor_readings_plain RENAME CONSTRAINT fk_sensor_readings_box_id_boxes "
            "TO fk_sensor_readings_plain_box_id_boxes"
        )
        op.execute(f"CREATE TABLE sensor_readings ({COLUMNS}, {KEYS}) PARTITION BY RANGE (ts)")
        op.execute(f"CREATE TABLE {SCHEMA}.sensor_readings_default PARTITION OF sensor_readings DEFAULT")
        oldest = bind.execute(sa.text("SELECT min(ts) FROM sensor_readings_plain")).scalar()
        now_month = _month_of(datetime.now(ZoneInfo("UTC")))
        month = _month_of(oldest) if oldest is not None and _month_of(oldest) < now_month else now_month
        last = _add_months(now_month, AHEAD)
        while month <= last:
            nxt = _add_months(month, 1)
            op.execute(
                f"CREATE TABLE {SCHEMA}.sensor_readings_y{month.year:04d}m{month.month:02d} PARTITION OF "
                f"sensor_readings FOR VALUES FROM ('{_bound(month)}') TO ('{_bound(nxt)}')"
            )
            month = nxt
        op.execute("INSERT INTO sensor_readings SELECT * FROM sensor_readings_plain")
        op.execute("DROP TABLE sensor_readings_plain")
    # A sensor state for every box (as registration now creates it).
    op.execute(
        "INSERT INTO box_sensor_states (box_id, adsorbed_kg, integrated_count, last_rate_kg_h, load_hours, "
        "breakthrough_count, latest, reading_count) "
        "SELECT b.id, 0.0, 0, 0.0, '[]', 0, '{}', 0 FROM boxes b "
        "WHERE NOT EXISTS (SELECT 1 FROM box_sensor_states s WHERE s.box_id = b.id)"
    )


def downgrade():
    # The sensor states stay (empty ones are what a first reading would have made).
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE sensor_readings RENAME TO sensor_readings_partitioned")
    op.execute(
        "ALTER TABLE sensor_readings_partitioned RENAME CONSTRAINT pk_sensor_readings TO pk_sensor_readings_partitioned"
    )
    op.execute(
        "ALTER TABLE sensor_readings_partitioned RENAME CONSTRAINT fk_sensor_readings_box_id_boxes "
        "TO fk_sensor_readings_partitioned_box_id_boxes"
    )
    op.execute(f"CREATE TABLE sensor_readings ({COLUMNS}, {KEYS})")
    op.execute("INSERT INTO sensor_readings SELECT * FROM sensor_readings_partitioned")
    op.execute("DROP TABLE sensor_readings_partitioned")
    op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
