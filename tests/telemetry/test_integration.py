"""Integrated adsorption: maths (gaps, stopped fans, out-of-order, order independence) and the
per-box state through ingest (late readings, a new fill restarts the integral, sensor saturation)."""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.boxes.services import record_fill
from app.extensions import db
from app.telemetry.integration import Point, SortedNeighbours, merge, rate_kg_h, total_kg, update_load
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


def _ingest_in_batches(points, batches, cap=CAP):
    """Feed batches through ``merge`` the way ingest does; return the running integral."""
    stored: list[Point] = []
    last, total = None, 0.0
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
    return total, last


def test_a_late_reading_replaces_exactly_one_interval():
    early = [Point(at(0), 1.0), Point(at(8), 2.0), Point(at(20), 3.0)]
    late = [Point(at(4), 0.0), Point(at(14), 6.0)]
    total, last = _ingest_in_batches(early + late, [early, late])
    assert total == pytest.approx(total_kg(early + late, CAP))
    assert last == Point(at(20), 3.0)


@settings(max_examples=150, deadline=None)
@given(
    minutes=st.lists(st.integers(min_value=0, max_value=240), min_size=1, max_size=25, unique=True),
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
    total, last = _ingest_in_batches(points, batches)
    assert total == pytest.approx(total_kg(points, CAP), rel=1e-9, abs=1e-9)
    assert last == max(points, key=lambda p: p.ts)


def test_measured_load_is_a_time_weighted_mean_from_the_start():
    # One hour at 1 kg/h → 24 kg/d immediately (bias-corrected), then it moves towards 0.
    load, weight = update_load(0.0, 0.0, [(1.0, 600.0)] * 6, tau_h=24)
    assert load == pytest.approx(24.0)
    lower, _ = update_load(load, weight, [(0.0, 600.0)] * 6, tau_h=24)
    assert 0 < lower < 24.0 and lower == pytest.approx(12.0, rel=0.05)


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
    assert post_readings(api, gateway, [reading(code, _minutes_ago(now, m)) for m in (90, 80)]).get_json()["accepted"] == 2
    record_fill(db.session, factories.op_principal(), sensor_box,
                {"mass_kg": 1000.0, "iodine_mg_g": 950.0, "removed_waste_kg": 2100.0,
                 "filled_at": _minutes_ago(now, 100)})
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
    _fill(db.session, factories.op_principal(), box, {"mass_kg": 100.0, "iodine_mg_g": 950.0, "removed_waste_kg": 90.0,
                                                      "filled_at": utc_now() - timedelta(hours=5)})
    db.session.commit()
    now = utc_now()
    batch = [reading(box.code, now - timedelta(minutes=m), airflow_m3_h=15000.0) for m in range(240, -1, -5)]
    assert post_readings(api, gateway, batch).get_json()["accepted"] == len(batch)
    body = api.get(f"/api/v1/boxes/{box.code}", as_="ent").get_json()
    assert body["saturation_basis"] == "sensor"
    assert body["adsorbed_kg"] == pytest.approx(4.8, abs=0.05)
    assert body["saturation"] == pytest.approx(0.48, abs=0.005)
    # Remaining 5.2 kg at the measured 28.8 kg/d → about 0.18 d: yellow (due within 7 days).
    predicted = datetime.fromisoformat(body["predicted_replacement_at"])
    assert (predicted - utc_now()).total_seconds() / 86400 == pytest.approx(5.2 / 28.8, abs=0.01)
    assert body["colour"] == "yellow"
    assert "replacement_due_soon" in [r["code"] for r in body["reasons"]]
