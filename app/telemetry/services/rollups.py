"""Hourly roll-ups of a batch: per (box, hour) sums, minima and maxima, and the adsorbed kg,
written with one upsert that adds them to the stored row."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy.orm import Session

from app.telemetry.models import MEASURES, ROLLUP_MEASURES, ReadingHour
from app.telemetry.services.bulk import stage
from app.telemetry.services.checks import R_HOUR, R_MEASURE, R_RUNNING, bind_ts

# A roll-up row's values after (box_id, hour_start), in this order.
_ROLLUP_COLUMNS = ["count", "running_count", "adsorbed_kg"]
_ROLLUP_SPECS = []  # (reading tuple index, position of the sum in the values, required)
for _m in ROLLUP_MEASURES:
    _ROLLUP_SPECS.append((R_MEASURE + list(MEASURES).index(_m), len(_ROLLUP_COLUMNS), MEASURES[_m][3]))
    _ROLLUP_COLUMNS += [f"{_m}_sum", f"{_m}_min", f"{_m}_max"] + ([] if MEASURES[_m][3] else [f"{_m}_n"])
_ROLLUP_EMPTY: list[float | None] = [0, 0, 0.0]  # None: no minimum/maximum yet
for _m in ROLLUP_MEASURES:
    _ROLLUP_EMPTY += [0.0, None, None] + ([] if MEASURES[_m][3] else [0])


@lru_cache(maxsize=4)
def _rollup_sql(dialect: str) -> str:
    """One upsert that adds a batch's sums to the stored (box, hour) row."""
    table = ReadingHour.__tablename__
    mark = "?" if dialect == "sqlite" else "%s"
    columns = ["box_id", "hour_start", *_ROLLUP_COLUMNS]
    updates = []
    for c in _ROLLUP_COLUMNS:
        old, new = f'{table}."{c}"', f'excluded."{c}"'
        if c.endswith(("_min", "_max")):
            if dialect == "postgresql":  # LEAST and GREATEST skip NULLs
                value = f"{'LEAST' if c.endswith('_min') else 'GREATEST'}({old}, {new})"
            else:  # SQLite's scalar min() and max() return NULL if one is NULL
                value = f"{c[-3:]}(coalesce({old}, {new}), coalesce({new}, {old}))"
        else:
            value = f"{old} + {new}"
        updates.append(f'"{c}" = {value}')
    return (
        f"INSERT INTO {table} ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))}) "
        f"ON CONFLICT (box_id, hour_start) DO UPDATE SET {', '.join(updates)}"
    )


# PostgreSQL: the same upsert as one statement from a COPYed stage (app.telemetry.services.bulk).
_ROLLUP_STAGE = "ingest_rollups_stage"
_PG_ROLLUP_SQL = _rollup_sql("postgresql").replace(
    f"VALUES ({', '.join(['%s'] * (2 + len(_ROLLUP_COLUMNS)))})",
    f"SELECT {', '.join(chr(34) + c + chr(34) for c in ['box_id', 'hour_start', *_ROLLUP_COLUMNS])} FROM {_ROLLUP_STAGE}",
)


class _Rollups:
    """Per (box, hour) sums of a batch, written with one upsert that adds them to the stored row."""

    def __init__(self, sqlite: bool) -> None:
        self.sqlite = sqlite
        self.rows: dict[tuple[int, Any], list[Any]] = {}  # (box_id, bound hour) → values

    def _row(self, box_id: int, hour: Any) -> list[Any]:
        row = self.rows.get((box_id, hour))
        if row is None:
            row = self.rows[(box_id, hour)] = _ROLLUP_EMPTY.copy()
        return row

    def add_readings(self, box_id: int, rows: list[tuple]) -> None:
        """Add one box's readings, sorted by ts (so each hour is one contiguous run); the sums,
        minima and maxima of each hour are taken column by column (one reading, the usual case
        at a city's pace of a reading per box and batch, value by value)."""
        if len(rows) == 1:
            row = rows[0]
            acc = self._row(box_id, row[R_HOUR])
            acc[0] += 1
            acc[1] += row[R_RUNNING] is True
            for index, at, required in _ROLLUP_SPECS:
                value = row[index]
                if value is None:  # an optional measure missing
                    continue
                if not required:
                    acc[at + 3] += 1
                acc[at] += value
                if acc[at + 1] is None or value < acc[at + 1]:
                    acc[at + 1] = value
                if acc[at + 2] is None or value > acc[at + 2]:
                    acc[at + 2] = value
            return
        for hour, run in groupby(rows, key=itemgetter(R_HOUR)):
            columns = list(zip(*run, strict=True))
            acc = self._row(box_id, hour)
            acc[0] += len(columns[0])
            acc[1] += columns[R_RUNNING].count(True)
            for index, at, required in _ROLLUP_SPECS:
                values: Sequence[Any] = columns[index]
                try:
                    total = sum(values)
                except TypeError:  # an optional measure missing from some readings
                    values = [v for v in values if v is not None]
                    if not values:
                        continue
                    total = sum(values)
                if not required:
                    acc[at + 3] += len(values)
                acc[at] += total
                lo, hi = min(values), max(values)
                if acc[at + 1] is None or lo < acc[at + 1]:
                    acc[at + 1] = lo
                if acc[at + 2] is None or hi > acc[at + 2]:
                    acc[at + 2] = hi

    def forget(self, box_ids: set[int]) -> None:
        """Drop the sums of ``box_ids`` (a box's are its own rows: they are added again)."""
        self.rows = {key: values for key, values in self.rows.items() if key[0] not in box_ids}

    def add_adsorbed(self, box_id: int, hour: datetime, kg: float) -> None:
        self._row(box_id, bind_ts(hour, self.sqlite))[2] += kg

    def upsert(self, session: Session) -> None:
        if not self.rows:
            return
        conn = session.connection()
        rows = [(box_id, hour, *values) for (box_id, hour), values in self.rows.items()]
        if conn.dialect.name == "postgresql":
            stage(conn, _ROLLUP_STAGE, ReadingHour.__tablename__, ["box_id", "hour_start", *_ROLLUP_COLUMNS], rows)
            conn.exec_driver_sql(_PG_ROLLUP_SQL)
        else:
            conn.exec_driver_sql(_rollup_sql(conn.dialect.name), rows)
