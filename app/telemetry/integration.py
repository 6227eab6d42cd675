"""Integrated adsorption: Σ (C_in − C_out) × Q × Δt × 10⁻⁶ kg, incrementally and order-independently.

Model (documented product decisions):
- zero-order hold: a reading's adsorption rate r = max(C_in − C_out, 0) × Q × 10⁻⁶ kg/h holds
  from its timestamp until the box's next reading, for at most ``cap_s`` seconds. The remainder
  of a longer gap counts as no adsorption: nothing is known about it, and the silence alarms
  (24 h yellow, 72 h red) make long gaps visible instead of guessing;
- a stopped fan (``running`` false) has r = 0; outlet above inlet (desorption or sensor noise)
  counts as r = 0, so a noisy outlet can never make a loaded box look fresh;
- only readings at or after the fill's time belong to the fill's integral.

The integral is Σ over consecutive readings (a, b) of hold(a, b) = r_a × min(t_b − t_a, cap). It
depends only on the set of readings, not on arrival order. A late reading x landing between stored
neighbours p and n replaces hold(p, n) with hold(p, x) + hold(x, n): constant work, two index
look-ups. The newest reading's interval is open; evaluation adds r_last × min(now − t_last, cap).

Measured load (for the predicted replacement date): the adsorbed kg of the last
``LOAD_WINDOW_H`` clock hours of the fill's readings divided by the window's length, where the
window ends at the newest reading T and starts at the later of the fill's time and the start
of the hour (LOAD_WINDOW_H − 1) hours before T's hour (so it spans 23–24 h once the fill is a
day old). The kg are those of the integral: gaps beyond the cap and stopped fans contribute
0 kg but still count as time. Ingest keeps a small ring per box, (hour, kg, held seconds) of
the intervals that start in each hour of the window; like the integral, it depends only on the
set of readings. When the readings' held time in the window ("covered" time, stopped fans
included: they are known to adsorb nothing) is under the colour rules' ``measured_load:
min_covered_hours`` (``app/data/colour_rules.yaml``; ``LOAD_MIN_COVERED_S`` is the shipped value),
there is too little data and the prediction uses the design load instead.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from operator import itemgetter
from typing import NamedTuple, Protocol


class Point(NamedTuple):  # a tuple: one is made per reading, so it must be cheap
    ts: datetime
    rate_kg_h: float


def rate_kg_h(inlet_mg_m3: float, outlet_mg_m3: float, airflow_m3_h: float, running: bool) -> float:
    if not running:
        return 0.0
    removed = inlet_mg_m3 - outlet_mg_m3
    return removed * airflow_m3_h * 1e-6 if removed > 0 else 0.0


def held_seconds(t0: datetime, t1: datetime, cap_s: float) -> float:
    return max(min((t1 - t0).total_seconds(), cap_s), 0.0)


def hold_kg(p: Point, t_next: datetime, cap_s: float) -> float:
    return p.rate_kg_h * held_seconds(p.ts, t_next, cap_s) / 3600.0


def total_kg(points: Iterable[Point], cap_s: float) -> float:
    """The reference sum over readings in any order (used by rebuilds and by the tests)."""
    ordered = sorted(points, key=lambda p: p.ts)
    return sum(hold_kg(a, b.ts, cap_s) for a, b in pairwise(ordered))


HOUR = timedelta(hours=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
HOUR_US = 3_600_000_000
_TS = itemgetter(0)


def epoch_us(ts: datetime) -> int:
    """An aware datetime as whole microseconds since the epoch: differences of these divided by
    10⁶ are exactly ``timedelta.total_seconds()`` of the datetimes' difference."""
    return (ts - _EPOCH) // _MICROSECOND


