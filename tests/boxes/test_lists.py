"""The regulator's red and yellow lists as a service (app/boxes/services/lists.py): scope, keyset paging."""

from __future__ import annotations

from app.accounts.services import Principal
from app.boxes.services import lists
from app.common.pagination import CappedCount
from app.extensions import db
from tests.ledger.builders import ago
from tests.web.builders import coloured_box


def test_the_list_is_scoped_bounded_and_reads_the_stored_colour(app, world):
    tiantai = [coloured_box(world.enterprise, world.service, 30 + i) for i in range(3)]
    wenling = coloured_box(world.other_enterprise, None, 30)
    now = ago(days=0)
    regulator = Principal(user=world.users["reg_tt"])
    first = lists.colour_list(db.session, regulator, "red", lists.BoxFilters(), now, per_page=2)
    assert (first.total, len(first.rows), first.page.prev_cursor) == (
        CappedCount(3),
        2,
        None,
    ) and first.page.next_cursor
    # Longest in red first; the days from the colour history.
    assert [r.box.code for r in first.rows] == [tiantai[2].code, tiantai[1].code]
    assert first.rows[0].days > first.rows[1].days > 0
    last = lists.colour_list(
        db.session, regulator, "red", lists.BoxFilters(), now, cursor=first.page.next_cursor, per_page=2
    )
    assert [r.box.code for r in last.rows] == [tiantai[0].code] and last.page.next_cursor is None
    assert last.page.prev_cursor is not None
    city = Principal(user=world.users["reg_city"])
    everything = lists.colour_list(db.session, city, "red", lists.BoxFilters(), now)
    assert wenling.code in {r.box.code for r in everything.rows} and everything.total == CappedCount(4)
    park = Principal(user=world.users["park"])
    assert lists.colour_list(db.session, park, "red", lists.BoxFilters(county="331081"), now).total == CappedCount(0)
    choices = lists.filter_choices(db.session, regulator)
    assert [c.code for c in choices["counties"]] == ["331023"]
    assert world.other_enterprise.id not in {o.id for o in choices["enterprises"]}
