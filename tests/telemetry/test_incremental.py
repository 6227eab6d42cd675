"""Colour changes after ingest and the sweep (issue 12): every box's stored colour and reasons
after a batch are those a full evaluation gives, for any sequence of batches; sensor state exists
from registration; the sweep replays only boxes whose colour changed; the COPY path stores exactly
what the executemany path stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.boxes import services as box_services
from app.boxes.models import Box
from app.extensions import db
from app.telemetry import services
from app.telemetry.models import BoxSensorState, SensorReading
from app.telemetry.services import ingestion
from tests import factories
from tests.telemetry.builders import BASE, colour_history, make_sensor_box, reading, shown, utc_now

# Values on both sides of the sensor rules' thresholds (emission limit, bed 83 °C, inlet 40 °C,
# pressure band 300–1200 Pa, efficiency 70 % above 10 mg/m³ inlet) and a stopped fan.
READING = st.fixed_dictionaries(
    {
        "outlet_mg_m3": st.sampled_from([5.0, 20.0, 95.0]),
        "inlet_mg_m3": st.sampled_from([5.0, 100.0, 400.0]),
        "bed_temp_c": st.sampled_from([30.0, 90.0]),
        "inlet_temp_c": st.sampled_from([30.0, 45.0]),
        "pressure_drop_pa": st.sampled_from([800.0, 1500.0]),
        "airflow_m3_h": st.sampled_from([5000.0, 200000.0]),
        "running": st.sampled_from([True, True, False]),
    }
)
# A reading well inside every threshold.
BASE_READING = {k: v for k, v in BASE.items() if k != "rh_pct"}
# A batch: minutes since the previous batch (gaps past the hold cap and the 24 h silence too),
# then readings a minute apart.
BATCH = st.tuples(st.sampled_from([1, 2, 5, 11, 90, 25 * 60]), st.lists(READING, min_size=1, max_size=4))


def _codes(reasons) -> set[str]:
    return {r["code"] for r in reasons or []}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(BATCH, min_size=1, max_size=8))
def test_incremental_colour_equals_a_full_evaluation(world, batches):
    box = make_sensor_box(world, filled_days_ago=6, emission_limit_mg_m3=60.0)
    actor = factories.op_principal()
    t = utc_now() - timedelta(days=5)
    evaluated = []
    for gap, items in batches:
        t += timedelta(minutes=gap)
        body = []
        for values in items:
            body.append(reading(box.code, t, **values))
            t += timedelta(minutes=1)
        now = t
        result = services.ingest(db.session(), actor, body, now=now)
        assert result.accepted == len(body)
        db.session.commit()
        db.session.expire_all()
        stored = db.session.get(Box, box.id)
        full = box_services.evaluate_boxes(db.session(), [stored], now)[box.id]
        assert stored.colour == full.colour
        assert _codes(stored.colour_reasons) == _codes(full.reasons)
        db.session.rollback()
        evaluated.append(full.colour)
    assert evaluated  # (hypothesis reaches red, yellow and green across examples)


def test_registered_boxes_have_a_sensor_state(world):
    box = factories.box(world.enterprise, has_sensors=True)
    db.session.commit()
    state = db.session.get(BoxSensorState, box.id)
    assert state is not None and state.reading_count == 0


def test_the_sweep_replays_only_boxes_whose_colour_changed(world):
    boxes = [make_sensor_box(world) for _ in range(3)]
    actor = factories.op_principal()
    t = utc_now() - timedelta(hours=30)
    services.ingest(db.session(), actor, [reading(b.code, t) for b in boxes], now=t + timedelta(minutes=1))
    db.session.commit()
    # One box keeps reporting; the others fall silent for more than 24 h (yellow by time alone).
    recent = utc_now() - timedelta(minutes=2)
    services.ingest(db.session(), actor, [reading(boxes[0].code, recent)], now=recent)
    db.session.commit()
    replayed = []
    real = box_services.colours.rebuild_history

    def spy(session, box, since, now=None):
        replayed.append(box.id)
        return real(session, box, since, now)

    now = utc_now()
    with mock.patch.object(box_services.colours, "rebuild_history", spy):
        while box_services.refresh_due_chunk(db.session(), now, 500):
            db.session.commit()
    db.session.commit()
    assert sorted(replayed) == sorted(b.id for b in boxes[1:])
    for b in boxes:
        stored = db.session.get(Box, b.id)
        full = box_services.evaluate_boxes(db.session(), [stored], now)[b.id]
        assert (stored.colour, _codes(stored.colour_reasons)) == (full.colour, _codes(full.reasons))
    assert db.session.get(Box, boxes[1].id).colour == "yellow"


def _rows(box_id: int, start: datetime, n: int) -> list[tuple]:
    return [
        (
            box_id,
            start + timedelta(seconds=10 * i),
            100.0 + i,
            20.0,
            5000.0,
            None if i % 3 else 800.0,
            30.0,
            35.5,
            55.0,
            i % 2 == 0,
        )
        for i in range(n)
    ]


def _stored(box_id: int) -> list[tuple]:
    t = SensorReading
    columns = [c for c in SensorReading.__table__.columns if c.key != "box_id"]
    return [tuple(r) for r in db.session.execute(select(*columns).where(t.box_id == box_id).order_by(t.ts))]


@pytest.mark.postgresql_only
def test_copy_stores_exactly_what_executemany_stores(world, session):
    assert session.get_bind().dialect.name == "postgresql"
    a, b = (factories.box(world.enterprise, has_sensors=True) for _ in range(2))
    start = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    assert ingestion.insert_readings(session, _rows(a.id, start, 50), copy=True) is None
    assert ingestion.insert_readings(session, _rows(b.id, start, 50), copy=False) is None
    # Again, overlapping: both tell the same new ones.
    fresh_a = ingestion.insert_readings(session, _rows(a.id, start + timedelta(seconds=400), 50), copy=True)
    fresh_b = ingestion.insert_readings(session, _rows(b.id, start + timedelta(seconds=400), 50), copy=False)
    assert fresh_a is not None and fresh_b is not None and len(fresh_a) == len(fresh_b) == 40
    assert {ts for _, ts in fresh_a} == {ts for _, ts in fresh_b}
    session.commit()
    assert _stored(a.id) == _stored(b.id) and len(_stored(a.id)) == 90


@pytest.mark.postgresql_only
def test_a_copy_the_key_refuses_goes_through_the_stage_and_the_transaction_goes_on(world, session):
    box = factories.box(world.enterprise, has_sensors=True)
    start = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    assert ingestion.insert_readings(session, _rows(box.id, start, 20), copy=True) is None
    # Every row stored already: the COPY into the readings is refused, none is new.
    assert ingestion.insert_readings(session, _rows(box.id, start, 20), copy=True) == set()
    # Again in the same transaction (the stage emptied first), half of them new.
    fresh = ingestion.insert_readings(session, _rows(box.id, start + timedelta(seconds=100), 20), copy=True)
    assert fresh is not None and sorted(ts for _, ts in fresh) == [
        start + timedelta(seconds=10 * i) for i in range(20, 30)
    ]
    session.commit()
    assert [r[0] for r in _stored(box.id)] == [start + timedelta(seconds=10 * i) for i in range(30)]


# ---------------------------------------------------------------- the figures path (issue 12)

# An event: ("batch", minutes since the previous event, readings a minute apart), ("fill",
# minutes): a replacement (its waste on site: a deadline readings do not move), or ("gap",
# minutes): time passes and the sweep runs.
EVENT = st.one_of(
    st.tuples(st.just("batch"), st.sampled_from([1, 2, 5, 11, 90, 25 * 60]), st.lists(READING, min_size=1, max_size=4)),
    # (twice: steady batches, most of a city's, are the figures path's)
    st.tuples(st.just("batch"), st.sampled_from([1, 2]), st.lists(st.just(BASE_READING), min_size=1, max_size=3)),
    st.tuples(st.just("batch"), st.sampled_from([1, 3]), st.lists(st.just(BASE_READING), min_size=1, max_size=3)),
    st.tuples(st.just("fill"), st.sampled_from([3, 60]), st.just([])),
    st.tuples(st.just("gap"), st.sampled_from([30, 26 * 60, 4 * 24 * 60]), st.just([])),
)


def _twin_boxes(world, start: datetime, mass_kg: float = 1000.0) -> tuple[Box, Box]:
    """Two boxes alike: by default 1,000 kg of carbon (100 kg capacity: a few batches at full
    airflow reach the saturation bands) and a small design load (the predicted date is far)."""
    boxes = []
    for i in range(2):
        box = factories.box(
            world.enterprise,
            now=start - timedelta(days=1),
            facility_code=f"TW{i}",
            has_sensors=True,
            pressure_drop_min_pa=300.0,
            pressure_drop_max_pa=1200.0,
            emission_limit_mg_m3=60.0,
            design_removed_mg_m3=8.0,
        )
        box_services.record_fill(
            db.session,
            factories.op_principal(),
            box,
            {
                "mass_kg": mass_kg,
                "iodine_mg_g": 950.0,
                "filled_at": start - timedelta(hours=6),
                "confirm_unusual": True,
            },
            now=start - timedelta(hours=6),
        )
        boxes.append(box)
    db.session.commit()
    return boxes[0], boxes[1]


def _tallied(path):
    """``path`` (a refresh_figures), telling hypothesis's statistics which path the box took."""

    def tallied(session, boxes, *args, **kwargs):
        left = path(session, boxes, *args, **kwargs)
        if path is not _everything_full:
            event("figures path" if len(left) < len(boxes) else "full evaluation")
        return left

    return tallied


