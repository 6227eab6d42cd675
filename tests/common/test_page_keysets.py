"""The pages' keyset helpers (app/common/pagination.py keyset_pages, keyset_slice): forward and
back over ties and NULLs, every row once, the pages back the same as forward; a wrong cursor is
InvalidInput on ``cursor``."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select

from app.accounts.models import Organization
from app.common.errors import InvalidInput
from app.common.pagination import CappedCount, count_upto, encode_cursor, keyset_pages, keyset_slice
from app.extensions import db
from tests import factories


def _walk(fetch, per_page):
    pages, page = [], fetch(None)
    pages.append(page)
    while page.next_cursor:
        page = fetch(page.next_cursor)
        pages.append(page)
    back = [page]
    while page.prev_cursor:
        page = fetch(page.prev_cursor)
        back.append(page)
    return pages, list(reversed(back))


@pytest.mark.parametrize("per_page", [1, 2, 3, 7])
def test_keyset_pages_walk_ties_and_nulls_both_ways(app, world, per_page):
    rng = random.Random(per_page)
    for _ in range(9):  # shared names and counties (ties), some without a county (NULLs)
        factories.org(f"单位{rng.choice('甲乙丙')}", ["generator"], county=rng.choice([None, "331023", "331081"]))
    db.session.commit()
    query = select(Organization).order_by(Organization.county_code.desc(), Organization.name)
    everything = list(db.session.scalars(query.order_by(None).order_by(Organization.id)))
    pages, back = _walk(lambda c: keyset_pages(db.session, query, c, per_page), per_page)
    rows = [o.id for p in pages for o in p.items]
    assert sorted(rows) == sorted(o.id for o in everything) and len(rows) == len(set(rows))
    assert [[o.id for o in p.items] for p in back] == [[o.id for o in p.items] for p in pages]
    assert pages[0].prev_cursor is None and pages[-1].next_cursor is None


def test_keyset_slice_walks_a_sorted_list_both_ways_and_refuses_a_foreign_cursor():
    rows = sorted((f"b{i % 4}", i) for i in range(11))
    pages, back = _walk(lambda c: keyset_slice(rows, lambda r: r, c, 3), 3)
    assert [r for p in pages for r in p.items] == rows
    assert [p.items for p in back] == [p.items for p in pages]
    with pytest.raises(InvalidInput) as refused:
        keyset_slice(rows, lambda r: r, encode_cursor(["n", 1, "x"]), 3)  # kinds of another list
    assert set(refused.value.errors) == {"cursor"}
    with pytest.raises(InvalidInput):
        keyset_slice(rows, lambda r: r, encode_cursor(["sideways", "b1", 1]), 3)


def test_a_cursor_of_another_shape_is_invalid_input_on_cursor(app, world):
    query = select(Organization).order_by(Organization.name)
    for cursor in ("%%%", encode_cursor(["n"]), encode_cursor(["x", "a", 1]), encode_cursor([1, 2, 3, 4])):
        with pytest.raises(InvalidInput) as refused:
            keyset_pages(db.session, query, cursor, 5)
        assert set(refused.value.errors) == {"cursor"}


def test_a_page_lists_total_is_exact_up_to_the_cap_and_says_more_beyond(app, world):
    for i in range(5):
        factories.org(f"计数单位{i}", ["generator"], county="331023")
    db.session.commit()
    query = select(Organization).where(Organization.name.like("计数单位%")).order_by(Organization.name)
    assert count_upto(db.session, query, cap=5) == CappedCount(5, more=False)
    assert count_upto(db.session, query, cap=10) == CappedCount(5, more=False)
    over = count_upto(db.session, query, cap=4)
    assert over == CappedCount(4, more=True) and str(over) == "4+" and int(over) == 4
    assert str(CappedCount(1000, more=True)) == "1,000+" and str(CappedCount(37)) == "37"
    assert count_upto(db.session, query.where(Organization.id < 0)) == CappedCount(0)
