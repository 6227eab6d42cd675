"""The set-wise sweep (app/boxes/services/sweep.py, issue 12): for any boxes and any sequence of
sweeps in chunks of any size, each box's stored colour, reasons, next check and saturation are
those a full evaluation gives at the sweep's moment, and its colour history is the one a full
replay of the box from its registration (``rebuild_history``) writes."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.boxes import services as box_services
from app.boxes.models import Box, ColourChange
from app.common.timeutil import utcnow
from app.extensions import db
from app.telemetry import services as telemetry
from tests import factories
from tests.telemetry.builders import reading

_facilities = itertools.count(1)
# A box: days between its registration and its fill, its carbon (kg: small fills run out within
# the sweeps' span, 2000 kg lasts ~10 days at the design load) and whether it reports readings
# (then it falls silent: a silence alarm by time alone).
BOX = st.tuples(
    st.sampled_from([0.0, 0.5, 3.0]),
    st.sampled_from([300.0, 1000.0, 2000.0, 2600.0]),
    st.sampled_from([False, False, True]),
)
# Sweeps: hours after the last fill (from minutes to weeks), and the chunk size of each.
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


def _stored(box: Box) -> tuple:
    return (
        str(box.colour),
        [r["code"] for r in box.colour_reasons],
        box.colour_next_check_at,
        box.colour_since,
        round(box.saturation, 9) if box.saturation is not None else None,
    )


def _make_boxes(world, now, specs) -> list[Box]:
    actor = factories.op_principal()
    boxes = []
    for fill_after_days, mass, sensors in specs:
        registered = now - timedelta(days=5)
        extra = {"has_sensors": True, "pressure_drop_min_pa": 300.0, "pressure_drop_max_pa": 1200.0} if sensors else {}
        box = factories.box(world.enterprise, now=registered, facility_code=f"TA{next(_facilities):03d}", **extra)
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


# No shrinking: an example takes a second or so, and the failing one is named in the assertion.
@settings(
    max_examples=12,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(specs=st.lists(BOX, min_size=1, max_size=5), sweeps=SWEEPS)
def test_the_chunked_sweep_stores_what_a_full_evaluation_and_replay_give(app, world, specs, sweeps):
    session = db.session()
    # (The database is cleaned per test, not per example: each example's boxes are told apart by id.)
    now = utcnow().replace(microsecond=0) - timedelta(days=40)
    boxes = _make_boxes(world, now, specs)
    ids = [b.id for b in boxes]
    last_fill = now - timedelta(days=5) + timedelta(days=max(s[0] for s in specs))
    moment = last_fill
    for hours, chunk in sorted(sweeps):
        moment = max(moment, last_fill + timedelta(hours=hours))
        while box_services.refresh_due_chunk(session, moment, chunk, unstored=True) == chunk:
            session.commit()
        session.commit()
    session.expire_all()
    swept = {box_id: (_stored(session.get(Box, box_id)), _history(box_id)) for box_id in ids}
    # Nothing is due any more at that moment: what a sweep leaves needs no second one.
    assert box_services.refresh_due(session, moment) == 0
    for box_id in ids:
        box = session.get(Box, box_id)
        full = box_services.evaluate_boxes(session, [box], moment)[box_id]
        stored, history = swept[box_id]
        assert stored[:3] == (full.colour, [r["code"] for r in full.reasons], full.next_check_at), (specs, sweeps)
        if box.colour_evaluated_at == moment:  # swept now (else its next check has not come)
            assert stored[4] == (round(full.saturation, 9) if full.saturation is not None else None)
        # The history from the registration, replayed moment by moment from the stored records.
        box_services.rebuild_history(session, box, box.created_at, moment)
        session.commit()
        session.expire_all()
        replayed = session.get(Box, box_id)
        assert _history(box_id) == history, (specs, sweeps)
        assert _stored(replayed)[:4] == stored[:4], (specs, sweeps)
        assert history[-1][0] == stored[0] and history[-1][1] == stored[3]


def test_a_sweep_writes_nothing_for_a_box_whose_evaluation_is_unchanged(app, world, now):
    session = db.session()
    (box,) = _make_boxes(world, now - timedelta(days=1), [(0.0, 2000.0, False)])
    box = session.get(Box, box.id)
    revision, evaluated = box.revision, box.colour_evaluated_at
    # Due (next check reached) but evaluated at the same moment as stored: nothing to write.
    box.colour_next_check_at = evaluated
    session.commit()
    before = box.revision
    assert box_services.refresh_due_chunk(session, evaluated, 10) == 1
    session.commit()
    session.expire_all()
    again = session.get(Box, box.id)
    assert again.colour_next_check_at is not None and again.colour_next_check_at > evaluated
    assert again.revision == before + 1 and before == revision


def test_the_sweep_command_catches_up_boxes_in_chunks(app, world):
    """``flask boxes sweep --chunk 2`` over five boxes whose next check passed: all evaluated,
    a chunk per transaction, and the history of each ends in its stored colour."""
    now = utcnow().replace(microsecond=0)
    boxes = _make_boxes(world, now - timedelta(days=12), [(0.0, 2000.0, False)] * 3 + [(0.0, 300.0, False)] * 2)
    result = app.test_cli_runner().invoke(args=["boxes", "sweep", "--chunk", "2"])
    assert result.exit_code == 0, result.output
    assert "5 boxes re-evaluated" in result.output
    db.session.expire_all()
    for b in boxes:
        box = db.session.get(Box, b.id)
        assert box.colour == "red", box.colour_reasons  # spent since (10 days at the design load)
        assert _history(b.id)[-1][0] == "red"
        assert box.colour_next_check_at is None or box.colour_next_check_at > now


@pytest.mark.parametrize("chunk", [1, 3, 500])
def test_refresh_due_goes_chunk_by_chunk_until_none_is_due(app, world, chunk):
    now = utcnow().replace(microsecond=0)
    _make_boxes(world, now - timedelta(days=12), [(0.0, 2000.0, False)] * 4)
    assert box_services.refresh_due(db.session(), now, chunk) == 4
    db.session.commit()
    assert box_services.refresh_due(db.session(), now, chunk) == 0


def test_a_part_of_the_sweep_takes_only_the_boxes_of_its_residue(app, world):
    """``part=(n, k)``: the boxes whose id is k modulo n, and only those; the parts together are
    the whole sweep."""
    now = utcnow().replace(microsecond=0)
    boxes = _make_boxes(world, now - timedelta(days=12), [(0.0, 2000.0, False)] * 5)
    session = db.session()
    assert box_services.refresh_due_chunk(session, now, 10, part=(2, 1)) == sum(b.id % 2 == 1 for b in boxes)
    session.commit()
    session.expire_all()
    for b in boxes:
        box = session.get(Box, b.id)
        swept = box.colour_next_check_at is None or box.colour_next_check_at > now
        assert swept == (b.id % 2 == 1) and (box.colour == "red") == swept
    assert box_services.refresh_due_chunk(session, now, 10, part=(2, 0)) == sum(b.id % 2 == 0 for b in boxes)
    session.commit()
    assert box_services.refresh_due(session, now) == 0


def test_the_sweep_command_shares_the_boxes_among_worker_processes(app, world):
    """``--workers 3``: three forked processes, each its own connection and transactions; every
    due box evaluated once, their counts summed, each box's history ending in its colour."""
    now = utcnow().replace(microsecond=0)
    boxes = _make_boxes(world, now - timedelta(days=12), [(0.0, 2000.0, False)] * 4 + [(0.0, 300.0, False)] * 3)
    result = app.test_cli_runner().invoke(args=["boxes", "sweep", "--chunk", "2", "--workers", "3"])
    assert result.exit_code == 0, result.output
    assert "7 boxes re-evaluated" in result.output
    db.session.expire_all()
    for b in boxes:
        box = db.session.get(Box, b.id)
        assert box.colour == "red" and _history(b.id)[-1] == ("red", box.colour_since, _history(b.id)[-1][2])
        assert box.colour_next_check_at is None or box.colour_next_check_at > now
    again = app.test_cli_runner().invoke(args=["boxes", "sweep", "--workers", "2"])
    assert "0 boxes re-evaluated" in again.output
