"""Keeping the roll-ups (app/statistics/rollup_models.py) equal to their recomputation from raw rows.

* :func:`apply_pending`: at a commit, the rows the transaction's flushes touched (collected by
  ``app/statistics/rollup_tracking.py``) are rewritten: the enterprise months recomputed from the
  raw records of those enterprises and months, the colour spans of the touched boxes from the
  earliest moment their history changed.
* :func:`rebuild`: everything recomputed, month by month and box chunk by box chunk.
* :func:`verify`: the stored rows against a recomputation; a list of differences.

No Flask: the session is passed in; nothing here commits (the callers' boundaries do).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, delete, func, insert, or_, select
from sqlalchemy.orm import Session

from app.boxes.models import Box, ColourChange, Fill
from app.common.periods import Period, month_of
from app.ledger.models import Manifest
from app.statistics.rollup_models import (
    ColourSpan,
    ConsignmentDay,
    ConsignmentMonth,
    FillDay,
    FillMonth,
    TreatmentMonth,
    WasteMonth,
)
from app.statistics.services import rollup_compute as compute

PENDING_KEY = "tanxiang.statistics.rollups"
MONTH_MODELS: dict[str, Any] = {
    "rollup_waste_months": WasteMonth,
    "rollup_treatment_months": TreatmentMonth,
    "rollup_fill_months": FillMonth,
    "rollup_consignment_months": ConsignmentMonth,
}
KEYS = {
    "rollup_waste_months": ("enterprise_id", "waste_code"),
    "rollup_treatment_months": ("enterprise_id", "method_code", "waste_code"),
    "rollup_fill_months": ("enterprise_id",),
    "rollup_consignment_months": ("enterprise_id",),
}
# Enterprise days (the anomalies' partial months), rewritten with their month: the same raw rows.
DAY_MODELS: dict[str, Any] = {"rollup_fill_days": FillDay, "rollup_consignment_days": ConsignmentDay}
BOX_CHUNK = 2000


@dataclass
class Pending:
    """What a transaction's flushes touched, until its commit rewrites the roll-ups."""

    months: set[tuple[int, str]] = field(default_factory=set)  # (enterprise_id, "YYYY-MM")
    manifests: set[int] = field(default_factory=set)  # lines changed: their manifest's months
    fills: dict[int, set[datetime]] = field(default_factory=dict)  # box_id → the fill moments touched
    boxes: dict[int, set[datetime]] = field(default_factory=dict)  # box_id → the colour change moments touched

    def __bool__(self) -> bool:
        return bool(self.months or self.manifests or self.fills or self.boxes)

    def month(self, enterprise_id: int | None, moment: datetime | None) -> None:
        if enterprise_id is not None and moment is not None:
            self.months.add((enterprise_id, month_of(moment).label))

    def at(self, target: dict[int, set[datetime]], box_id: int | None, moment: datetime | None) -> None:
        if box_id is not None and moment is not None:
            target.setdefault(box_id, set()).add(moment)


def pending(session: Session) -> Pending:
    found = session.info.get(PENDING_KEY)
    if found is None:
        found = session.info[PENDING_KEY] = Pending()
    return cast(Pending, found)


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


# ---------------------------------------------------------------- at the commit


def apply_pending(session: Session) -> None:
    """Rewrite what this transaction touched (the session's before-commit hook)."""
    staged = session.info.get(PENDING_KEY)
    if not staged:
        return
    session.info[PENDING_KEY] = Pending()
    months = set(staged.months)
    if staged.manifests:
        rows = session.execute(
            select(Manifest.consignor_id, Manifest.picked_up_at, Manifest.received_at, Manifest.processed_at).where(
                Manifest.id.in_(sorted(staged.manifests))
            )
        )
        for consignor, *moments in rows:
            for moment in moments:
                if moment is not None:
                    months.add((consignor, month_of(moment).label))
    if staged.boxes:
        _legacy_late_fills(session, staged)
        rewrite_spans(session, {box_id: min(moments) for box_id, moments in staged.boxes.items()})
    if staged.fills:
        months |= _fill_months(session, staged.fills)
    by_month: dict[str, set[int]] = {}
    for enterprise_id, label in months:
        by_month.setdefault(label, set()).add(enterprise_id)
    for label, enterprises in sorted(by_month.items()):
        rewrite_month(session, Period.parse(label), enterprises)


def _next_after(session: Session, touched: dict[int, set[datetime]], *conditions) -> Iterator[tuple]:
    """(box_id, enterprise_id, filled_at) of each box's fills after the earliest touched moment."""
    earliest = min(min(moments) for moments in touched.values())
    yield from session.execute(
        select(Fill.box_id, Box.enterprise_id, Fill.filled_at)
        .join(Box, Box.id == Fill.box_id)
        .where(Fill.box_id.in_(sorted(touched)), Fill.filled_at > earliest, *conditions)
        .order_by(Fill.box_id, Fill.filled_at)
    )