def _everything_full(session, boxes, *args, **kwargs):
    return list(boxes)  # no box takes the figures path: the full evaluation for all


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(EVENT, min_size=1, max_size=12))
def test_the_figures_path_stores_what_the_full_evaluation_stores(world, events):
    """Random readings batches, replacements and gaps: the box ingested through the figures path
    has the same stored colour, reasons, saturation, figures and history as its twin, for which
    every batch runs the full evaluation; and its stored evaluation is a full evaluation's."""
    start = utc_now() - timedelta(days=12)
    incremental, full = _twin_boxes(world, start)
    actor = factories.op_principal()
    t = start
    for kind, minutes, items in events:
        t += timedelta(minutes=minutes)
        if kind == "fill":
            for box in (incremental, full):
                fill = {"mass_kg": 1000.0, "iodine_mg_g": 950.0, "filled_at": t, "removed_waste_kg": 40.0}
                box_services.record_fill(db.session, actor, box, {**fill, "confirm_unusual": True}, now=t)
        elif kind == "gap":
            box_services.refresh_due(db.session(), t)
        else:
            first = t
            for box, path in ((incremental, ingestion.refresh_figures), (full, _everything_full)):
                t = first
                body = []
                for values in items:
                    body.append(reading(box.code, t, **values))
                    t += timedelta(minutes=1)
                with mock.patch.object(ingestion, "refresh_figures", _tallied(path)):
                    result = services.ingest(db.session(), actor, body, now=t)
                assert result.accepted == len(body)
        db.session.commit()
        db.session.expire_all()
        a, b = db.session.get(Box, incremental.id), db.session.get(Box, full.id)
        assert shown(a) == shown(b)
        assert [h[:3] for h in colour_history(a.id)] == [h[:3] for h in colour_history(b.id)]
        assert [h[3] for h in colour_history(a.id)] == [h[3] for h in colour_history(b.id)]
        # And what a full evaluation now would store.
        evaluated = box_services.evaluate_boxes(db.session(), [a], t)[a.id]
        assert (a.colour, [r["code"] for r in a.colour_reasons]) == (
            evaluated.colour,
            [r["code"] for r in evaluated.reasons],
        )
        db.session.rollback()


