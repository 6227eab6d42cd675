"""Ledger (台账): reference data, generation records from replacements and by hand, stock, scoping."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.ledger.calendar import load_calendar, parse_calendar
from app.ledger.catalogue import (
    EDITIONS,
    load_catalogue,
    load_ledger_rules,
    load_methods,
    parse_catalogue,
    parse_ledger_rules,
)
from app.rules import RulesError
from tests import factories
from tests.ledger.builders import ago, build_loop, iso, ledger_count, stock_api, stock_row

# ---------------------------------------------------------------- reference data (no database)


def test_catalogue_2021_is_complete_and_valid():
    catalogue = load_catalogue("2021")
    assert len(catalogue) == 467
    assert catalogue.get("900-039-49").hazard == "T"
    assert catalogue.get("900-039-49").category == "HW49"
    assert catalogue.get("900-041-49").hazard == "T/In"
    assert catalogue.get("900-405-06").hazard == "T/I/R"
    assert catalogue.get("841-001-01").hazard == "In"
    assert "999-999-49" not in catalogue
    assert all(code[-2:] == entry.category[2:] for code, entry in catalogue.entries.items())
    assert len({e.category for e in catalogue.entries.values()}) == 46


def test_catalogue_validation_lists_problems():
    meta = EDITIONS["2021"]
    good = {
        "category": "HW49",
        "category_name": "其他废物",
        "industry": "非特定行业",
        "code": "900-039-49",
        "description": "废活性炭",
        "hazard": "T",
    }
    with pytest.raises(RulesError) as err:
        parse_catalogue(
            [
                good,
                {**good, "code": "900-039-48"},
                {**good, "code": "900-39-49"},
                good,
                {**good, "code": "900-040-49", "hazard": "X"},
            ],
            meta,
            "test.csv",
        )
    message = str(err.value)
    assert "does not end with its category number" in message
    assert "is not NNN-NNN-NN" in message
    assert "appears twice" in message
    assert "hazard 'X'" in message
    assert "expected 467" in message
    with pytest.raises(RulesError):
        load_catalogue("2025")  # not shipped yet: an unknown edition is refused, never guessed


def test_holiday_calendar_counts_working_days():
    cal = load_calendar()
    assert cal.covers(date(2025, 5, 1)) and cal.covers(date(2026, 12, 31)) and not cal.covers(date(2027, 1, 4))
    assert not cal.is_working_day(date(2025, 10, 1))
    assert cal.is_working_day(date(2025, 9, 28))  # a Sunday made a working day (调休)
    assert not cal.is_working_day(date(2025, 9, 27))  # an ordinary Saturday
    # Tuesday 30 Sep 2025: the National Day week is off, Saturday 11 Oct is worked.
    assert cal.add_working_days(date(2025, 9, 30), 5) == date(2025, 10, 14)
    assert cal.add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 14)  # Saturday before Spring Festival
    assert cal.add_working_days(date(2026, 2, 14), 1) == date(2026, 2, 24)
    assert cal.working_days_between(date(2025, 9, 30), date(2025, 10, 14)) == 5
    assert cal.add_working_days(date(2027, 3, 5), 1) == date(2027, 3, 8)  # an unlisted year: weekends only


# What the State Council notices say: each holiday block's first day and length in days, and the
# make-up working days (国办发明电〔2024〕12号 for 2025; the notice of 2025-11-04 for 2026).
_NOTICES = {
    2025: (
        [
            (date(2025, 1, 1), 1),
            (date(2025, 1, 28), 8),
            (date(2025, 4, 4), 3),
            (date(2025, 5, 1), 5),
            (date(2025, 5, 31), 3),
            (date(2025, 10, 1), 8),
        ],
        [date(2025, 1, 26), date(2025, 2, 8), date(2025, 4, 27), date(2025, 9, 28), date(2025, 10, 11)],
    ),
    2026: (
        [
            (date(2026, 1, 1), 3),
            (date(2026, 2, 15), 9),
            (date(2026, 4, 4), 3),
            (date(2026, 5, 1), 5),
            (date(2026, 6, 19), 3),
            (date(2026, 9, 25), 3),
            (date(2026, 10, 1), 7),
        ],
        [
            date(2026, 1, 4),
            date(2026, 2, 14),
            date(2026, 2, 28),
            date(2026, 5, 9),
            date(2026, 9, 20),
            date(2026, 10, 10),
        ],
    ),
}


@pytest.mark.parametrize("year", sorted(_NOTICES))
def test_holiday_calendar_is_the_state_council_notice(year):
    cal = load_calendar()
    blocks, workdays = _NOTICES[year]
    for first, length in blocks:
        days = [first + timedelta(days=i) for i in range(length)]
        assert not any(cal.is_working_day(d) for d in days), first
        # The block ends there: the day after is a working day or an ordinary weekend.
        after = days[-1] + timedelta(days=1)
        assert cal.is_working_day(after) or after.weekday() >= 5
    off_weekdays = {
        d for first, length in blocks for i in range(length) if (d := first + timedelta(days=i)).weekday() < 5
    }
    day, listed_workdays = date(year, 1, 1), []
    while day.year == year:
        if day.weekday() >= 5 and cal.is_working_day(day):
            listed_workdays.append(day)
        if day.weekday() < 5 and not cal.is_working_day(day):
            assert day in off_weekdays, day  # no weekday off that the notice does not give
        day += timedelta(days=1)
    assert listed_workdays == workdays


def test_holiday_calendar_validation():
    with pytest.raises(RulesError) as err:
        parse_calendar(
            {
                "years": {
                    2025: {
                        "holidays": [
                            {"name": "元旦", "from": "2025-01-01", "to": "2025-01-01"},
                            {"name": "坏", "from": "2025-03-05", "to": "2025-03-01"},
                        ],
                        "workdays": ["2025-01-01", "2025-01-06"],
                    }
                }
            }
        )
    message = str(err.value)
    assert "2025-01-06 is a weekday" in message
    assert "both a holiday and a make-up working day" in message
    assert "not a plausible holiday range" in message


def test_methods_and_thresholds_load_and_validate():
    methods = load_methods()
    assert set(methods) == {
        "R1",
        "R2",
        "R3",
        "R4",
        "R5",
        "R6",
        "R7",
        "R8",
        "R9",
        "R15",
        "C1",
        "C2",
        "C3",
        "D1",
        "D9",
        "D10",
        "D16",
    }
    assert [m.code for m in methods.values() if m.landfill] == ["D1"]
    rules = load_ledger_rules()
    assert rules.quantity_tolerance == 0.05 and rules.receipt_working_days == 5
    assert rules.paper_entry_working_days == 10
    with pytest.raises(RulesError) as err:
        parse_ledger_rules(
            {
                "version": "x",
                "manifest": {"quantity_tolerance": 5, "receipt_working_days": 0},
                "waste_carbon_codes": ["900-000-49"],
                "anomalies": {},
            },
            "t.yaml",
        )
    message = str(err.value)
    assert "quantity_tolerance" in message and "receipt_working_days" in message and "900-000-49" in message


# ---------------------------------------------------------------- generation records


def test_replacement_writes_generation_and_storage_records(api, world):
    loop = build_loop(world, api, removed_kg=1850.5)
    r = api.get("/api/v1/ledger", as_="ent")
    assert r.status_code == 200
    records = r.get_json()["items"]
    assert [x["stage"] for x in records] == ["generation", "storage"]
    generation, storage = records
    assert generation["batch_code"] == loop.batch_code
    assert generation["waste_code"] == "900-039-49" and generation["category"] == "HW49"
    assert generation["quantity_kg"] == 1850.5 and generation["quantity_t"] == 1.8505
    assert generation["box_id"] == loop.box.id and generation["origin"] == "replacement"
    assert generation["on_site_kg"] == 1850.5 and generation["available_kg"] == 1850.5
    assert storage["source_batch_code"] == loop.batch_code and storage["stage_zh"] == "入库"
    item = stock_api(api)
    assert item["on_hand_kg"] == 1850.5 and item["available_kg"] == 1850.5 and item["reserved_kg"] == 0
    # The initial fill removed nothing: exactly one generation record.
    assert ledger_count() == 2


def test_box_waste_code_is_used_and_checked(api, world):
    box = factories.box(world.enterprise, world.service, waste_code="900-405-06")
    bad = factories.box(world.enterprise, world.service, waste_code="900-000-49")
    factories.db.session.commit()
    for b in (box, bad):
        assert (
            api.post(
                f"/api/v1/boxes/{b.code}/fills",
                {"mass_kg": 500, "iodine_mg_g": 900, "filled_at": iso(ago(days=5))},
                as_="ent",
            ).status_code
            == 201
        )
    r = api.post(
        f"/api/v1/boxes/{box.code}/fills", {"mass_kg": 500, "iodine_mg_g": 900, "removed_waste_kg": 480}, as_="ent"
    )
    assert r.status_code == 201, r.get_json()
    assert stock_row(world.enterprise.id, "900-405-06") == (480.0, 0.0)
    # A code outside the catalogue cannot enter the ledger: the replacement is refused, nothing stored.
    r = api.post(
        f"/api/v1/boxes/{bad.code}/fills", {"mass_kg": 500, "iodine_mg_g": 900, "removed_waste_kg": 480}, as_="ent"
    )
    assert r.status_code == 422 and "waste_code" in r.get_json()["errors"]
    assert stock_row(world.enterprise.id, "900-000-49") == (0.0, 0.0)
    assert api.get(f"/api/v1/boxes/{bad.code}/history", as_="ent").get_json()["fills"].__len__() == 1


def test_hand_recorded_waste_and_bad_input(api, world):
    body = {
        "waste_code": "900-041-49",
        "quantity_kg": 120,
        "container_type": "桶",
        "container_count": 3,
        "generated_at": "2025-07-01T09:30:00",
    }
    r = api.post("/api/v1/ledger", body, as_="ent_staff")
    assert r.status_code == 201, r.get_json()
    record = r.get_json()
    assert record["waste_name"].startswith("含有或沾染毒性") and record["category"] == "HW49"
    assert record["occurred_at"].startswith("2025-07-01T01:30:00")  # no offset means Asia/Shanghai
    before = ledger_count()
    for bad, field in [
        ({**body, "waste_code": "999-999-49"}, "waste_code"),
        ({**body, "waste_code": "HW49"}, "waste_code"),
        ({**body, "quantity_kg": 0}, "quantity_kg"),
        ({**body, "quantity_kg": -5}, "quantity_kg"),
        ({**body, "generated_at": "2099-01-01T00:00:00"}, "generated_at"),
    ]:
        r = api.post("/api/v1/ledger", bad, as_="ent")
        assert r.status_code == 422, (bad, r.get_json())
        assert field in r.get_json()["errors"]
    # Another enterprise cannot write into this one's ledger.
    r = api.post("/api/v1/ledger", {**body, "enterprise_id": world.enterprise.id}, as_="other")
    assert r.status_code == 403
    assert ledger_count() == before
    assert stock_api(api, code="900-041-49")["on_hand_kg"] == 120


def test_ledger_scope_and_period(api, world):
    for day, quantity in (("2025-03-01", 10), ("2025-04-15", 20), ("2025-05-30", 30)):
        assert (
            api.post(
                "/api/v1/ledger",
                {"waste_code": "900-041-49", "quantity_kg": quantity, "generated_at": f"{day}T23:30:00"},
                as_="ent",
            ).status_code
            == 201
        )
    eid = world.enterprise.id
    r = api.get(f"/api/v1/ledger?enterprise={eid}&from=2025-04-01&to=2025-05-30&stage=generation", as_="reg_tt")
    assert r.status_code == 200
    assert [x["quantity_kg"] for x in r.get_json()["items"]] == [20, 30]
    assert api.get(f"/api/v1/ledger?enterprise={eid}", as_="reg_city").get_json()["total"] == 6
    assert api.get(f"/api/v1/ledger?enterprise={eid}", as_="park").status_code == 200
    # Another county's enterprise and an unrelated enterprise see nothing of it.
    assert api.get(f"/api/v1/ledger?enterprise={eid}", as_="other").status_code == 404
    assert api.get(f"/api/v1/stock?enterprise={eid}", as_="other").status_code == 404
    stock = api.get(f"/api/v1/stock?enterprise={eid}", as_="reg_tt").get_json()
    assert stock["total_on_hand_kg"] == 60 and stock["management_class"] == "registration"
