"""The whole sweep's path (``boxes refresh-colours``): the due boxes listed once (``due_ids``), then
swept a chunk of ids at a time (``sweep_ids``) with rows read through the driver's cursor on
PostgreSQL. For any boxes, chunk sizes and moments it stores what a full evaluation gives and the
colour history a full replay writes, as the chunk-by-limit path (test_sweep.py) does."""

from __future__ import annotations

import itertools
import json
import math
from datetime import UTC, timedelta

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.boxes import services as box_services
from app.boxes.models import Box, ColourChange, Fill
from app.boxes.services.sweep import (
    _BOX_COLUMNS,
    _json_loads,
    _plain_rows,
    active_fills,
    boxes_by_id,
    due_ids,
    sweep_ids,
)
from app.common.timeutil import utcnow
from app.extensions import db
from app.telemetry import services as telemetry
from tests import factories
from tests.telemetry.builders import reading

_facilities = itertools.count(1)
BOX = st.tuples(
    st.sampled_from([0.0, 0.5, 3.0]),
    st.sampled_from([300.0, 1000.0, 2000.0, 2600.0]),
    st.sampled_from([False, False, True]),
)
SWEEPS = st.lists(
    st.tuples(st.sampled_from([0.2, 3.0, 30.0, 100.0, 190.0, 400.0]), st.integers(min_value=1, max_value=4)),
    min_size=1,
    max_size=3,
)


def _history(box_id: int) -> list[tuple[str, object, str | None]]:
    rows = db.session.scalars(
        select(ColourChange).where(ColourChange.box_id == box_id).order_by(ColourChange.changed_at, ColourChange.id)
    )
    return [(str(c.colour), c.changed_at, c.previous_colour and str(c.previous_colour)) for c in rows]


def _make_boxes(world, now, specs) -> list[Box]:
    actor = factories.op_principal()
    boxes = []
    for fill_after_days, mass, sensors in specs:
        registered = now - timedelta(days=5)
        extra = {"has_sensors": True, "pressure_drop_min_pa": 300.0, "pressure_drop_max_pa": 1200.0} if sensors else {}
        box = factories.box(world.enterprise, now=registered, facility_code=f"TI{next(_facilities):03d}", **extra)
        filled = registered + timedelta(days=fill_after_days)
        fill = {"mass_kg": mass, "iodine_mg_g": 900.0, "filled_at": filled, "confirm_unusual": True}
        box_services.record_fill(db.session, actor, box, fill, now=filled)
        db.session.commit()
        if sensors:
            at = filled + timedelta(hours=1)
            items = [reading(box.code, at + timedelta(minutes=m)) for m in range(3)]
            telemetry.ingest(db.session(), actor, items, now=at + timedelta(minutes=3))
            db.session.commit()
        boxes.append(box)
    return boxes


def _sweep(session, moment, chunk: int) -> int:
    rules = box_services._rules(session)
    ids = sorted(due_ids(session, moment, unstored=True))
    session.commit()
    done = 0
    for i in range(0, len(ids), chunk):
        done += sweep_ids(session, moment, ids[i : i + chunk], rules)
        session.commit()
    return done


