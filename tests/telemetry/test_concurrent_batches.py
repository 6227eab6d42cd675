"""Two batches for one box at once (PostgreSQL: ingest reads the states unlocked, works the batch
out, then locks them and works out again the boxes another batch changed meanwhile): the box
ends as if the batches had come one after the other."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from sqlalchemy.orm import Session

from app.boxes.models import Box, ColourChange
from app.extensions import db
from app.telemetry import services
from app.telemetry.models import BoxSensorState, ReadingHour
from app.telemetry.services import ingestion
from tests import factories
from tests.telemetry.builders import make_sensor_box, reading, utc_now

_STATE = ("adsorbed_kg", "integrated_count", "last_integrated_ts", "last_rate_kg_h", "load_hours")
_STATE += ("breakthrough_since", "breakthrough_count", "latest_ts", "latest", "reading_count")


def _state(box_id: int) -> tuple:
    state = db.session.get(BoxSensorState, box_id)
    return tuple(getattr(state, name) for name in _STATE)


def _box(box_id: int) -> tuple:
    box = db.session.get(Box, box_id)
    detail = {k: v for k, v in (box.colour_detail or {}).items() if k != "fill_id"}
    return (
        box.colour,
        box.colour_reasons,
        box.saturation,
        box.predicted_replacement_at,
        box.colour_next_check_at,
        detail,
    )


def _hours(box_id: int) -> list[tuple]:
    rows = db.session.query(ReadingHour).filter_by(box_id=box_id).order_by(ReadingHour.hour_start)
    return [(r.hour_start, r.count, r.adsorbed_kg, r.inlet_mg_m3_sum, r.outlet_mg_m3_max) for r in rows]


def _changes(box_id: int) -> list[tuple]:
    rows = db.session.query(ColourChange).filter_by(box_id=box_id).order_by(ColourChange.changed_at, ColourChange.id)
    return [(c.colour, c.changed_at) for c in rows]


@pytest.mark.postgresql_only
@pytest.mark.parametrize("other_later", [False, True], ids=["other-earlier", "other-later"])
def test_a_batch_whose_box_another_batch_changed_meanwhile_is_worked_out_again(world, session, other_later):
    assert session.get_bind().dialect.name == "postgresql"
    concurrent, sequential = make_sensor_box(world), make_sensor_box(world)
    actor = factories.op_principal()
    t = utc_now() - timedelta(hours=2)
    for box in (concurrent, sequential):
        services.ingest(session, actor, [reading(box.code, t)], now=t)
    session.commit()
    ours_at, other_at = t + timedelta(minutes=2), t + timedelta(minutes=3 if other_later else 1)
    now = t + timedelta(minutes=5)
    # The other batch first, then ours, one after the other.
    services.ingest(session, actor, [reading(sequential.code, other_at, outlet_mg_m3=70.0)], now=now)
    session.commit()
    services.ingest(session, actor, [reading(sequential.code, ours_at, inlet_mg_m3=180.0)], now=now)
    session.commit()
    # Ours, with the other batch committed by another connection after ours read the state.
    real = ingestion.lock_changed
    changed: list[list[int]] = []

    def meanwhile(session_, box_ids, versions):
        if changed or isinstance(session_, Session):  # (the other batch's own lock)
            return real(session_, box_ids, versions)
        changed.append([])
        with Session(db.engine) as other:
            body = [reading(concurrent.code, other_at, outlet_mg_m3=70.0)]
            services.ingest(other, factories.op_principal(), body, now=now)
            other.commit()
        changed[-1] = real(session_, box_ids, versions)
        return changed[-1]

    with mock.patch.object(ingestion, "lock_changed", meanwhile):
        services.ingest(session, actor, [reading(concurrent.code, ours_at, inlet_mg_m3=180.0)], now=now)
    session.commit()
    assert changed == [[concurrent.id]]
    session.expire_all()
    assert _state(concurrent.id) == _state(sequential.id)
    assert _box(concurrent.id) == _box(sequential.id)
    assert _hours(concurrent.id) == _hours(sequential.id)
    assert [c[0] for c in _changes(concurrent.id)] == [c[0] for c in _changes(sequential.id)]


def test_a_batch_nobody_changed_meanwhile_is_worked_out_once(world, session):
    box = make_sensor_box(world)
    actor = factories.op_principal()
    t = utc_now() - timedelta(hours=1)
    services.ingest(session, actor, [reading(box.code, t)], now=t)
    session.commit()
    calls: list[list[int]] = []
    real = ingestion.lock_changed

    def spy(session_, box_ids, versions):
        calls.append(real(session_, box_ids, versions))
        return calls[-1]

    with mock.patch.object(ingestion, "lock_changed", spy):
        later = t + timedelta(minutes=1)
        services.ingest(session, actor, [reading(box.code, later)], now=later)
    session.commit()
    # PostgreSQL locks the states after working the batch out (nothing changed: nothing again);
    # SQLite has one writer and locks first.
    assert calls == ([[]] if session.get_bind().dialect.name == "postgresql" else [])
    assert db.session.get(BoxSensorState, box.id).reading_count == 2
