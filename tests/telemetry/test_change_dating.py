"""A batch's colour changes dated at its one reading without a history replay
(app.telemetry.services.changes): the box ingested that way stores the colour, reasons, figures
and history its twin stores, whose every change is found by replaying its history."""

from __future__ import annotations

from datetime import datetime, timedelta
from unittest import mock

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app.boxes import services as box_services
from app.boxes.models import Box
from app.extensions import db
from app.telemetry import services
from app.telemetry.services import ingestion
from tests import factories
from tests.telemetry.builders import BASE, colour_history, reading, shown, utc_now

# Values on both sides of the sensor rules' thresholds, and a stopped fan.
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
STEADY = {k: v for k, v in BASE.items() if k != "rh_pct"}
# ("batch", minutes since the previous event, readings a minute apart: mostly one, the batches
# the dating takes), ("fill", minutes): a replacement, ("gap", minutes): time passes, the sweep runs.
EVENT = st.one_of(
    st.tuples(
        st.just("batch"), st.sampled_from([1, 2, 11, 90, 25 * 60, 80 * 60]), st.lists(READING, min_size=1, max_size=1)
    ),
    st.tuples(st.just("batch"), st.sampled_from([1, 5, 25 * 60]), st.lists(st.just(STEADY), min_size=1, max_size=1)),
    st.tuples(st.just("batch"), st.sampled_from([1, 30]), st.lists(READING, min_size=2, max_size=3)),
    st.tuples(st.just("fill"), st.sampled_from([3, 60]), st.just([])),
    st.tuples(st.just("gap"), st.sampled_from([30, 26 * 60, 4 * 24 * 60]), st.just([])),
)


def _twin_boxes(world, start: datetime, filled_before: timedelta) -> tuple[Box, Box]:
    boxes = []
    for i in range(2):
        box = factories.box(
            world.enterprise,
            now=start - filled_before - timedelta(days=1),
            facility_code=f"TD{i}",
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
            {"mass_kg": 1000.0, "iodine_mg_g": 950.0, "filled_at": start - filled_before, "confirm_unusual": True},
            now=start - filled_before,
        )
        boxes.append(box)
    db.session.commit()
    return boxes[0], boxes[1]


def _tallied(real):
    def tallied(*args, **kwargs):
        dated = real(*args, **kwargs)
        if dated:
            event("dated at the reading")
        return dated

    return tallied


def _never(*args, **kwargs):
    return {}  # every change found by the replay


def _ingest_both(a: Box, b: Box, t: datetime, items: list[dict], tally: bool = True) -> datetime:
    actor = factories.op_principal()
    first = t
    dated = _tallied(ingestion.dated_at_reading) if tally else ingestion.dated_at_reading
    for box, dating in ((a, dated), (b, _never)):
        t = first
        body = []
        for values in items:
            body.append(reading(box.code, t, **values))
            t += timedelta(minutes=1)
        with mock.patch.object(ingestion, "dated_at_reading", dating):
            result = services.ingest(db.session(), actor, body, now=t)
        assert result.accepted == len(body)
    return t


def _assert_twins(a_id: int, b_id: int, now: datetime) -> None:
    db.session.commit()
    db.session.expire_all()
    a, b = db.session.get(Box, a_id), db.session.get(Box, b_id)
    assert shown(a) == shown(b)
    assert colour_history(a.id) == colour_history(b.id)
    evaluated = box_services.evaluate_boxes(db.session(), [a], now)[a.id]
    assert (a.colour, [r["code"] for r in a.colour_reasons]) == (
        evaluated.colour,
        [r["code"] for r in evaluated.reasons],
    )
    db.session.rollback()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(EVENT, min_size=1, max_size=10), silent_first=st.booleans())
def test_changes_dated_at_the_reading_are_what_the_replay_finds(world, events, silent_first):
    """Random batches, replacements and gaps, from a fill just made or one silent for days (the
    first reading then ends the silence alarm: a change)."""
    start = utc_now() - timedelta(days=14)
    a, b = _twin_boxes(world, start, timedelta(days=4) if silent_first else timedelta(hours=2))
    box_services.refresh_due(db.session(), start)
    db.session.commit()
    t = start
    actor = factories.op_principal()
    for kind, minutes, items in events:
        t += timedelta(minutes=minutes)
        if kind == "fill":
            for box in (a, b):
                fill = {"mass_kg": 1000.0, "iodine_mg_g": 950.0, "filled_at": t, "removed_waste_kg": 40.0}
                box_services.record_fill(db.session, actor, box, {**fill, "confirm_unusual": True}, now=t)
        elif kind == "gap":
            box_services.refresh_due(db.session(), t)
        else:
            t = _ingest_both(a, b, t, items)
        _assert_twins(a.id, b.id, t)


def test_a_silent_boxs_first_reading_is_dated_at_it_without_a_replay(world):
    """A box filled days ago without a reading is red (silence); its first reading turns it
    green, dated at the reading, as the replay dates it, and no history is replayed."""
    start = utc_now() - timedelta(hours=1)
    a, b = _twin_boxes(world, start, timedelta(days=4))
    box_services.refresh_due(db.session(), start)
    db.session.commit()
    assert db.session.get(Box, a.id).colour == "red"
    replayed: list[int] = []
    real = ingestion.rebuild_history

    def spy(session, box, since, now=None):
        replayed.append(box.id)
        return real(session, box, since, now)

    with mock.patch.object(ingestion, "rebuild_history", spy):
        t = _ingest_both(a, b, start + timedelta(minutes=5), [STEADY], tally=False)
    assert replayed == [b.id]  # (the twin, whose dating is turned off)
    _assert_twins(a.id, b.id, t)
    stored = db.session.get(Box, a.id)
    assert stored.colour == "green"
    assert stored.colour_since == start + timedelta(minutes=5)
    assert colour_history(a.id)[-1][:3] == ("green", "red", start + timedelta(minutes=5))