def _first_after(rows: Iterator[tuple], touched: dict[int, set[datetime]]) -> set[tuple[int, int, datetime]]:
    """For each touched moment, the box's first fill after it (box_id, enterprise_id, filled_at)."""
    by_box: dict[int, list[tuple[int, datetime]]] = {}
    for box_id, enterprise_id, at in rows:
        by_box.setdefault(box_id, []).append((enterprise_id, at))
    out = set()
    for box_id, moments in touched.items():
        fills = by_box.get(box_id, [])
        for moment in moments:
            later = next(((e, at) for e, at in fills if at > moment), None)
            if later is not None:
                out.add((box_id, *later))
    return out


def _fill_months(session: Session, touched: dict[int, set[datetime]]) -> set[tuple[int, str]]:
    """The month of each touched fill moment and of the box's next fill after it (a fill's
    figures name its previous fill: its mass, and its time for a late replacement)."""
    out = {(e, month_of(at).label) for _, e, at in _first_after(_next_after(session, touched), touched)}
    enterprises = dict(session.execute(select(Box.id, Box.enterprise_id).where(Box.id.in_(sorted(touched)))).all())
    for box_id, moments in touched.items():
        if box_id in enterprises:  # the moments themselves (a deleted fill leaves no row to find)
            out |= {(enterprises[box_id], month_of(m).label) for m in moments}
    return out


def _legacy_late_fills(session: Session, staged: Pending) -> None:
    """A replacement recorded before ``replaced_overdue`` was kept is late by the colour history
    between it and its previous fill: a change of that history changes its month's figures."""
    rows = _next_after(session, staged.boxes, Fill.replaced_overdue.is_(None))
    for box_id, _, at in _first_after(rows, staged.boxes):
        staged.at(staged.fills, box_id, at)


def rewrite_month(session: Session, month: Period, enterprise_ids: set[int] | None, days: bool = True) -> None:
    """Replace the enterprise-month rows of ``month`` (of ``enterprise_ids``; None: all) by their
    recomputation, and its enterprise days with them (``days=False``: a migration older than the
    day tables)."""
    fresh = compute.month_rows(session, month, enterprise_ids)
    for name, model in MONTH_MODELS.items():
        table = _table(model)
        condition = table.c.month == month.label
        if enterprise_ids is not None:
            condition = and_(condition, table.c.enterprise_id.in_(sorted(enterprise_ids)))
        session.execute(delete(table).where(condition))
        rows = [
            {**dict(zip(KEYS[name], key, strict=True)), "month": month.label, **values}
            for key, values in fresh[name].items()
        ]
        if rows:
            session.execute(insert(table), rows)
    if days:
        rewrite_days(session, month, enterprise_ids)


def _days_of(table: Table, month: Period):
    """The rows of ``table`` whose day lies in ``month`` (ISO labels sort as the days do)."""
    return and_(table.c.day >= f"{month.label}-01", table.c.day <= f"{month.label}-31")


def rewrite_days(session: Session, month: Period, enterprise_ids: set[int] | None) -> None:
    """Replace the enterprise-day rows of ``month``'s days (of ``enterprise_ids``; None: all)."""
    fresh = compute.day_rows(session, month, enterprise_ids)
    for name, model in DAY_MODELS.items():
        table = _table(model)
        condition = _days_of(table, month)
        if enterprise_ids is not None:
            condition = and_(condition, table.c.enterprise_id.in_(sorted(enterprise_ids)))
        session.execute(delete(table).where(condition))
        rows = [{"enterprise_id": ent, "day": day, **values} for (ent, day), values in fresh[name].items()]
        if rows:
            session.execute(insert(table), rows)


def rewrite_spans(session: Session, touched: dict[int, datetime]) -> None:
    """The spans of the touched boxes from the earliest changed moment on.

    A span that ended before that moment is unchanged (its end is a later change, untouched);
    every span reaching it or later is deleted and made again from the colour history, from the
    start of the first deleted one (spans kept at that start, ties in time, are not made twice).
    """
    table = _table(ColourSpan)
    boxes = sorted(touched)
    for i in range(0, len(boxes), BOX_CHUNK):
        chunk = boxes[i : i + BOX_CHUNK]
        since = min(touched[b] for b in chunk)
        reaching = and_(table.c.box_id.in_(chunk), or_(table.c.ended_at.is_(None), table.c.ended_at >= since))
        first = session.scalar(select(func.min(table.c.started_at)).where(reaching))
        session.execute(delete(table).where(reaching))
        lower = since if first is None or since < first else first
        kept: set[int] = set(
            session.scalars(
                select(table.c.colour_change_id).where(table.c.box_id.in_(chunk), table.c.started_at >= lower)
            )
        )
        rows = [
            {"colour_change_id": cid, **span}
            for cid, span in compute.span_rows(session, chunk, since=lower).items()
            if cid not in kept
        ]
        if rows:
            session.execute(insert(table), rows)


