"""Raw readings by month: PostgreSQL's monthly partitions of ``sensor_readings``, created ahead,
and the retention policy (``app/data/retention.yaml``) that removes raw readings past its
cut-off while the hourly roll-ups stay.

On PostgreSQL the migration ``e3a9c5d71f42`` makes ``sensor_readings`` a declaratively
partitioned table (``PARTITION BY RANGE (ts)``): one partition per calendar month of
Asia/Shanghai, in the schema ``telemetry_partitions`` (so that the models' schema, which
describes the parent table only, is still exactly what a migrated database holds), and a
DEFAULT partition that catches readings of months not created yet, so ingest never fails on a
missing partition. ``telemetry partitions --ahead N`` creates the months to come (moving any rows
the default partition holds for them). A database made by ``create_all`` (the test suite's)
has a plain table: the commands then say so and retention deletes rows.

No Flask here: the commands in :mod:`app.telemetry.cli` pass the session and ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from app.common.timeutil import SHANGHAI
from app.rules import RulesError
from app.rules.loader import load_rule_file
from app.telemetry.models import SensorReading

PARTITION_SCHEMA = "telemetry_partitions"
TABLE = SensorReading.__tablename__
DEFAULT_PARTITION = f"{TABLE}_default"
RETENTION_FILE = "retention.yaml"


# ---------------------------------------------------------------- the policy


@dataclass(frozen=True)
class Retention:
    keep_months: int  # whole calendar months kept before the current one
    partitions_ahead: int = 3
    source: str = ""


def parse_retention(data: dict, where: str = RETENTION_FILE) -> Retention:
    """The rule loader's semantic check and parser (the schema has checked the shape)."""
    raw = data.get("raw_readings") or {}
    try:
        return Retention(int(raw["keep_months"]), int(raw.get("partitions_ahead", 3)), str(raw.get("source", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise RulesError(f"{where}: raw_readings: {exc}") from None


def check_retention(data: dict, where: str) -> None:
    parse_retention(data, where)


def load_retention(rules_dir: str | Path | None = None) -> Retention:
    """The policy in force (a RULES_DIR copy of retention.yaml, else the shipped file)."""
    return parse_retention(load_rule_file(RETENTION_FILE, rules_dir), RETENTION_FILE)


# ---------------------------------------------------------------- months


def month_of(moment: datetime) -> date:
    """The first day of ``moment``'s calendar month in Asia/Shanghai."""
    local = moment.astimezone(SHANGHAI)
    return date(local.year, local.month, 1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def month_start(month: date) -> datetime:
    """The month's first instant (Asia/Shanghai midnight), as an aware datetime."""
    return datetime(month.year, month.month, 1, tzinfo=SHANGHAI)


def partition_name(month: date) -> str:
    return f"{TABLE}_y{month.year:04d}m{month.month:02d}"


def _bound(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}-01 00:00:00+08"


# ---------------------------------------------------------------- PostgreSQL partitions


def is_partitioned(session: Session) -> bool:
    """Whether ``sensor_readings`` is a partitioned table (PostgreSQL after the migration)."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    kind = session.execute(text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"), {"t": TABLE}).scalar()
    return kind == "p"


@dataclass(frozen=True)
class Partition:
    name: str
    lower: datetime | None  # None: the default partition
    upper: datetime | None


def partitions(session: Session) -> list[Partition]:
    """The partitions of ``sensor_readings``, oldest first, the default one last."""
    rows = session.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:t)"
        ),
        {"t": TABLE},
    ).all()
    found: list[Partition] = []
    for row in rows:
        name, bound = str(row[0]), str(row[1])
        if bound == "DEFAULT":
            found.append(Partition(name, None, None))
            continue
        # "FOR VALUES FROM ('2026-11-30 16:00:00+00') TO ('2026-12-31 16:00:00+00')"
        lo, hi = (part.split("'")[1] for part in bound.split(" TO "))
        found.append(Partition(name, datetime.fromisoformat(lo), datetime.fromisoformat(hi)))
    return sorted(found, key=lambda p: (p.lower is None, p.lower or datetime.min.replace(tzinfo=SHANGHAI)))


def create_month(session: Session, month: date) -> bool:
    """Create the partition of ``month`` unless it exists; True if created. Rows the default
    partition holds for that month move into it (PostgreSQL refuses to attach a range the
    default partition has rows of)."""
    name = partition_name(month)
    exists = session.execute(text("SELECT to_regclass(:n)"), {"n": f"{PARTITION_SCHEMA}.{name}"}).scalar()
    if exists is not None:
        return False
    lo, hi = _bound(month), _bound(add_months(month, 1))
    qualified, default = f"{PARTITION_SCHEMA}.{name}", f"{PARTITION_SCHEMA}.{DEFAULT_PARTITION}"
    stray = session.execute(
        text(
            f"SELECT EXISTS (SELECT 1 FROM {default} WHERE ts >= CAST(:lo AS timestamptz) AND ts < CAST(:hi AS timestamptz))"
        ),
        {"lo": lo, "hi": hi},
    ).scalar()
    if not stray:
        session.execute(text(f"CREATE TABLE {qualified} PARTITION OF {TABLE} FOR VALUES FROM ('{lo}') TO ('{hi}')"))
        return True
    session.execute(text(f"CREATE TABLE {qualified} (LIKE {TABLE} INCLUDING DEFAULTS)"))
    moved = f"ts >= CAST('{lo}' AS timestamptz) AND ts < CAST('{hi}' AS timestamptz)"
    session.execute(text(f"INSERT INTO {qualified} SELECT * FROM {default} WHERE {moved}"))
    session.execute(text(f"DELETE FROM {default} WHERE {moved}"))
    session.execute(text(f"ALTER TABLE {TABLE} ATTACH PARTITION {qualified} FOR VALUES FROM ('{lo}') TO ('{hi}')"))
    return True


def ensure_partitions(session: Session, now: datetime, ahead: int) -> list[str]:
    """The partitions of the current month and ``ahead`` months after it, created where missing
    (names of those created). Nothing on a table that is not partitioned."""
    if not is_partitioned(session):
        return []
    current = month_of(now)
    return [partition_name(m) for i in range(ahead + 1) if create_month(session, m := add_months(current, i))]


# ---------------------------------------------------------------- retention


@dataclass
class RetentionResult:
    cutoff: datetime
    dropped: list[str] = field(default_factory=list)  # whole partitions dropped
    deleted: int = 0  # rows deleted (default partition, or a table without partitions)


def retention_cutoff(now: datetime, keep_months: int) -> datetime:
    """Readings before this instant are removed: the start of the month ``keep_months`` whole
    months before the current one (keep 24 in December 2026: from December 2024 on)."""
    return month_start(add_months(month_of(now), -keep_months))


def apply_retention(session: Session, now: datetime, keep_months: int) -> RetentionResult:
    """Remove raw readings older than the cut-off; the hourly roll-ups and the boxes' sensor
    states are not touched. Whole monthly partitions are dropped; what remains older (rows in the
    default partition, or a table without partitions, as on SQLite) is deleted."""
    result = RetentionResult(retention_cutoff(now, keep_months))
    if is_partitioned(session):
        for part in partitions(session):
            if part.upper is not None and part.upper <= result.cutoff:
                session.execute(text(f"DROP TABLE {PARTITION_SCHEMA}.{part.name}"))
                result.dropped.append(part.name)
    deleted = session.execute(delete(SensorReading).where(SensorReading.ts < result.cutoff))
    result.deleted = int(getattr(deleted, "rowcount", 0) or 0)
    session.flush()
    return result
