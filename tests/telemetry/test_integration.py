"""Integrated adsorption: maths (gaps, stopped fans, out-of-order, order independence) and the
per-box state through ingest (late readings, a new fill restarts the integral, sensor saturation)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.boxes.services import record_fill
from app.extensions import db
from app.telemetry.integration import (
    Point,
    SortedNeighbours,
    hour_of,
    merge,
    rate_kg_h,
    ring_add,
    total_kg,
    window_load,
)
from app.telemetry.models import ReadingHour
from tests import factories
from tests.telemetry.builders import RATE_KG_H, post_readings, reading, state_of, utc_now

T0 = datetime(2026, 3, 1, tzinfo=UTC)
CAP = 600.0


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_rate_counts_removed_mass_of_a_running_fan_only():
    assert rate_kg_h(100, 20, 15000, True) == pytest.approx(1.2)  # 80 mg/m³ × 15000 m³/h
    assert rate_kg_h(100, 20, 15000, False) == 0.0
    assert rate_kg_h(20, 100, 15000, True) == 0.0  # outlet above inlet never un-loads the carbon


def test_each_reading_holds_until_the_next_capped_for_gaps():
    points = [Point(at(0), 1.2), Point(at(1), 1.2), Point(at(61), 0.6), Point(at(66), 0.0)]
    # 1 min at 1.2, then a 60-min gap counted for 10 min only, then 5 min at 0.6.
    assert total_kg(points, CAP) == pytest.approx(1.2 / 60 + 1.2 * 10 / 60 + 0.6 * 5 / 60)


def _reference_ring(points, cap=CAP):
    """The load ring straight from the set of readings: kg and held seconds per hour."""
    ordered = sorted(points, key=lambda p: p.ts)
    kg, covered = {}, {}
    for a, b in pairwise(ordered):
        held = min((b.ts - a.ts).total_seconds(), cap)
        kg[hour_of(a.ts)] = kg.get(hour_of(a.ts), 0.0) + a.rate_kg_h * held / 3600
        covered[hour_of(a.ts)] = covered.get(hour_of(a.ts), 0.0) + held
    return ring_add([], kg, covered, ordered[-1].ts if ordered else None)


def _ingest_in_batches(points, batches, cap=CAP, rings=None):
    """Feed batches through ``merge`` the way ingest does; return the running integral (and, in
    ``rings``, the load ring kept as ingest keeps it)."""
    stored: list[Point] = []
    last, total = None, 0.0
    ring: list = []
    for batch in batches:
        known = {s.ts for s in stored}
        # Like ingest: a reading already stored, or twice in the batch, is a duplicate.
        new = sorted({p.ts: p for p in batch if p.ts not in known}.values(), key=lambda p: p.ts)
        stored.extend(new)
        result = merge(last, new, SortedNeighbours(stored), cap)
        total += result.delta_kg
        by_hour = sum(result.by_hour.values())
        assert by_hour == pytest.approx(result.delta_kg, abs=1e-9)
        last = result.last
        if new:
            ring = ring_add(ring, result.by_hour, result.covered_by_hour, last.ts if last else None)
    if rings is not None:
        rings.append(ring)
    return total, last


def test_a_late_reading_replaces_exactly_one_interval():
    early = [Point(at(0), 1.0), Point(at(8), 2.0), Point(at(20), 3.0)]
    late = [Point(at(4), 0.0), Point(at(14), 6.0)]
    total, last = _ingest_in_batches(early + late, [early, late])
    assert total == pytest.approx(total_kg(early + late, CAP))
    assert last == Point(at(20), 3.0)


@settings(max_examples=150, deadline=None)
@given(
    minutes=st.lists(st.integers(min_value=0, max_value=48 * 60), min_size=1, max_size=25, unique=True),
    rates=st.lists(st.floats(min_value=0, max_value=5), min_size=25, max_size=25),
    seed=st.integers(min_value=0, max_value=10_000),
    cuts=st.integers(min_value=1, max_value=6),
)
def test_any_order_and_batching_gives_the_same_integral(minutes, rates, seed, cuts):
    points = [Point(at(m), rates[i]) for i, m in enumerate(minutes)]
    shuffled = points[:]
    rng = random.Random(seed)
    rng.shuffle(shuffled)
    # Random batch boundaries, and some readings sent twice (re-sent batches).
    bounds = sorted(rng.sample(range(1, len(shuffled) + 1), min(cuts, len(shuffled))))
    batches, begin = [], 0
    for end in bounds:
        batches.append(shuffled[begin:end] + rng.sample(points, min(2, len(points))))
        begin = end
    batches.append(shuffled[begin:])
    rings: list = []
    total, last = _ingest_in_batches(points, batches, rings=rings)
    assert total == pytest.approx(total_kg(points, CAP), rel=1e-9, abs=1e-9)
    assert last == max(points, key=lambda p: p.ts)
    # The measured load too: the ring (hence the load) is that of the set of readings.
    expected = _reference_ring(points)
    got = window_load(rings[0], last.ts, T0)
    want = window_load(expected, last.ts, T0)
    assert got.adsorbed_kg == pytest.approx(want.adsorbed_kg, rel=1e-9, abs=1e-9)
    assert got.covered_s == pytest.approx(want.covered_s, rel=1e-9, abs=1e-6)
    assert got.window_s == want.window_s
    assert (got.kg_per_day is None) == (want.kg_per_day is None)
    if want.kg_per_day is not None:
        assert got.kg_per_day == pytest.approx(want.kg_per_day, rel=1e-9, abs=1e-9)


def test_measured_load_is_kg_over_time_with_gaps_counted_as_time():
    # 24 readings 30 min apart at 1.8 kg/h: each holds 10 min, so 0.3 kg per half hour.
    points = [Point(at(30 * i), 1.8) for i in range(24)]
    ring = _reference_ring(points)
    load = window_load(ring, points[-1].ts, T0)
    assert load.adsorbed_kg == pytest.approx(23 * 0.3)
    assert load.window_s == 11.5 * 3600 and load.covered_s == 23 * 600
    assert load.kg_per_day == pytest.approx(0.6 * 24)  # not 1.8 × 24: the gaps adsorbed nothing
    # A stopped fan is known time at 0 kg; under an hour of held time is too little data.
    assert window_load(_reference_ring(points[:6]), points[5].ts, T0).kg_per_day is None
    stopped = [Point(at(m), 0.0) for m in range(0, 120, 5)]
    assert window_load(_reference_ring(stopped), stopped[-1].ts, T0).kg_per_day == 0.0
    # Only the last 24 clock hours count: two days, the first at 2 kg/h, the second at 1 kg/h.
    days = [Point(at(m), 2.0 if m < 24 * 60 else 1.0) for m in range(0, 48 * 60, 10)]
    load = window_load(_reference_ring(days), days[-1].ts, T0)
    assert load.kg_per_day == pytest.approx(24.0, rel=0.01)


# ---------------------------------------------------------------- through ingest


def _minutes_ago(now, m):
    return now - timedelta(minutes=m)


def test_out_of_order_batches_integrate_like_one_batch(api, world, sensor_box, gateway):
    now = utc_now()
    code = sensor_box.code
    minutes = [60, 55, 50, 40, 35, 20, 10, 5]
    outlets = {60: 20, 55: 40, 50: 10, 40: 20, 35: 90, 20: 20, 10: 60, 5: 20}  # 35: outlet above inlet
    readings = {m: reading(code, _minutes_ago(now, m), outlet_mg_m3=outlets[m], running=m != 50) for m in minutes}
    in_order = [Point(_minutes_ago(now, m), rate_kg_h(100, outlets[m], 5000, m != 50)) for m in minutes]
    for batch in ([60, 40, 10], [5, 55], [35, 50, 20]):
        body = post_readings(api, gateway, [readings[m] for m in batch]).get_json()
        assert body["accepted"] == len(batch), body
    state = state_of(sensor_box.id)
    assert state.adsorbed_kg == pytest.approx(total_kg(in_order, CAP), rel=1e-9)
    assert state.last_integrated_ts == _minutes_ago(now, 5)
    hours = db.session.query(ReadingHour).filter_by(box_id=sensor_box.id).all()
    assert sum(h.adsorbed_kg for h in hours) == pytest.approx(state.adsorbed_kg, rel=1e-9)
    assert sum(h.count for h in hours) == 8
    # The box shows the integral plus the open interval of the newest reading (5 min so far).
    box = api.get(f"/api/v1/boxes/{code}", as_="ent").get_json()
    assert box["saturation_basis"] == "sensor"
    open_kg = RATE_KG_H * ((utc_now() - _minutes_ago(now, 5)).total_seconds() / 3600)
    assert box["adsorbed_kg"] == pytest.approx(state.adsorbed_kg + open_kg, abs=RATE_KG_H * 5 / 3600)
    assert box["latest_reading"]["outlet_mg_m3"] == 20


def test_a_new_fill_restarts_the_integral(api, world, sensor_box, gateway):
    now = utc_now()
    code = sensor_box.code
    first = [reading(code, _minutes_ago(now, m)) for m in (120, 115, 110)]
    assert post_readings(api, gateway, first).get_json()["accepted"] == 3
    assert state_of(sensor_box.id).adsorbed_kg == pytest.approx(RATE_KG_H * 10 / 60)
    # A replacement back-dated to 100 min ago, recorded after readings at 90 and 80 min arrived.
    assert (
        post_readings(api, gateway, [reading(code, _minutes_ago(now, m)) for m in (90, 80)]).get_json()["accepted"] == 2
    )
    record_fill(
        db.session,
        factories.op_principal(),
        sensor_box,
        {"mass_kg": 1000.0, "iodine_mg_g": 950.0, "removed_waste_kg": 2100.0, "filled_at": _minutes_ago(now, 100)},
    )
    db.session.commit()
    state = state_of(sensor_box.id)
    assert state.fill_started_at == _minutes_ago(now, 100)
    assert state.adsorbed_kg == pytest.approx(RATE_KG_H * 10 / 60)  # 90 → 80 only
    # A late reading from before the fill belongs to the old carbon: it does not count.
    body = post_readings(api, gateway, [reading(code, _minutes_ago(now, 105)), reading(code, _minutes_ago(now, 75))])
    assert body.get_json()["accepted"] == 2
    assert state_of(sensor_box.id).adsorbed_kg == pytest.approx(RATE_KG_H * 15 / 60)
    box = api.get(f"/api/v1/boxes/{code}", as_="ent").get_json()
    assert box["capacity_kg"] == pytest.approx(100.0)  # 1000 kg × S 0.10
    assert box["current_fill"]["mass_kg"] == 1000.0


def test_saturation_and_prediction_follow_the_measured_load(api, world, gateway):
    from tests.telemetry.builders import make_sensor_box

    box = make_sensor_box(world, filled_days_ago=1, design_fill_kg=100.0)
    # A small fill: 10 kg capacity. Readings for 4 h at 1.2 kg/h (airflow 15000) → 4.8 kg.
    from app.boxes.services import record_fill as _fill

    _fill(
        db.session,
        factories.op_principal(),
        box,
        {"mass_kg": 100.0, "iodine_mg_g": 950.0, "removed_waste_kg": 90.0, "filled_at": utc_now() - timedelta(hours=5)},
    )
    db.session.commit()
    now = utc_now()
    batch = [reading(box.code, now - timedelta(minutes=m), airflow_m3_h=15000.0) for m in range(240, -1, -5)]
    assert post_readings(api, gateway, batch).get_json()["accepted"] == len(batch)
    body = api.get(f"/api/v1/boxes/{box.code}", as_="ent").get_json()
    assert body["saturation_basis"] == "sensor"
    assert body["adsorbed_kg"] == pytest.approx(4.8, abs=0.05)
    assert body["saturation"] == pytest.approx(0.48, abs=0.005)
    # The window runs from the fill (5 h ago, the first hour without readings counts as time at
    # 0 kg) to the newest reading: 4.8 kg in 5 h = 23.04 kg/d; 5.2 kg remain → about 0.23 d.
    assert body["load_basis"] == "measured"
    assert body["load_kg_per_day"] == pytest.approx(4.8 / 5 * 24, rel=0.01)
    predicted = datetime.fromisoformat(body["predicted_replacement_at"])
    assert (predicted - utc_now()).total_seconds() / 86400 == pytest.approx(5.2 / 23.04, abs=0.01)
    assert body["colour"] == "yellow"
    assert "replacement_due_soon" in [r["code"] for r in body["reasons"]]


def test_sparse_readings_predict_from_kg_over_time_not_per_reading(api, world, gateway):
    """The black-box report: 24 readings 30 min apart over 12 h (inlet 200, outlet 20 mg/m³,
    10,000 m³/h = 1.8 kg/h while a reading holds) adsorb 7.2 kg; the load is ≈ 0.6 kg/h."""
    from tests.telemetry.builders import make_sensor_box

    now = utc_now()
    box = make_sensor_box(world, filled_days_ago=0.5 + 1 / 1440)
    first = now - timedelta(hours=12)
    items = [
        reading(box.code, first + timedelta(minutes=30 * i), inlet_mg_m3=200.0, outlet_mg_m3=20.0, airflow_m3_h=10000.0)
        for i in range(24)
    ]
    assert post_readings(api, gateway, items).get_json()["accepted"] == 24
    body = api.get(f"/api/v1/boxes/{box.code}", as_="ent").get_json()
    assert body["adsorbed_kg"] == pytest.approx(7.2, abs=1e-6)
    assert body["load_basis"] == "measured"
    # 6.9 kg of closed intervals in the 11.5 h (and a minute) from the fill to the newest reading.
    assert body["load_kg_per_day"] / 24 == pytest.approx(0.6, rel=0.01)
    hours = (datetime.fromisoformat(body["predicted_replacement_at"]) - now).total_seconds() / 3600
    assert hours == pytest.approx((200.0 - 7.2) / 0.6, rel=0.02)  # ≈ 321 h, not 107 h at 1.8 kg/h
    # Three readings (20 min held) are too little data: the design load, and said so.
    other = make_sensor_box(world, facility_code="TA009")
    items = [reading(other.code, now - timedelta(minutes=m)) for m in (20, 10, 0)]
    assert post_readings(api, gateway, items).get_json()["accepted"] == 3
    body = api.get(f"/api/v1/boxes/{other.code}", as_="ent").get_json()
    assert body["load_basis"] == "design" and body["load_kg_per_day"] == pytest.approx(body["design_daily_load_kg"])