@settings(
    max_examples=10,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(specs=st.lists(BOX, min_size=1, max_size=5), sweeps=SWEEPS)
def test_the_sweep_by_ids_stores_what_a_full_evaluation_and_replay_give(app, world, specs, sweeps):
    session = db.session()
    now = utcnow().replace(microsecond=0) - timedelta(days=40)
    boxes = _make_boxes(world, now, specs)
    ids = [b.id for b in boxes]
    last_fill = now - timedelta(days=5) + timedelta(days=max(s[0] for s in specs))
    moment = last_fill
    for hours, chunk in sorted(sweeps):
        moment = max(moment, last_fill + timedelta(hours=hours))
        _sweep(session, moment, chunk)
    session.expire_all()
    assert not [i for i in due_ids(session, moment, unstored=True) if i in ids]  # nothing left due
    for box_id in ids:
        box = session.get(Box, box_id)
        full = box_services.evaluate_boxes(session, [box], moment)[box_id]
        stored = (str(box.colour), [r["code"] for r in box.colour_reasons], box.colour_next_check_at)
        assert stored == (full.colour, [r["code"] for r in full.reasons], full.next_check_at), (specs, sweeps)
        if box.colour_evaluated_at == moment:  # swept at that moment (else its next check has not come)
            if full.saturation is not None:
                assert math.isclose(box.saturation, full.saturation, rel_tol=1e-12), (specs, sweeps)
            # The stored reasons with their messages, as the evaluation words them.
            assert box.colour_detail["reasons"] == [dict(r) for r in full.reasons], (specs, sweeps)
        history, since = _history(box_id), box.colour_since
        box_services.rebuild_history(session, box, box.created_at, moment)
        session.commit()
        session.expire_all()
        assert _history(box_id) == history, (specs, sweeps)
        assert session.get(Box, box_id).colour_since == since and history[-1][0] == stored[0]


def test_a_box_evaluated_since_it_was_listed_is_not_swept_again(app, world):
    """The ids are listed once; a box another writer evaluated meanwhile is no longer due and is
    left as that writer stored it."""
    now = utcnow().replace(microsecond=0)
    first, second = _make_boxes(world, now - timedelta(days=12), [(0.0, 2000.0, False)] * 2)
    session = db.session()
    ids = due_ids(session, now, unstored=True)
    assert {first.id, second.id} <= set(ids)
    box_services.refresh_colours(session, [session.get(Box, first.id)], now)  # e.g. a read
    session.commit()
    revision = session.get(Box, first.id).revision
    assert sweep_ids(session, now, ids, box_services._rules(session)) == len(ids) - 1
    session.commit()
    session.expire_all()
    assert session.get(Box, first.id).revision == revision
    assert session.get(Box, second.id).colour_evaluated_at == now


def test_the_plain_rows_are_the_values_sqlalchemy_reads(app, world):
    """The driver's rows (PostgreSQL) hold what SQLAlchemy's result processing gives: the same
    values, times aware in UTC; the boxes and fills as the sweep reads them."""
    now = utcnow().replace(microsecond=0)
    boxes = _make_boxes(world, now - timedelta(days=3), [(0.0, 2000.0, True), (0.5, 300.0, False)])
    session = db.session()
    ids = [b.id for b in boxes]
    query = select(*_BOX_COLUMNS).where(Box.id.in_(ids)).order_by(Box.id)
    plain = _plain_rows(session, query)
    ordinary = [dict(row) for row in session.execute(query).mappings()]
    assert plain == ordinary and len(plain) == 2
    for row in plain:
        for value in row.values():
            if hasattr(value, "tzinfo"):
                assert value.tzinfo is UTC
    swept = boxes_by_id(session, ids, now + timedelta(days=30))
    assert [b.id for b in swept] == sorted(ids) and swept[0].colour_next_check_at.tzinfo is UTC
    fills = active_fills(session, ids, now)
    for box_id in ids:
        fill = session.scalars(select(Fill).where(Fill.box_id == box_id)).one()
        assert {c: getattr(fills[box_id], c) for c in ("id", "filled_at", "mass_kg", "carbon_type")} == {
            c: getattr(fill, c) for c in ("id", "filled_at", "mass_kg", "carbon_type")
        }


def test_the_json_of_a_chunk_is_read_as_json_loads_reads_it():
    documents = [
        '{"a": [1, 2.5, -0.0, 1e-07, "饱和度"], "b": null, "c": {"d": true}}',
        "[[1765000000, 0.25, 3600.0], [1765003600, 1e300, 0]]",
        '{"big": 123456789012345678901234567890, "x": NaN, "y": Infinity}',
        '"\\u9971\\u548c"',
    ]
    for doc in documents:
        expected, got = json.loads(doc), _json_loads(doc)
        assert json.dumps(got) == json.dumps(expected)
        assert _json_loads(doc.encode()) is not None or expected is None
