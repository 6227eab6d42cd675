"""Reads serve the stored evaluation: a box read evaluates nothing and runs a fixed small number
of statements; what it shows equals a full evaluation for any sequence of events; a box whose
next check has passed (the sweep is late) is evaluated by the read itself."""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from app.boxes import cache
from app.boxes import services as box_services
from app.boxes.models import Box
from app.boxes.services import colours as colour_services
from app.extensions import db
from app.telemetry import services as telemetry
from tests import factories
from tests.boxes.builders import register
from tests.telemetry.builders import reading

_names = itertools.count(1)


@contextmanager
def counted_statements(engine):
    """The SQL statements run on ``engine`` inside the block."""
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def refuse_evaluation(monkeypatch) -> None:
    """From here on, any colour evaluation fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a read evaluated the box")

    monkeypatch.setattr(colour_services, "_evaluate_boxes", refuse)


def _filled_box(api) -> str:
    code = register(api)["code"]
    r = api.post(f"/api/v1/boxes/{code}/fills", {"mass_kg": 2000, "iodine_mg_g": 900}, as_="ent")
    assert r.status_code == 201
    return code


def _writes(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))]


def test_box_api_read_serves_the_stored_evaluation(api, app, monkeypatch):
    code = _filled_box(api)
    before = api.get(f"/api/v1/boxes/{code}", as_="ent").get_json()
    cache.box_json_cache.clear()
    refuse_evaluation(monkeypatch)
    with app.app_context():
        engine = db.engine
    with counted_statements(engine) as statements:
        r = api.get(f"/api/v1/boxes/{code}", as_="ent")
    assert r.status_code == 200
    body = r.get_json()
    assert body["colour"] == "green" and body["saturation_basis"] == "design"
    assert body["current_fill"]["iodine_mg_g"] == 900 and body["reasons"] == before["reasons"]
    assert body["predicted_replacement_at"] == before["predicted_replacement_at"]
    assert body["saturation"] >= before["saturation"]  # the design line, at the time of the read
    assert not _writes(statements)
    assert len(statements) <= 6, statements


def test_scan_page_serves_the_stored_evaluation(api, app, monkeypatch):
    code = _filled_box(api)
    cache.scan_page_cache.clear()
    refuse_evaluation(monkeypatch)
    with app.app_context():
        engine = db.engine
    with counted_statements(engine) as statements:
        page = api.client.get(f"/c/{code}")
    assert page.status_code == 200 and 'data-colour="green"' in page.get_data(as_text=True)
    assert not _writes(statements)
    assert len(statements) <= 6, statements


def test_a_box_list_evaluates_nothing(api, monkeypatch):
    codes = [_filled_box(api) for _ in range(3)]
    refuse_evaluation(monkeypatch)
    listed = api.get("/api/v1/boxes", as_="ent").get_json()["items"]
    assert {b["code"] for b in listed} >= set(codes)
    assert all(b["colour"] == "green" for b in listed if b["code"] in codes)


def test_a_late_sweep_does_not_show_a_stale_colour(api, app, world, now):
    """A box whose next check (its carbon running out) has passed unswept: the read evaluates it."""
    box = factories.box(world.enterprise, now=now - timedelta(days=30))
    box_services.record_fill(
        db.session,
        factories.op_principal(),
        box,
        {"mass_kg": 2000.0, "iodine_mg_g": 900.0, "filled_at": now - timedelta(days=9)},
        now=now - timedelta(days=9),
    )
    db.session.commit()
    assert box.colour == "green" and box.colour_next_check_at < now  # 80 % was reached since
    cache.box_json_cache.clear()
    body = api.get(f"/api/v1/boxes/{box.code}", as_="op").get_json()
    assert body["colour"] == "yellow"
    db.session.expire_all()
    stored = db.session.get(Box, box.id)
    assert stored.colour == "yellow" and stored.colour_next_check_at > now  # stored by the read


def test_the_sweep_touches_only_due_boxes_a_chunk_at_a_time(app, world, now):
    boxes = [factories.box(world.enterprise, now=now - timedelta(days=30)) for _ in range(5)]
    for box in boxes[:3]:
        box_services.record_fill(
            db.session,
            factories.op_principal(),
            box,
            {"mass_kg": 2000.0, "iodine_mg_g": 900.0, "filled_at": now - timedelta(days=9)},
            now=now - timedelta(days=9),
        )
    db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["boxes", "refresh-colours", "--chunk", "2"])
    assert result.exit_code == 0, result.output
    assert "3 boxes re-evaluated" in result.output  # the three filled ones; the others are not due
    db.session.expire_all()
    colours = [db.session.get(Box, b.id).colour for b in boxes]
    assert colours == ["yellow", "yellow", "yellow", "grey", "grey"]
    again = runner.invoke(args=["boxes", "refresh-colours"])
    assert "0 boxes re-evaluated" in again.output


# ---------------------------------------------------------------- any events: stored = evaluated

RATES = {
    "normal": dict(inlet_mg_m3=100.0, outlet_mg_m3=20.0, airflow_m3_h=50_000.0),  # 4 kg/h
    "breakthrough": dict(inlet_mg_m3=100.0, outlet_mg_m3=90.0, airflow_m3_h=50_000.0),
    "hot": dict(inlet_mg_m3=100.0, outlet_mg_m3=20.0, airflow_m3_h=5_000.0, bed_temp_c=95.0),
    "stopped": dict(inlet_mg_m3=0.0, outlet_mg_m3=0.0, airflow_m3_h=0.0, running=False),
}
EVENTS = st.one_of(
    st.tuples(st.just("fill"), st.integers(min_value=1, max_value=600)),
    st.tuples(
        st.just("readings"),
        st.integers(min_value=1, max_value=4),
        st.integers(min_value=1, max_value=20),
        st.sampled_from(sorted(RATES)),
    ),
    st.tuples(st.just("status"), st.sampled_from(["stopped", "active"])),
    st.tuples(st.just("wait"), st.integers(min_value=1, max_value=60 * 40)),
)


def _shown(ev) -> tuple:
    return (ev.colour, [(r["code"], r["level"]) for r in ev.reasons])


def _full(ev) -> tuple:
    return (
        *_shown(ev),
        [(r["code"], r["observed"], r["threshold"], r["zh"], r["en"]) for r in ev.reasons],
        ev.saturation,
        ev.predicted_replacement_at,
        ev.saturation_basis,
        ev.facts.get("adsorbed_kg"),
        ev.facts.get("load_kg_per_day"),
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(EVENTS, min_size=1, max_size=12), sensors=st.booleans())
def test_stored_evaluation_equals_a_full_evaluation_for_any_events(world, now, events, sensors):
    enterprise = factories.org(f"测试企业{next(_names)}", ["generator"], park=world.park)
    clock = now - timedelta(days=12)
    box = factories.box(enterprise, now=clock, has_sensors=sensors, design_fill_kg=20.0)
    db.session.commit()
    actor = factories.op_principal()
    for step in events:
        kind = step[0]
        changed = True  # the step stored an evaluation at ``clock``
        if kind == "fill":
            clock += timedelta(minutes=step[1])
            data = {"mass_kg": 20.0, "iodine_mg_g": 900.0, "filled_at": clock}
            if box_services.history(db.session, box)["fills"]:
                data["removed_waste_kg"] = 21.0
            box_services.record_fill(db.session, actor, box, data, now=clock)
        elif kind == "readings":
            _, n, gap, rate = step
            items = []
            for _ in range(n):
                clock += timedelta(minutes=gap)
                items.append(reading(box.code, clock, **RATES[rate]))
            telemetry.ingest(db.session, actor, items, now=clock)
        elif kind == "status":
            changed = box.status != step[1]
            box_services.set_status(db.session, actor, box, step[1], now=clock)
        else:
            clock += timedelta(minutes=step[1])
            changed = False
        db.session.commit()
        box = db.session.get(Box, box.id)
        stored_fresh = box.colour_next_check_at is None or box.colour_next_check_at > clock
        view = box_services.view_box(db.session, box, clock)
        assert bool(view.evaluation.facts.get("stored")) == stored_fresh  # read back, not evaluated
        db.session.commit()
        full = box_services.evaluate_boxes(db.session, [box], clock)[box.id]
        db.session.rollback()
        where = f"after {step} at {clock.isoformat()}"
        # Time alone never changes the colour between next checks: the colour and its reasons
        # are right at any moment; the figures are those of the last evaluation, which was now
        # when the step wrote one or the box was due.
        assert _shown(view.evaluation) == _shown(full), where
        if changed or not stored_fresh:
            assert _full(view.evaluation) == _full(full), where
        elif view.evaluation.saturation_basis == "design":
            assert view.evaluation.saturation == full.saturation, where
        assert (box.colour == full.colour and box.saturation is not None) or box.colour == "grey", where