def test_a_steady_batch_takes_the_figures_path_and_reads_show_its_figures(world, api):
    """Green boxes reporting as usual are not evaluated (no refresh_colours for them), yet the box
    API and the scan page show the batch's saturation and latest reading."""
    start = utc_now() - timedelta(hours=3)
    boxes = _twin_boxes(world, start)
    actor = factories.op_principal()
    services.ingest(db.session(), actor, [reading(b.code, start) for b in boxes], now=start)
    db.session.commit()
    later = start + timedelta(minutes=1)
    body = [reading(b.code, later, inlet_mg_m3=150.0) for b in boxes]
    real = ingestion.refresh_colours
    evaluated: list[int] = []

    def spy(session, boxes, *args, **kwargs):
        evaluated.extend(b.id for b in boxes)
        return real(session, boxes, *args, **kwargs)

    with mock.patch.object(ingestion, "refresh_colours", spy):
        services.ingest(db.session(), actor, body, now=later + timedelta(seconds=5))
    db.session.commit()
    assert evaluated == []
    db.session.expire_all()
    for b in boxes:
        stored = db.session.get(Box, b.id)
        assert stored.colour_detail["latest_reading"]["ts"] == later.isoformat()
        assert stored.colour_detail["latest_reading"]["inlet_mg_m3"] == 150.0
        answered = api.get(f"/api/v1/boxes/{b.code}").get_json()
        assert answered["saturation"] == pytest.approx(stored.saturation)
        assert answered["saturation"] > 0
        page = api.client.get(f"/c/{b.code}")
        assert page.status_code == 200
