"""The regulator's lists' faster spellings (app/boxes/services/lists.py) against the plain ones: the
enterprises a reader may filter by, and the saturation sort read from the stored evaluation in SQL
(it equals what each box's read shows, and the order is that of those figures, across pages)."""

from __future__ import annotations

import math
import random

import sqlalchemy as sa
from sqlalchemy import and_, or_, select

from app.accounts.models import Organization, OrganizationRole
from app.accounts.services import Principal, enterprise_scope
from app.boxes import services as box_services
from app.boxes.models import Box
from app.boxes.services import lists
from app.boxes.services.access import box_scope
from app.extensions import db
from tests import factories
from tests.ledger.builders import ago
from tests.web.builders import coloured_box

READERS = ("reg_city", "reg_tt", "park", "op", "ent", "svc", "other")


def _visible_as_spelt_before(actor: Principal):
    """The reference: the generators of the jurisdiction and the enterprises of any box it sees."""
    generators = select(OrganizationRole.organization_id).where(OrganizationRole.role == "generator")
    return or_(
        and_(enterprise_scope(actor), Organization.id.in_(generators)),
        Organization.id.in_(select(Box.enterprise_id).where(box_scope(actor))),
    )


def test_the_enterprises_to_filter_by_are_those_of_the_plain_spelling_for_every_reader(app, world):
    # boxes at a generator of each county, one served by the carbon service across the county line,
    # and one at an organisation that is no generator (a receiver running a box)
    coloured_box(world.enterprise, world.service, 30)
    coloured_box(world.other_enterprise, world.service, 8.5)
    plant = factories.org("三门再生资源有限公司", ["receiver"], county="331022")
    db.session.add(  # registration refuses a box at a non-generator: a row from before that check
        Box(
            code="LEGACY0001",
            enterprise_id=plant.id,
            facility_code="TA001",
            outlet_code="DA001",
            carbon_type="granular",
            design_fill_kg=1000,
            design_airflow_m3_h=10000.0,
            design_removed_mg_m3=50.0,
            hours_per_day=8.0,
            emission_limit_mg_m3=60.0,
        )
    )
    db.session.commit()
    for key in READERS:
        actor = Principal(user=world.users[key])
        want = set(db.session.scalars(select(Organization.id).where(_visible_as_spelt_before(actor))))
        got = set(db.session.scalars(select(Organization.id).where(lists._visible_enterprises(actor))))
        assert got == want, key
    assert plant.id in set(
        db.session.scalars(
            select(Organization.id).where(lists._visible_enterprises(Principal(user=world.users["reg_city"])))
        )
    )


def test_the_saturation_sort_is_the_order_of_what_each_box_shows_across_pages(app, world):
    rng = random.Random(3)
    for _ in range(7):
        coloured_box(rng.choice([world.enterprise, world.other_enterprise]), world.service, rng.uniform(8.2, 40))
    # a box whose stored evaluation is on the sensors: its stored figure is what reads show
    sensor = coloured_box(world.enterprise, world.service, 9.0)
    detail = dict(sensor.colour_detail or {}, saturation_basis="sensor")
    db.session.execute(sa.update(Box).where(Box.id == sensor.id).values(saturation=0.97, colour_detail=detail))
    db.session.commit()
    now = ago(days=0)
    actor = Principal(user=world.users["reg_city"])
    for colour in ("red", "yellow"):
        boxes = list(db.session.scalars(select(Box).where(Box.colour == colour)))
        shown = {v.box.id: v.evaluation.saturation for v in box_services.view_boxes(db.session, boxes, now)}
        in_sql = lists.saturations(db.session, boxes, now)
        assert set(in_sql) == set(shown)
        for box_id, value in shown.items():
            assert value is not None and math.isclose(in_sql[box_id], value, rel_tol=1e-9), (box_id, value)
        seen, cursor = [], None
        while True:
            page = lists.colour_list(
                db.session, actor, colour, lists.BoxFilters(sort="saturation"), now, cursor=cursor, per_page=2
            )
            seen += [(r.box.code, r.saturation) for r in page.rows]
            cursor = page.page.next_cursor
            if cursor is None:
                break
        want = sorted(((b.code, shown[b.id]) for b in boxes), key=lambda item: (-item[1], item[0]))
        assert [code for code, _ in seen] == [code for code, _ in want], colour
        assert all(math.isclose(a, b, rel_tol=1e-9) for (_, a), (_, b) in zip(seen, want, strict=True))
