"""Ingest's batch writes: states in one UPDATE, the colour refresh given the fills and states just
read, box colours written by primary key; each gives what the ORM path gives."""

from __future__ import annotations

import contextlib
import re
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import select

from app.boxes import services as box_services
from app.boxes.models import Box, ColourChange
from app.extensions import db
from app.telemetry import services
from app.telemetry.colour import _states
from app.telemetry.models import BoxSensorState
from tests import factories
from tests.telemetry.builders import make_sensor_box, reading, utc_now

STATE_COLUMNS = [c.key for c in BoxSensorState.__table__.columns]
BOX_COLOUR_COLUMNS = [
    "colour",
    "colour_since",
    "colour_reasons",
    "colour_next_check_at",
    "colour_evaluated_at",
    "revision",
]


@contextlib.contextmanager
def statements():
    """The SQL the engine runs inside the block."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)


def selects_from(seen: list[str], table: str) -> list[str]:
    return [s for s in seen if s.lstrip().upper().startswith("SELECT") and re.search(rf"\bFROM {table}\b", s)]


def stored_state(box_id: int) -> dict:
    row = db.session.execute(select(BoxSensorState.__table__).where(BoxSensorState.box_id == box_id)).mappings().one()
    return dict(row)


def _batch(boxes, now, minutes=(9, 6, 3), **over):
    return [reading(b.code, now - timedelta(minutes=m), **over) for b in boxes for m in minutes]


def test_ingest_writes_states_in_one_update_and_keeps_the_session_in_step(app, world):
    boxes = [make_sensor_box(world), make_sensor_box(world)]
    now = utc_now()
    services.ingest(db.session, factories.op_principal(), _batch(boxes, now - timedelta(minutes=10)), now=now)
    db.session.commit()
    with statements() as seen:
        result = services.ingest(db.session, factories.op_principal(), _batch(boxes, now, outlet_mg_m3=90.0), now=now)
    assert result.accepted == 6
    updates = [s for s in seen if s.lstrip().upper().startswith("UPDATE BOX_SENSOR_STATES")]
    assert len(updates) == 1  # one statement, executed for both states
    in_session = {b.id: db.session.get(BoxSensorState, b.id) for b in boxes}
    # Nothing left for the ORM to flush, and what the session holds is what is stored.
    assert not any(sa.inspect(s).modified for s in in_session.values())
    for box in boxes:
        stored = stored_state(box.id)
        assert {c: getattr(in_session[box.id], c) for c in STATE_COLUMNS} == stored
        assert stored["reading_count"] == 6 and stored["breakthrough_count"] == 3
        assert stored["latest"]["outlet_mg_m3"] == 90.0
        assert stored["latest_ts"] == now - timedelta(minutes=3) and stored["updated_at"] == now
    db.session.commit()
    db.session.expire_all()
    for box in boxes:
        assert {c: getattr(db.session.get(BoxSensorState, box.id), c) for c in STATE_COLUMNS} == stored_state(box.id)


def test_the_colour_refresh_of_a_batch_reads_no_fill_nor_state_again(app, world):
    box = make_sensor_box(world)
    now = utc_now()
    # The first batch ends the box's silence (a colour change: its history is evaluated again,
    # which reads more); the next one, nothing new for the colour, only reads what ingest reads.
    services.ingest(
        db.session, factories.op_principal(), _batch([box], now, minutes=(12, 11, 10)), now=now - timedelta(minutes=9)
    )
    db.session.commit()
    with statements() as seen:
        result = services.ingest(db.session, factories.op_principal(), _batch([box], now), now=now)
    assert result.accepted == 3
    assert len(selects_from(seen, "fills")) == 1
    # Ingest's own read of the states (PostgreSQL: unlocked, then the lock of their versions).
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    assert len(selects_from(seen, "box_sensor_states")) == (2 if postgresql else 1)
    db.session.commit()
    # The colour is the one a fresh evaluation finds.
    db.session.expire_all()
    fresh = box_services.evaluate_boxes(db.session, [db.session.get(Box, box.id)], now)[box.id]
    stored = db.session.get(Box, box.id)
    assert (stored.colour, [r["code"] for r in stored.colour_reasons]) == (
        fresh.colour,
        [r["code"] for r in fresh.reasons],
    )
    assert stored.colour_next_check_at == fresh.next_check_at


def test_evaluation_with_given_fills_equals_evaluation_that_reads_them(app, world):
    boxes = [make_sensor_box(world), make_sensor_box(world, filled_days_ago=30), factories.box(world.enterprise)]
    db.session.commit()
    now = utc_now()
    services.ingest(db.session, factories.op_principal(), _batch(boxes[:2], now), now=now)
    db.session.commit()
    later = now + timedelta(days=2)  # silence, saturation and the open interval move on
    fills = box_services.latest_fills(db.session, [b.id for b in boxes], later)
    assert boxes[2].id not in fills  # a box without a fill is missing from the dict
    given = box_services.evaluate_boxes(db.session, boxes, later, fills=fills)
    read = box_services.evaluate_boxes(db.session, boxes, later)

    def essentials(ev):
        return (
            ev.colour,
            ev.reasons,
            ev.saturation,
            ev.predicted_replacement_at,
            ev.saturation_basis,
            ev.next_check_at,
            ev.since,
            ev.facts["fill"],
        )

    assert [essentials(given[b.id]) for b in boxes] == [essentials(read[b.id]) for b in boxes]
    assert given[boxes[2].id].colour == "grey"


def _colour_outcome(box_id: int) -> tuple:
    db.session.expire_all()
    box = db.session.get(Box, box_id)
    changes = db.session.execute(
        select(
            ColourChange.colour,
            ColourChange.previous_colour,
            ColourChange.changed_at,
            ColourChange.recorded_at,
            ColourChange.reasons,
        )
        .where(ColourChange.box_id == box_id)
        .order_by(ColourChange.id)
    ).all()
    return tuple(getattr(box, c) for c in BOX_COLOUR_COLUMNS), [tuple(c) for c in changes]


def test_colours_written_by_primary_key_equal_those_the_orm_flushes(app, world):
    box = make_sensor_box(world)
    box_id = box.id
    db.session.commit()
    outcomes = []
    t0 = utc_now()
    for orm_path in (False, True):
        for days in (2, 5):  # silent a day and more (yellow), then three days and more (red)
            box = db.session.get(Box, box_id)
            if orm_path:
                box.name = box.name  # a pending (if empty) change: the ORM flushes this box
                assert sa.inspect(box).modified
            else:
                assert not sa.inspect(box).modified
            box_services.refresh_colours(db.session, [box], t0 + timedelta(days=days))
            # Either way the session holds what is stored, with nothing left to flush.
            assert not db.session.dirty
            held = tuple(getattr(box, c) for c in BOX_COLOUR_COLUMNS)
            outcome = _colour_outcome(box_id)
            assert held == outcome[0]
        outcomes.append(outcome)
        db.session.rollback()
    by_pk, by_orm = outcomes
    assert by_pk[0][0] == "red" and [c[0] for c in by_pk[1]][-2:] == ["yellow", "red"]
    assert by_pk == by_orm  # the same colours, times, reasons, revisions and history


def test_a_refresh_that_changes_nothing_writes_nothing(app, world):
    box = make_sensor_box(world)
    db.session.commit()
    at = utc_now()
    box_services.refresh_colours(db.session, [box], at)
    db.session.commit()
    before = _colour_outcome(box.id)
    with statements() as seen:
        box_services.refresh_colours(db.session, [db.session.get(Box, box.id)], at)
    assert not [s for s in seen if s.lstrip().upper().startswith(("UPDATE", "INSERT"))]
    assert _colour_outcome(box.id) == before


def test_is_modified_asks_only_the_changed_attributes(app, world):
    box = make_sensor_box(world)
    db.session.commit()
    box = db.session.get(Box, box.id)
    assert box_services._is_modified(box) is db.session.is_modified(box) is False
    box.name = box.name  # set, but to the same value
    assert box_services._is_modified(box) is db.session.is_modified(box) is False
    box.colour_reasons = list(box.colour_reasons)  # an equal list
    assert box_services._is_modified(box) is db.session.is_modified(box) is False
    box.enterprise = box.enterprise  # the same related object
    assert box_services._is_modified(box) is db.session.is_modified(box) is False
    box.service_org = world.service if box.service_org is None else None
    assert box_services._is_modified(box) is db.session.is_modified(box) is True
    db.session.rollback()
    box = db.session.get(Box, box.id)
    box.revision += 1
    assert box_services._is_modified(box) is db.session.is_modified(box) is True


def test_the_sensor_facts_take_loaded_states_from_the_session_and_read_the_others(app, world):
    boxes = [make_sensor_box(world), make_sensor_box(world)]
    now = utc_now()
    services.ingest(db.session, factories.op_principal(), _batch(boxes, now), now=now)
    db.session.commit()
    db.session.expire_all()
    ids = [b.id for b in boxes]
    loaded = db.session.get(BoxSensorState, ids[0])
    assert loaded.reading_count == 3
    # Stored meanwhile (as by another writer): the loaded state is not refreshed, as a query
    # without populate_existing would not refresh it either; the expired one is read.
    db.session.execute(sa.update(BoxSensorState.__table__).values(reading_count=99))
    with statements() as seen:
        states = _states(db.session, ids)
    assert sorted(states) == sorted(ids)
    assert states[ids[0]] is loaded and loaded.reading_count == 3
    assert states[ids[1]].reading_count == 99
    queried = selects_from(seen, "box_sensor_states")
    assert len(queried) == 1
    with statements() as seen:
        again = _states(db.session, ids)
    assert again == states and not selects_from(seen, "box_sensor_states")
    db.session.rollback()
