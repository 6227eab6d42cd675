"""Late events through the API: the same fills, replacements and readings, sent in any order and
with any delay (the service's clock set to each arrival's time), give the same colour history
(colour, changed_at), the same days in each colour, the same replaced_overdue, and the same
statistics: the park's and the city's (``/api/v1/metrics``) red box-days and on-time replacements.

The clock: every ``app`` module's ``utcnow`` (the one source of "now", app.common.timeutil) is
replaced by the test's, so that a request is served as if it arrived at the batch's time."""

from __future__ import annotations

import itertools
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from app.accounts.services import create_park
from app.common import timeutil
from app.extensions import db
from tests import factories
from tests.telemetry.builders import device_token, post_readings, reading

SHANGHAI = timezone(timedelta(hours=8))
RATE = dict(inlet_mg_m3=100.0, outlet_mg_m3=20.0, airflow_m3_h=50_000.0)  # 4 kg/h while a reading holds
_names = itertools.count(1)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Iterator[Clock]:
    fake = Clock()
    real = timeutil.utcnow
    for name, module in list(sys.modules.items()):
        if (name == "app" or name.startswith("app.")) and getattr(module, "utcnow", None) is real:
            monkeypatch.setattr(module, "utcnow", fake)
    yield fake


def _month_start(now: datetime, months_back: int) -> datetime:
    local = now.astimezone(SHANGHAI)
    year, month = local.year, local.month - months_back
    while month < 1:
        year, month = year - 1, month + 12
    return datetime(year, month, 1, tzinfo=SHANGHAI).astimezone(UTC)


def _scenario(api, clock: Clock, base: datetime, fill1: list[int], fill2: list[int]):
    """A park of its own with one enterprise, its user and gateway, and one sensor box registered
    the day before its first fill (20 kg of carbon, 2 kg capacity: about 0.67 kg a reading).
    The events: the first fill, its readings, a replacement two days later, the new readings."""
    n = next(_names)
    real, clock.now = clock.now, datetime.now(UTC)  # tokens issued now are valid at every past moment
    park = create_park(db.session, factories.op_principal(), {"name": f"迟到园区{n}", "county_code": "331023"})
    enterprise = factories.org(f"迟到企业{n}", ["generator"], park=park)
    user = factories.user(enterprise, f"late{n}")
    box = factories.box(enterprise, now=base, has_sensors=True, design_fill_kg=20.0)
    db.session.commit()
    gateway = device_token(api, enterprise)
    api.token(user.username)
    clock.now = real
    f1, f2 = base + timedelta(days=1), base + timedelta(days=3)
    events = [("fill", f1, {"kind": "initial", "mass_kg": 20, "iodine_mg_g": 900})]
    events += [("reading", f1 + timedelta(minutes=m), None) for m in fill1]
    events += [("fill", f2, {"mass_kg": 20, "iodine_mg_g": 900, "removed_waste_kg": 21})]
    events += [("reading", f2 + timedelta(minutes=m), None) for m in fill2]
    return park, user.username, gateway, box.code, events


def _send(api, clock: Clock, who: str, gateway: str, code: str, events, plan) -> None:
    """Each batch (event indexes) arrives some delay after its newest event, never before the last."""
    for indexes, delay in plan:
        batch = [events[i] for i in indexes]
        clock.now = max(clock.now, max(t for _, t, _ in batch) + delay)
        for kind, t, data in batch:
            if kind == "fill":
                r = api.post(f"/api/v1/boxes/{code}/fills", {**data, "filled_at": t.isoformat()}, as_=who)
                assert r.status_code == 201, r.get_json()
        items = [reading(code, t, **RATE) for kind, t, _ in batch if kind == "reading"]
        if items:
            body = post_readings(api, gateway, items).get_json()
            assert body["accepted"] == len(items), body


def _plan(events, seed: int, max_delay_h: int):
    """A random arrival order (fills in their own order: a replacement needs the fill before it),
    cut into batches of readings (a fill is a request of its own), each with a random delay."""
    rng = random.Random(seed)
    order = list(range(len(events)))
    rng.shuffle(order)
    fill_slots = [k for k, i in enumerate(order) if events[i][0] == "fill"]
    for k, i in zip(fill_slots, sorted(order[k] for k in fill_slots), strict=True):
        order[k] = i
    plan, k = [], 0
    while k < len(order):
        n = 1
        if events[order[k]][0] == "reading":
            limit = rng.randint(1, 3)
            while n < limit and k + n < len(order) and events[order[k + n]][0] == "reading":
                n += 1
        plan.append((order[k : k + n], timedelta(minutes=rng.randint(0, max_delay_h * 60))))
        k += n
    return plan