# ---------------------------------------------------------------- rebuild and verify


def _box_chunks(session: Session, size: int) -> Iterator[list[int]]:
    ids = list(session.scalars(select(ColourChange.box_id).distinct().order_by(ColourChange.box_id)))
    ids = sorted(set(ids) | set(session.scalars(select(ColourSpan.box_id).distinct())))
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def stored_months(session: Session, days: bool = True) -> list[Period]:
    labels: set[str] = set()
    for model in MONTH_MODELS.values():
        labels |= set(session.scalars(select(_table(model).c.month).distinct()))
    for model in DAY_MODELS.values() if days else ():  # a day row left where its month has none is still checked
        day_labels: list[str] = list(session.scalars(select(_table(model).c.day).distinct()))
        labels |= {day[:7] for day in day_labels}
    return [Period.parse(label) for label in sorted(labels)]


def all_months(session: Session, days: bool = True) -> list[Period]:
    return sorted(
        set(compute.months_with_data(session)) | set(stored_months(session, days)), key=lambda p: (p.year, p.number)
    )


def rebuild_steps(
    session: Session, box_chunk: int = BOX_CHUNK, days: bool = True
) -> Iterator[tuple[str, Callable[[], int]]]:
    """The rebuild of every roll-up from the raw records, as steps (a month, a chunk of boxes):
    the CLI runs each in its own transaction, so a city rebuilds in bounded ones."""

    def month_step(month: Period) -> Callable[[], int]:
        def run() -> int:
            rewrite_month(session, month, None, days)
            return 1

        return run

    def box_step(ids: list[int]) -> Callable[[], int]:
        def run() -> int:
            table = _table(ColourSpan)
            session.execute(delete(table).where(table.c.box_id.in_(ids)))
            rows = [{"colour_change_id": cid, **span} for cid, span in compute.span_rows(session, ids).items()]
            if rows:
                session.execute(insert(table), rows)
            return len(ids)

        return run

    for month in all_months(session, days):
        yield month.label, month_step(month)
    for ids in list(_box_chunks(session, box_chunk)):
        yield f"boxes {ids[0]}–{ids[-1]}", box_step(ids)


def rebuild(session: Session, box_chunk: int = BOX_CHUNK, days: bool = True) -> int:
    """Every step in the caller's transaction (tests, the migrations' backfills; ``days=False``:
    one older than the day tables, whose own migration fills them)."""
    return sum(step() for _, step in rebuild_steps(session, box_chunk, days))


def _stored_month_rows(session: Session, name: str, month: Period) -> compute.Rows:
    table = _table(MONTH_MODELS[name])
    keys = KEYS[name]
    values = [c.name for c in table.columns if c.name not in keys and c.name != "month"]
    out: compute.Rows = {}
    for row in session.execute(select(table).where(table.c.month == month.label)).mappings():
        out[tuple(row[k] for k in keys)] = {v: row[v] for v in values}
    return out


def _stored_day_rows(session: Session, name: str, month: Period) -> compute.Rows:
    table = _table(DAY_MODELS[name])
    values = [c.name for c in table.columns if c.name not in ("enterprise_id", "day")]
    return {
        (row["enterprise_id"], row["day"]): {v: row[v] for v in values}
        for row in session.execute(select(table).where(_days_of(table, month))).mappings()
    }


def _diff(where: str, stored: dict, fresh: dict) -> list[str]:
    out = []
    for key in sorted(set(stored) | set(fresh), key=repr):
        have, want = stored.get(key), fresh.get(key)
        if have != want:
            out.append(f"{where} {key}: stored {have} != recomputed {want}")
    return out


def verify(session: Session, box_chunk: int = BOX_CHUNK) -> list[str]:
    """Every difference between the stored roll-ups and their recomputation, one line each."""
    problems: list[str] = []
    for month in all_months(session):
        fresh = compute.month_rows(session, month, None)
        for name in MONTH_MODELS:
            problems += _diff(f"{name} {month.label}", _stored_month_rows(session, name, month), fresh[name])
        fresh_days = compute.day_rows(session, month, None)
        for name in DAY_MODELS:
            problems += _diff(f"{name} {month.label}", _stored_day_rows(session, name, month), fresh_days[name])
    table = _table(ColourSpan)
    for ids in _box_chunks(session, box_chunk):
        stored = {
            row["colour_change_id"]: {k: row[k] for k in ("box_id", "colour", "started_at", "ended_at", "seconds")}
            for row in session.execute(select(table).where(table.c.box_id.in_(ids))).mappings()
        }
        problems += _diff("rollup_colour_spans", stored, compute.span_rows(session, ids))
    return problems
