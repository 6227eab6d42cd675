"""The colour history follows the times things happened, not the times they were recorded: late
fills, replacements and readings rewrite a box's history from the moment they describe, so that
days in each colour, red box-days and the on-time replacement rate agree for any arrival order."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.accounts.services import create_park
from app.boxes import services as box_services
from app.boxes.models import Box, ColourChange
from app.extensions import db
from app.telemetry import services as telemetry
from tests import factories
from tests.boxes.builders import register
from tests.telemetry.builders import reading

SHANGHAI = timezone(timedelta(hours=8))
_names = itertools.count(1)


def _month_before(now: datetime, months: int) -> datetime:
    """The first day (00:00 Asia/Shanghai) of the month ``months`` before ``now``'s."""
    local = now.astimezone(SHANGHAI)
    year, month = local.year, local.month - months
    while month < 1:
        year, month = year - 1, month + 12
    return datetime(year, month, 1, tzinfo=SHANGHAI)


def _period(start: datetime) -> str:
    return f"{start.year:04d}-{start.month:02d}"


def _days_in_month(start: datetime) -> float:
    nxt = _month_before(start + timedelta(days=40), 0)
    return (nxt - start).total_seconds() / 86400


# ---------------------------------------------------------------- the black-box report


def test_a_back_dated_fill_reaches_the_history_and_the_park_statistics(api, world, now):
    """A box registered today, filled (on paper) in an earlier month: red from the day its
    carbon ran out, in the history, in the park's red box-days and in the replacement's rate."""
    month = _month_before(now, 2)  # the month the box was red all through
    code = register(api)["code"]  # today; design load 19.2 kg/d, T = 200 kg ÷ 19.2 ≈ 10.4 d
    cycle = 2000 * 0.10 / 19.2
    filled_at = month - timedelta(days=11) + timedelta(hours=10)  # red from 20:00 the day before the month
    r = api.post(
        f"/api/v1/boxes/{code}/fills",
        {
            "kind": "initial",
            "mass_kg": 2000,
            "iodine_mg_g": 900,
            "filled_at": filled_at.replace(tzinfo=None).isoformat(),
        },
        as_="ent",
    )  # a local time without offset, as the report sent it
    assert r.status_code == 201, r.get_json()
    hist = api.get(f"/api/v1/boxes/{code}/history", as_="ent").get_json()
    changes = [(c["colour"], datetime.fromisoformat(c["changed_at"])) for c in hist["colour_changes"]]
    assert [c for c, _ in changes] == ["grey", "green", "yellow", "red"]
    assert changes[0][1] == changes[1][1] == filled_at  # the box existed before it was registered here
    red_since = filled_at + timedelta(days=cycle)
    assert abs((changes[3][1] - red_since).total_seconds()) < 2
    assert all(datetime.fromisoformat(c["recorded_at"]) >= now for c in hist["colour_changes"])
    assert hist["days_by_colour"]["red"] > 20
    park = world.park.id
    metrics = api.get(f"/api/v1/parks/{park}/metrics?period={_period(month)}", as_="park").get_json()
    assert metrics["boxes"]["red_box_days"] == round(_days_in_month(month), 4)  # red all month
    # Replaced (recorded today, as late) in the middle of the month: spent carbon, late.
    replaced_at = month + timedelta(days=14)
    r = api.post(
        f"/api/v1/boxes/{code}/fills",
        {"mass_kg": 2000, "iodine_mg_g": 900, "removed_waste_kg": 2200, "filled_at": replaced_at.isoformat()},
        as_="ent",
    )
    assert r.status_code == 201 and r.get_json()["replaced_overdue"] is True
    metrics = api.get(f"/api/v1/parks/{park}/metrics?period={_period(month)}", as_="park").get_json()
    # Red until the replacement (14 days), and again once the new carbon runs out (day 14 + T).
    assert metrics["boxes"]["red_box_days"] == round(14 + _days_in_month(month) - 14 - cycle, 4)
    assert metrics["replacements"]["late_replacement_count"] == 1
    assert metrics["replacements"]["on_time_replacement_share"] == 0.0
    colours = [c["colour"] for c in api.get(f"/api/v1/boxes/{code}/history", as_="ent").get_json()["colour_changes"]]
    # Green from the replacement, red again once the new carbon ran out too (day 14 + T).
    assert colours[-3:] == ["green", "yellow", "red"] and colours.count("red") == 2


def test_a_change_rewritten_unchanged_keeps_the_time_it_was_first_recorded(world, now):
    box = factories.box(world.enterprise, now=now - timedelta(days=30))
    factories_principal = factories.op_principal()
    box_services.record_fill(
        db.session,
        factories_principal,
        box,
        {"mass_kg": 2000.0, "iodine_mg_g": 900.0, "filled_at": now - timedelta(days=20)},
        now=now - timedelta(days=20),
    )
    box_services.view_box(db.session, box, now - timedelta(days=5))
    db.session.commit()
    first = {(c.colour, c.changed_at): c.recorded_at for c in db.session.query(ColourChange).filter_by(box_id=box.id)}
    # Rewriting from the fill's time on finds the same changes: they keep their recorded_at.
    box_services.rebuild_history(db.session, box, now - timedelta(days=20), now)
    db.session.commit()
    again = {(c.colour, c.changed_at): c.recorded_at for c in db.session.query(ColourChange).filter_by(box_id=box.id)}
    assert first.items() <= again.items()
    assert [c for c, _ in sorted(again, key=lambda k: k[1])] == ["grey", "green", "yellow", "red"]


# ---------------------------------------------------------------- any order, any delay

