"""The regulator's dashboard figures (app/statistics/services/oversight.py, app/web/pages.py) equal what
the boxes say for every kind of reader, its statements do not grow with the data, the anomalies'
whole days come from the day roll-ups (split_days), and ``statistics verify`` checks those too."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import event, func, select

from app.accounts.services import Principal
from app.boxes import services as box_services
from app.boxes.models import Box
from app.boxes.services.access import box_scope
from app.common.timeutil import utcnow
from app.extensions import db
from app.statistics.rollup_models import ConsignmentDay, FillDay
from app.statistics.services import anomalies, oversight
from tests import factories
from tests.web.builders import coloured_box, login

READERS = ("reg_city", "reg_tt", "park", "op", "ent", "svc", "other")


def _colours_of_boxes(actor: Principal) -> dict[str, int]:
    """The reference: the boxes' own colour column within the box scope."""
    counts = dict(
        db.session.execute(select(Box.colour, func.count()).where(box_scope(actor)).group_by(Box.colour)).all()
    )
    return {c: int(counts.get(c, 0)) for c in oversight.COLOURS}


def _random_boxes(world, rng: random.Random) -> None:
    for _ in range(rng.randint(3, 8)):
        enterprise = rng.choice([world.enterprise, world.other_enterprise])
        service = rng.choice([world.service, None])
        if rng.random() < 0.2:  # never filled: grey
            factories.box(enterprise, service)
            db.session.commit()
        else:
            coloured_box(enterprise, service, rng.choice([0.5, 3.0, 8.5, 9.5, 30.0]))


@pytest.mark.parametrize("seed", range(3))
def test_box_colours_equal_the_boxes_own_for_every_reader_as_time_changes_them(app, world, seed):
    rng = random.Random(seed)
    _random_boxes(world, rng)
    for days in (0, rng.uniform(1, 4), rng.uniform(5, 40)):  # time alone turns boxes yellow, then red
        box_services.refresh_due(db.session, utcnow() + timedelta(days=days))
        db.session.commit()  # the spans follow the colour changes at the commit
        for key in READERS:
            actor = Principal(user=world.users[key])
            assert oversight.box_colours(db.session, actor) == _colours_of_boxes(actor), (key, days)
    city = oversight.box_colours(db.session, Principal(user=world.users["reg_city"]))
    assert sum(city.values()) == db.session.scalar(select(func.count()).select_from(Box))
    assert city["red"] > 0  # the data are not trivially one colour


def _tiles(html: str) -> dict[str, int]:
    return {c: int(n) for c, n in re.findall(r'data-colour="(\w+)".*?<span class="tile-value">(\d+)<', html, re.S)}


def test_the_dashboard_shows_the_boxes_colours_and_the_longest_red_first(app, world):
    _random_boxes(world, random.Random(5))
    coloured_box(world.enterprise, world.service, 30.0)
    coloured_box(world.other_enterprise, None, 40.0)
    for key in ("reg_city", "reg_tt", "park"):
        html = login(app, key).get("/").get_data(as_text=True)
        actor = Principal(user=world.users[key])
        want = _colours_of_boxes(actor)
        assert _tiles(html.split('id="red-boxes"')[0]) == want, key
        assert f"共 {want['red']} 个" in html
        red = db.session.scalars(
            select(Box.code).where(box_scope(actor), Box.colour == "red").order_by(Box.colour_since, Box.id)
        ).all()
        section = html.split('id="red-boxes"')[1].split('id="anomalies"')[0]
        assert re.findall(r'<tr data-colour="red" data-code="([^"]+)"', section) == list(red)[:20], key


def _statements(app, client, url: str) -> int:
    seen: list[str] = []

    def note(conn, cursor, statement, *args):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", note)
    return len(seen)


def test_the_city_dashboard_runs_as_many_statements_for_many_boxes_as_for_few(app, world):
    coloured_box(world.enterprise, world.service, 30.0)
    client = login(app, "reg_city")
    client.get("/")  # warm: the rule files, the session's user
    few = _statements(app, client, "/")
    for i in range(6):
        coloured_box(world.enterprise if i % 2 else world.other_enterprise, world.service, 30.0 + i)
    client.get("/")
    many = _statements(app, client, "/")
    assert many == few, (few, many)


def test_split_days_covers_an_edge_once_with_whole_days_in_the_middle():
    a = datetime(2026, 1, 10, 3, 15, tzinfo=UTC)  # 2026-01-10 11:15 Shanghai
    b = datetime(2026, 1, 20, 20, tzinfo=UTC)  # 2026-01-21 04:00 Shanghai
    days, pieces = anomalies.split_days(a, b)
    assert days == ("2026-01-11", "2026-01-20")
    assert pieces == [(a, datetime(2026, 1, 10, 16, tzinfo=UTC)), (datetime(2026, 1, 20, 16, tzinfo=UTC), b)]
    midnight = datetime(2026, 1, 31, 16, tzinfo=UTC)  # 2026-02-01 00:00 Shanghai
    assert anomalies.split_days(datetime(2026, 1, 30, 16, tzinfo=UTC), midnight) == (("2026-01-31", "2026-01-31"), [])
    within = (datetime(2026, 1, 10, 17, tzinfo=UTC), datetime(2026, 1, 11, 15, tzinfo=UTC))  # one day's hours
    assert anomalies.split_days(*within) == (None, [within])
    assert anomalies.split_days(b, a) == (None, [])


def test_verify_reports_a_day_row_that_differs_and_rebuild_removes_it(app, world):
    db.session.add(ConsignmentDay(enterprise_id=world.enterprise.id, day="2001-02-03", delivered_count=1))
    db.session.add(FillDay(enterprise_id=world.other_enterprise.id, day="2001-03-04", replaced_count=2))
    db.session.commit()
    db.session.remove()
    bad = app.test_cli_runner().invoke(args=["statistics", "verify"])
    assert bad.exit_code == 1, bad.output
    assert "rollup_consignment_days 2001-02" in bad.output and "rollup_fill_days 2001-03" in bad.output
    rebuilt = app.test_cli_runner().invoke(args=["statistics", "rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    again = app.test_cli_runner().invoke(args=["statistics", "verify"])
    assert again.exit_code == 0, again.output
    db.session.remove()
    for model in (ConsignmentDay, FillDay):
        assert db.session.scalar(select(sa.func.count()).select_from(model)) == 0
