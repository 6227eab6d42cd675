"""The benchmark data set (``flask demo generate --scale N``, :mod:`app.demo.generate`): counts and
the state the bench relies on. No timing: the bench measures speed."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from app.accounts.models import Organization, User
from app.boxes.models import Box, ColourChange, Fill
from app.demo.generate import Plan
from app.ledger.models import LedgerRecord, Manifest, ManifestCounter, ManifestEvent, ManifestLine
from app.statistics.rollup_models import ColourSpan, WasteMonth
from app.telemetry.models import SensorReading

NOW = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)


def _count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def test_scale_001_generates_the_planned_counts(app, session):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["demo", "generate", "--scale", "0.01", "--readings-per-box", "12", "--now", NOW.isoformat()]
    )
    assert result.exit_code == 0, result.output
    assert "基准数据已生成" in result.output
    session.expire_all()
    plan = Plan.for_scale(0.01, 12)
    assert (plan.boxes, plan.enterprises, plan.sensor_boxes, plan.manifests) == (100, 10, 11, 1000)
    assert _count(session, Box) == 100
    assert _count(session, Box, Box.has_sensors.is_(True)) == 11
    assert _count(session, Fill) == 100
    assert _count(session, Organization) == 10 + 1 + 9 + 3 + 2  # enterprises, regulators, receivers, carriers
    # 10 of the 11 sensor boxes report (one is kept for the bench's first readings), 12 minutes each
    assert _count(session, SensorReading) == plan.reading_boxes * 12 == 120
    assert _count(session, Manifest, Manifest.status == "closed") == 1000
    assert _count(session, ManifestLine) == 1000
    assert _count(session, ManifestEvent) == 6000
    assert _count(session, LedgerRecord) == 3000
    # Every box has a stored evaluation: reads evaluate nothing; colours spread, none left grey.
    assert _count(session, Box, Box.colour_detail.is_(None)) == 0
    colours = {colour: n for colour, n in session.execute(select(Box.colour, func.count()).group_by(Box.colour))}
    assert "grey" not in colours and len(colours) >= 2, colours
    assert _count(session, ColourChange) >= 100
    # The counters carry on after the bulk numbers, so the services' next manifest gets a new one.
    serials = {c.year: c.last_serial for c in session.scalars(select(ManifestCounter))}
    assert sum(serials.values()) == 1000
    assert {u.username for u in session.scalars(select(User))} >= {"bench", "city", "county"}
    assert "1000 manifests" in result.output
    # The bulk rows reach the statistics: the roll-ups are rebuilt and equal a recomputation.
    assert "roll-ups rebuilt" in result.output
    verify = runner.invoke(args=["statistics", "verify"])
    assert verify.exit_code == 0, verify.output
    assert _count(session, WasteMonth) > 0 and _count(session, ColourSpan) >= _count(session, ColourChange)


def test_generate_refuses_a_database_that_is_not_empty(app, session, world):
    result = app.test_cli_runner().invoke(args=["demo", "generate", "--scale", "0.01"])
    assert result.exit_code != 0
    assert "not empty" in result.output
    assert _count(session, Manifest) == 0


def test_new_rows_after_the_bulk_load_get_fresh_ids(app, session):
    """The PostgreSQL sequences are moved past the explicit ids (SQLite needs nothing)."""
    runner = app.test_cli_runner()
    args = ["demo", "generate", "--scale", "0.001", "--readings-per-box", "0", "--now", NOW.isoformat()]
    assert runner.invoke(args=args).exit_code == 0
    session.expire_all()
    top = session.scalar(select(func.max(Box.id)))
    fill_top = session.scalar(select(func.max(Fill.id)))
    box = Box(
        code="99-00000", enterprise_id=session.scalar(select(func.min(Organization.id))), facility_code="TA1",
        outlet_code="DA1", carbon_type="granular", design_fill_kg=1, design_airflow_m3_h=1.0,
        design_removed_mg_m3=1.0, hours_per_day=1.0, emission_limit_mg_m3=1.0,
    )  # fmt: skip
    session.add(box)
    session.flush()
    assert box.id > top
    assert fill_top == 10


def test_parts_run_together_draw_the_same_numbers_as_in_turn(app, session):
    """Parts run at once get their own seeded rng, made before any runs: what each draws does not
    depend on whether they ran in threads or in turn (the data set stays the same)."""
    import random
    from contextlib import contextmanager

    from app.accounts.services import Principal
    from app.demo import generate as g

    operator = User(username="gen-op", display_name="", is_operator=True, role="admin", password_hash="")
    session.add(operator)
    session.flush()

    def context() -> g.GenerateContext:
        return g.GenerateContext(
            plan=g.Plan.for_scale(0.001), now=NOW, rng=random.Random(g.SEED), operator=Principal(user=operator),
            commit=lambda: None, progress=lambda _m: None,
        )  # fmt: skip

    drawn: dict[str, dict[str, list[float]]] = {"threads": {}, "in turn": {}}

    def part(mode: str, name: str):
        def extension(_session, ctx: g.GenerateContext) -> None:
            drawn[mode][name] = [ctx.rng.random() for _ in range(3)]

        return extension

    @contextmanager
    def same_session():
        with app.app_context():  # (as the CLI's worker sessions: each thread its own app context)
            yield session

    together = context()
    parts = (part("threads", "a"), part("threads", "b"))
    g._run_together(session, parts, [g._own_rng(together, n) for n in range(2)], same_session)
    in_turn = context()
    for n, extension in enumerate((part("in turn", "a"), part("in turn", "b"))):
        extension(session, g._own_rng(in_turn, n))
    assert drawn["threads"] == drawn["in turn"]
    assert drawn["threads"]["a"] != drawn["threads"]["b"]  # each part its own numbers
    assert together.rng.random() == in_turn.rng.random()  # and the main rng goes on alike


def test_a_failing_part_run_together_fails_the_generation(app, session):
    from contextlib import contextmanager

    import pytest

    from app.demo import generate as g

    @contextmanager
    def same_session():
        with app.app_context():  # (as the CLI's worker sessions: each thread its own app context)
            yield session

    def broken(_session, _ctx) -> None:
        raise RuntimeError("part b broke")

    ran: list[str] = []
    operator = User(username="gen-op2", display_name="", is_operator=True, role="admin", password_hash="")
    session.add(operator)
    session.flush()
    import random

    from app.accounts.services import Principal

    ctx = g.GenerateContext(
        plan=g.Plan.for_scale(0.001), now=NOW, rng=random.Random(1), operator=Principal(user=operator),
        commit=lambda: None, progress=lambda _m: None,
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="part b broke"):
        g._run_together(
            session, (lambda _s, _c: ran.append("a"), broken), [g._own_rng(ctx, n) for n in range(2)], same_session
        )
    assert ran == ["a"]  # the other part ran to its end