RATE = dict(inlet_mg_m3=100.0, outlet_mg_m3=20.0, airflow_m3_h=50_000.0)  # 4 kg/h while a reading holds


def _scenario(world, base: datetime, fill1_readings: list[int], fill2_readings: list[int]):
    """The events of one box (times from ``base``): its first fill, readings, a replacement two
    days later and the new carbon's readings. 20 kg of carbon, 2 kg capacity: ~0.67 kg a reading."""
    park = create_park(
        db.session, factories.op_principal(), {"name": f"测试园区{next(_names)}", "county_code": "331023"}
    )
    enterprise = factories.org(f"测试企业{next(_names)}", ["generator"], park=park)
    box = factories.box(enterprise, now=base - timedelta(days=1), has_sensors=True, design_fill_kg=20.0)
    db.session.commit()
    f1, f2 = base + timedelta(days=1), base + timedelta(days=3)
    events = [("fill", f1, {"mass_kg": 20.0, "iodine_mg_g": 900.0, "filled_at": f1})]
    events += [("reading", f1 + timedelta(minutes=m), None) for m in fill1_readings]
    events += [("fill", f2, {"mass_kg": 20.0, "iodine_mg_g": 900.0, "removed_waste_kg": 21.0, "filled_at": f2})]
    events += [("reading", f2 + timedelta(minutes=m), None) for m in fill2_readings]
    return park, box, events


def _send(box, events, arrivals: list[tuple[list[int], timedelta]]):
    """Send ``events`` as batches (indexes) at increasing times, each some delay after its newest event."""
    clock = None
    for indexes, delay in arrivals:
        batch = [events[i] for i in indexes]
        at = max(t for _, t, _ in batch) + delay
        clock = at if clock is None or at > clock else clock
        fills = [e for e in batch if e[0] == "fill"]
        readings = [reading(box.code, t, **RATE) for kind, t, _ in batch if kind == "reading"]
        for _, _, data in fills:
            box_services.record_fill(
                db.session, factories.op_principal(), db.session.get(Box, box.id), dict(data), now=clock
            )
        if readings:
            telemetry.ingest(db.session, factories.op_principal(), readings, now=clock)
        db.session.commit()
    return clock


def _outcome(api, park, box, base: datetime, end: datetime):
    box_services.view_box(db.session, db.session.get(Box, box.id), end)
    db.session.commit()
    changes = list(
        db.session.query(ColourChange).filter_by(box_id=box.id).order_by(ColourChange.changed_at, ColourChange.id)
    )
    history = [(c.colour, c.previous_colour, c.changed_at) for c in changes]
    days = {c: round(box_services.days_in_colour(changes, c, base, end), 6) for c in ("green", "yellow", "red")}
    period = _period(base.astimezone(SHANGHAI))
    metrics = api.get(f"/api/v1/parks/{park.id}/metrics?period={period}", as_="op").get_json()
    replaced = [f.replaced_overdue for f in box_services.history(db.session, box)["fills"]]
    return (
        history,
        days,
        metrics["boxes"]["red_box_days"],
        metrics["replacements"]["on_time_replacement_share"],
        replaced,
    )


def _arrivals(events, seed: int, max_delay_h: int):
    """A random arrival order (the replacement after the first fill, as the API requires),
    cut into random batches, each with a random delay."""
    rng = random.Random(seed)
    order = list(range(len(events)))
    rng.shuffle(order)
    fills = [i for i in order if events[i][0] == "fill"]
    if fills != sorted(fills):  # record the fills in their own order, where they fell
        slots = [k for k, i in enumerate(order) if events[i][0] == "fill"]
        for k, i in zip(slots, sorted(fills), strict=False):
            order[k] = i
    batches, k = [], 0
    while k < len(order):
        n = rng.randint(1, 3)
        # A fill goes alone (it is a request of its own); readings travel in batches.
        if events[order[k]][0] == "fill":
            n = 1
        else:
            run = 1
            while run < n and k + run < len(order) and events[order[k + run]][0] == "reading":
                run += 1
            n = run
        batches.append((order[k : k + n], timedelta(minutes=rng.randint(0, max_delay_h * 60))))
        k += n
    return batches


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fill1=st.lists(st.integers(min_value=0, max_value=30 * 60), min_size=2, max_size=6, unique=True),
    fill2=st.lists(st.integers(min_value=0, max_value=30 * 60), min_size=0, max_size=5, unique=True),
    seed=st.integers(min_value=0, max_value=10**6),
    max_delay_h=st.sampled_from([0, 3, 30, 100]),
)
def test_any_arrival_order_and_delay_gives_the_same_history_and_statistics(api, world, fill1, fill2, seed, max_delay_h):
    base = _month_before(datetime.now(UTC), 2).astimezone(UTC)
    end = base + timedelta(days=20)
    outcomes = []
    for arrival in ("in order, on time", "random"):
        park, box, events = _scenario(world, base, sorted(fill1), sorted(fill2))
        if arrival == "random":
            plan = _arrivals(events, seed, max_delay_h)
        else:
            plan = [([i], timedelta(0)) for i in sorted(range(len(events)), key=lambda i: events[i][1])]
        assert _send(box, events, plan) <= end
        outcomes.append(_outcome(api, park, box, base, end))
    reference, shuffled = outcomes
    example = f"fill1={sorted(fill1)} fill2={sorted(fill2)} seed={seed} max_delay_h={max_delay_h}"
    assert shuffled[0] == reference[0], example  # the colour history: colours and times
    assert shuffled[1:] == reference[1:], example  # days in each colour, red box-days, on-time rate, replaced_overdue
    colours = [c for c, _, _ in reference[0]]
    assert colours[0] == "grey" and "red" in colours  # the small fill runs out: the history has something to say