def _city(api, period: str) -> tuple[float, int, int]:
    m = api.get(f"/api/v1/metrics?period={period}", as_="op").get_json()
    r = m["replacements"]
    return m["boxes"]["red_box_days"], r["on_time_replacement_count"], r["late_replacement_count"]


def _outcome(api, who: str, park, code: str, period: str):
    hist = api.get(f"/api/v1/boxes/{code}/history", as_=who).get_json()
    changes = [(c["colour"], c["changed_at"]) for c in hist["colour_changes"]]
    overdue = [f["replaced_overdue"] for f in hist["fills"]]
    m = api.get(f"/api/v1/parks/{park.id}/metrics?period={period}", as_="op").get_json()
    r = m["replacements"]
    park_stats = (m["boxes"]["red_box_days"], r["on_time_replacement_share"], r["late_replacement_count"])
    return changes, hist["days_by_colour"], overdue, park_stats


# No shrinking: an example takes a second or two, and the failing one is named in the assertion.
@settings(
    max_examples=10,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
# A reading that ends a silence the box was already evaluated past arrived last: its silence
# alarms were left dated from the reading before it (app.telemetry.services.ingestion).
@example(fill1=[0, 350], fill2=[125, 1465], seed=2447, max_delay_h=200)
@given(
    fill1=st.lists(st.integers(min_value=0, max_value=30 * 60), min_size=2, max_size=5, unique=True),
    fill2=st.lists(st.integers(min_value=0, max_value=30 * 60), min_size=0, max_size=4, unique=True),
    seed=st.integers(min_value=0, max_value=10**6),
    max_delay_h=st.sampled_from([0, 3, 30, 200]),
)
def test_any_order_and_delay_through_the_api_gives_one_history_and_one_set_of_statistics(
    api, world, clock, fill1, fill2, seed, max_delay_h
):
    base = _month_start(datetime.now(UTC), 3) + timedelta(days=2)  # all in one month, well in the past
    end = base + timedelta(days=20)
    local = base.astimezone(SHANGHAI)
    period = f"{local.year:04d}-{local.month:02d}"
    outcomes, city = [], []
    clock.now = datetime.now(UTC)
    api.token("op")  # issued now: valid at every past moment the clock is set to
    for arrival in ("in order, on time", "random"):
        # The city's figures before this box, read at the same moment as after it (they count up to now).
        clock.now = end
        before = _city(api, period)
        park, who, gateway, code, events = _scenario(api, clock, base, sorted(fill1), sorted(fill2))
        clock.now = base
        if arrival == "random":
            plan = _plan(events, seed, max_delay_h)
        else:
            plan = [([i], timedelta(0)) for i in sorted(range(len(events)), key=lambda i: events[i][1])]
        _send(api, clock, who, gateway, code, events, plan)
        clock.now = max(clock.now, end)
        outcomes.append(_outcome(api, who, park, code, period))
        after = _city(api, period)
        city.append((round(after[0] - before[0], 3), after[1] - before[1], after[2] - before[2]))
    reference, shuffled = outcomes
    example = f"fill1={sorted(fill1)} fill2={sorted(fill2)} seed={seed} max_delay_h={max_delay_h}"
    assert shuffled[0] == reference[0], example  # the colour history: colours and times
    assert shuffled[2] == reference[2], example  # replaced_overdue of each fill
    assert shuffled[3] == reference[3], example  # the park's red box-days and on-time replacements
    # This box's share of the city's figures: the city's red box-days are each rounded to 0.001
    # before the difference is taken, so the two differences may part by up to 0.002.
    assert city[1][1:] == city[0][1:], example
    assert city[1][0] == pytest.approx(city[0][0], abs=2.001e-3), example
    assert shuffled[1] == reference[1], example  # days in each colour, up to the same read at ``end``
    colours = [c for c, _ in reference[0]]
    assert colours[0] == "grey" and "red" in colours, example  # the small fill runs out
    assert reference[3][0] > 0 and city[0][0] == pytest.approx(reference[3][0], abs=1e-3), example