def hour_of(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


class Neighbours(Protocol):
    """Stored readings of the fill (including the batch's new ones) around a timestamp."""

    def before(self, ts: datetime) -> Point | None: ...

    def after(self, ts: datetime) -> Point | None: ...


@dataclass
class Merge:
    delta_kg: float = 0.0
    by_hour: dict[datetime, float] = field(default_factory=dict)  # kg per hour of the interval start
    last: Point | None = None
    covered_by_hour: dict[datetime, float] = field(default_factory=dict)  # held seconds, likewise

    def add(self, p: Point, kg: float, held_s: float = 0.0) -> None:
        if kg:
            self.delta_kg += kg
            hour = hour_of(p.ts)
            self.by_hour[hour] = self.by_hour.get(hour, 0.0) + kg
        if held_s:
            hour = hour_of(p.ts)
            self.covered_by_hour[hour] = self.covered_by_hour.get(hour, 0.0) + held_s


def merge(last: Point | None, new: list[Point], neighbours: Neighbours, cap_s: float) -> Merge:
    """Add ``new`` readings (sorted, not yet integrated, all at or after the fill's time) to an
    integral whose newest reading is ``last``. ``neighbours`` sees the stored readings, new ones
    included; it is asked only about readings older than ``last`` (late arrivals). ``new`` may
    hold plain ``(ts, rate_kg_h)`` tuples. (Ingest extends the chain with
    :func:`app.telemetry.services.integrate_in_order`, the same sums in one pass with the load,
    and comes here for its late readings only.)"""
    out = Merge(last=last)
    # ``new`` is sorted: the late readings come first, then one equal to ``last`` (already
    # integrated), then the tail.
    if last is None or not new or new[0][0] > last.ts:
        late, first_tail = [], 0
    else:
        late = [Point(*p) for p in new[: bisect_left(new, last.ts, key=_TS)]]
        first_tail = bisect_right(new, last.ts, key=_TS)
    tail = new[first_tail:] if first_tail else new
    # Late readings: runs of consecutive new readings between two stored ones.
    i = 0
    while i < len(late):
        run = [late[i]]
        after = neighbours.after(late[i].ts)
        while i + 1 < len(late) and after is not None and after.ts == late[i + 1].ts:
            i += 1
            run.append(late[i])
            after = neighbours.after(late[i].ts)
        before = neighbours.before(run[0].ts)
        if before is not None:
            if after is not None:
                out.add(before, -hold_kg(before, after.ts, cap_s), -held_seconds(before.ts, after.ts, cap_s))
            out.add(before, hold_kg(before, run[0].ts, cap_s), held_seconds(before.ts, run[0].ts, cap_s))
        for a, b in pairwise(run):
            out.add(a, hold_kg(a, b.ts, cap_s), held_seconds(a.ts, b.ts, cap_s))
        if after is not None:
            out.add(run[-1], hold_kg(run[-1], after.ts, cap_s), held_seconds(run[-1].ts, after.ts, cap_s))
        i += 1
    # Newer than everything integrated: extend the chain from ``last`` (kg are summed per hour
    # in a local and handed over when the hour changes).
    if not tail:
        return out
    prev_ts, prev_rate = (last.ts, last.rate_kg_h) if last is not None else (None, 0.0)
    # No hour yet: the empty interval [epoch, epoch) is left at the first reading.
    hour, hour_end, hour_kg, hour_s = _EPOCH, _EPOCH, 0.0, 0.0
    by_hour, covered = out.by_hour, out.covered_by_hour
    for ts, rate in tail:
        if prev_ts is not None:
            held = (ts - prev_ts).total_seconds()
            if held > cap_s:
                held = cap_s
            if not hour <= prev_ts < hour_end:
                if hour_kg:
                    by_hour[hour] = by_hour.get(hour, 0.0) + hour_kg
                    out.delta_kg += hour_kg
                if hour_s:
                    covered[hour] = covered.get(hour, 0.0) + hour_s
                hour = hour_of(prev_ts)
                hour_end, hour_kg, hour_s = hour + HOUR, 0.0, 0.0
            hour_kg += prev_rate * held / 3600.0
            hour_s += held
        prev_ts, prev_rate = ts, rate
    if hour_kg:
        by_hour[hour] = by_hour.get(hour, 0.0) + hour_kg
        out.delta_kg += hour_kg
    if hour_s:
        covered[hour] = covered.get(hour, 0.0) + hour_s
    assert prev_ts is not None  # the tail is not empty
    out.last = Point(prev_ts, prev_rate)
    return out


LOAD_WINDOW_H = 24
LOAD_MIN_COVERED_S = 3600.0


def _hour_key(hour: datetime) -> int:
    return epoch_us(hour) // 1_000_000


def window_start_hour(newest: datetime, window_h: int = LOAD_WINDOW_H) -> datetime:
    return hour_of(newest) - (window_h - 1) * HOUR


def ring_add(
    ring: list | None,
    kg_by_hour: dict[datetime, float],
    covered_by_hour: dict[datetime, float],
    newest: datetime | None,
    window_h: int = LOAD_WINDOW_H,
) -> list[list]:
    """The load ring (sorted ``[hour as epoch seconds, kg, held seconds]``) with a batch's sums
    added, keeping only the hours of the window that ends at ``newest`` (the newest integrated
    reading). Hours before the window never come back: the newest reading only moves forward."""
    acc: dict[int, list] = {int(h): [float(kg), float(sec)] for h, kg, sec in (ring or ())}
    for hour, kg in kg_by_hour.items():
        acc.setdefault(_hour_key(hour), [0.0, 0.0])[0] += kg
    for hour, sec in covered_by_hour.items():
        acc.setdefault(_hour_key(hour), [0.0, 0.0])[1] += sec
    if newest is None:
        return []
    first = _hour_key(window_start_hour(newest, window_h))
    return [[h, kg, sec] for h, (kg, sec) in sorted(acc.items()) if h >= first]


@dataclass(frozen=True)
class MeasuredLoad:
    kg_per_day: float | None  # None: too little data in the window, use the design load
    adsorbed_kg: float
    covered_s: float
    window_s: float


def window_load(
    ring: list | None,
    newest: datetime | None,
    fill_started_at: datetime | None,
    window_h: int = LOAD_WINDOW_H,
    min_covered_s: float = LOAD_MIN_COVERED_S,
) -> MeasuredLoad:
    """The measured load over the window ending at ``newest`` (see the module's docstring)."""
    if newest is None:
        return MeasuredLoad(None, 0.0, 0.0, 0.0)
    start_hour = window_start_hour(newest, window_h)
    first = _hour_key(start_hour)
    kg = sum(k for h, k, _ in ring or () if h >= first)
    covered = sum(sec for h, _, sec in ring or () if h >= first)
    start = max(start_hour, fill_started_at) if fill_started_at is not None else start_hour
    length = (newest - start).total_seconds()
    if covered < min_covered_s or length <= 0:
        return MeasuredLoad(None, kg, covered, max(length, 0.0))
    return MeasuredLoad(max(kg, 0.0) / length * 86400.0, kg, covered, length)


class SortedNeighbours:
    """In-memory :class:`Neighbours` over a list of points (rebuilds and tests)."""

    def __init__(self, points: Iterable[Point]):
        self.points = sorted(points, key=lambda p: p.ts)

    def before(self, ts: datetime) -> Point | None:
        import bisect

        i = bisect.bisect_left([p.ts for p in self.points], ts)
        return self.points[i - 1] if i > 0 else None

    def after(self, ts: datetime) -> Point | None:
        import bisect

        i = bisect.bisect_right([p.ts for p in self.points], ts)
        return self.points[i] if i < len(self.points) else None


def load_window_facts(load: MeasuredLoad, min_covered_s: float) -> dict[str, float]:
    """What the prediction's load was judged on, as the box's reads show it (stored with the colour)."""
    return {
        "hours": round(load.window_s / 3600, 3),
        "covered_hours": round(load.covered_s / 3600, 3),
        "min_covered_hours": min_covered_s / 3600,
        "adsorbed_kg": round(load.adsorbed_kg, 6),
    }
