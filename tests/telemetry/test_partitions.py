"""Readings by month (issue 12): the partitions a migrated PostgreSQL database holds and the
``telemetry partitions`` command creates ahead, and the retention policy that the ``telemetry
retention`` command enforces on raw readings while the hourly roll-ups stay."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from app.extensions import db
from app.rules.loader import validate
from app.telemetry.models import ReadingHour, SensorReading
from app.telemetry.services import partitions
from tests import factories
from tests.support import BACKENDS, drop_pg_database, pg_scratch_database, service_missing

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _reading(box_id: int, ts: datetime) -> SensorReading:
    return SensorReading(box_id=box_id, ts=ts, inlet_mg_m3=100.0, outlet_mg_m3=20.0, airflow_m3_h=5000.0, running=True)


def _hour(box_id: int, ts: datetime) -> ReadingHour:
    return ReadingHour(box_id=box_id, hour_start=ts.replace(minute=0, second=0, microsecond=0), count=1)


def test_cutoff_counts_whole_months_of_shanghai():
    assert partitions.retention_cutoff(NOW, 24) == datetime(2024, 12, 1, tzinfo=partitions.SHANGHAI)
    # 2026-11-30 17:00 UTC is already December 1st in Shanghai.
    assert partitions.month_of(datetime(2026, 11, 30, 17, 0, tzinfo=UTC)) == date(2026, 12, 1)
    assert partitions.add_months(date(2026, 11, 1), 3) == date(2027, 2, 1)
    assert partitions.add_months(date(2026, 1, 1), -13) == date(2024, 12, 1)


def test_the_policy_file_is_checked():
    assert validate("retention.yaml", {"version": 1, "raw_readings": {"keep_months": 24, "source": "x"}}) == []
    problems = validate("retention.yaml", {"version": 1, "raw_readings": {"keep_months": 0, "source": "x"}})
    assert problems and "keep_months" in " ".join(problems)


def test_the_shipped_policy_is_loaded_through_the_wiring(app, session):
    from app.common.wiring import wiring_of

    policy = wiring_of(session).retention()
    assert policy.keep_months == 24 and policy.partitions_ahead == 3


def test_retention_deletes_only_older_readings_and_keeps_rollups(app, world, session):
    """On a table without partitions (SQLite, a create_all PostgreSQL database): rows are deleted."""
    box = factories.box(world.enterprise, has_sensors=True)
    cutoff = partitions.retention_cutoff(NOW, 24)
    old = [cutoff - timedelta(days=40), cutoff - timedelta(seconds=1)]
    kept = [cutoff, cutoff + timedelta(days=3), NOW - timedelta(hours=1)]
    session.add_all([_reading(box.id, ts) for ts in old + kept] + [_hour(box.id, ts) for ts in old + kept])
    session.commit()
    result = partitions.apply_retention(session, NOW, 24)
    session.commit()
    assert result.deleted == 2 and result.dropped == []
    left = session.scalars(select(SensorReading.ts).where(SensorReading.box_id == box.id).order_by(SensorReading.ts))
    assert [t.astimezone(UTC) for t in left] == [t.astimezone(UTC) for t in kept]
    assert session.scalar(select(func.count()).select_from(ReadingHour)) == 5


def test_commands_on_a_table_without_partitions(app, world, session):
    box = factories.box(world.enterprise, has_sensors=True)
    session.add(_reading(box.id, datetime(2000, 1, 1, tzinfo=UTC)))
    session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["telemetry", "partitions", "--ahead", "2"])
    assert result.exit_code == 0 and "not partitioned" in result.output
    result = runner.invoke(args=["telemetry", "retention"])
    assert result.exit_code == 0, result.output
    assert "1 rows deleted" in result.output
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(SensorReading)) == 0


@pytest.fixture
def migrated(tmp_path, worker, monkeypatch):
    """A PostgreSQL database migrated to head: readings partitioned, as in production."""
    if "postgresql" not in BACKENDS:
        service_missing("PostgreSQL", "TEST_BACKENDS leaves it out")
    from flask_migrate import upgrade

    from app import create_app
    from app.accounts.reference import ensure_counties

    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    url = pg_scratch_database("partitions", worker)
    application = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": url})
    with application.app_context():
        upgrade()
        ensure_counties(db.session)
        db.session.commit()
        yield application
        db.session.remove()
        db.engine.dispose()
    drop_pg_database(url)


def _names(session) -> list[str]:
    return [p.name for p in partitions.partitions(session)]


def test_migrated_postgresql_readings_are_partitioned_and_created_ahead(migrated):
    session = db.session()
    assert partitions.is_partitioned(session)
    current = partitions.month_of(datetime.now(UTC))
    ahead = [partitions.partition_name(partitions.add_months(current, i)) for i in range(4)]
    assert set(ahead) <= set(_names(session))  # the migration's: this month and three ahead
    assert _names(session)[-1] == partitions.DEFAULT_PARTITION
    result = migrated.test_cli_runner().invoke(args=["telemetry", "partitions", "--ahead", "6"])
    assert result.exit_code == 0, result.output
    further = [partitions.partition_name(partitions.add_months(current, i)) for i in (4, 5, 6)]
    assert "created 3: " + ", ".join(further) in result.output
    session.expire_all()
    assert set(further) <= set(_names(session))
    # Again: nothing to create.
    result = migrated.test_cli_runner().invoke(args=["telemetry", "partitions", "--ahead", "6"])
    assert "created 0" in result.output


def test_a_month_created_later_takes_its_rows_from_the_default_partition(migrated):
    session = db.session()
    world = factories.World.build()
    box = factories.box(world.enterprise, has_sensors=True)
    month = partitions.add_months(partitions.month_of(datetime.now(UTC)), 9)  # not created yet
    ts = partitions.month_start(month) + timedelta(days=2)
    session.add(_reading(box.id, ts))
    session.commit()
    default = f"{partitions.PARTITION_SCHEMA}.{partitions.DEFAULT_PARTITION}"
    assert session.scalar(sa.text(f"SELECT count(*) FROM {default}")) == 1
    assert partitions.create_month(session, month)
    session.commit()
    assert session.scalar(sa.text(f"SELECT count(*) FROM {default}")) == 0
    name = f"{partitions.PARTITION_SCHEMA}.{partitions.partition_name(month)}"
    assert session.scalar(sa.text(f"SELECT count(*) FROM {name}")) == 1
    assert session.scalar(select(func.count()).select_from(SensorReading)) == 1


def test_retention_drops_old_partitions_and_keeps_rollups(migrated):
    session = db.session()
    world = factories.World.build()
    box = factories.box(world.enterprise, has_sensors=True)
    now = datetime.now(UTC)
    current = partitions.month_of(now)
    old_month = partitions.add_months(current, -30)
    assert partitions.create_month(session, old_month)
    cutoff = partitions.retention_cutoff(now, 24)
    old = [partitions.month_start(old_month) + timedelta(days=1), cutoff - timedelta(days=2)]  # partition; default
    kept = [cutoff + timedelta(hours=1), now - timedelta(hours=2)]
    session.add_all([_reading(box.id, ts) for ts in old + kept] + [_hour(box.id, ts) for ts in old + kept])
    session.commit()
    result = migrated.test_cli_runner().invoke(args=["telemetry", "retention"])  # the policy: 24 months
    assert result.exit_code == 0, result.output
    assert f"1 partitions dropped ({partitions.partition_name(old_month)})" in result.output
    assert "1 rows deleted" in result.output
    session.expire_all()
    assert partitions.partition_name(old_month) not in _names(session)
    left = session.scalars(select(SensorReading.ts).order_by(SensorReading.ts)).all()
    assert [t.astimezone(UTC) for t in left] == [t.astimezone(UTC) for t in kept]
    assert session.scalar(select(func.count()).select_from(ReadingHour)) == 4
