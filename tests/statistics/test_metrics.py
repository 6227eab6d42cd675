"""Statistics (app/statistics): periods, every metric on a hand-made data set, trends, red box-days,
value-added import, HTTP and tenancy. Each test runs on SQLite and PostgreSQL. Exports and the
page are in test_exports.py and test_page.py, odd input in test_odd_input.py.

The data set is tests/statistics/builders.py; the expected numbers are worked out by hand there
and here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.boxes.models import ColourChange, Fill
from app.common.errors import Forbidden, InvalidInput, NotFound
from app.extensions import db
from app.statistics import services
from app.statistics.models import ValueAdded
from app.statistics.services import parse_period
from tests import factories
from tests.statistics.builders import (
    JULY,
    approx,
    as_,
    box,
    build,
    colour,
    park_scope,
    sh,
)

# ---------------------------------------------------------------- periods (pure)


def test_parse_period_month_bounds_are_shanghai_midnights():
    p = parse_period("2025-07")
    assert (p.kind, p.label) == ("month", "2025-07")
    assert p.start_utc == datetime(2025, 6, 30, 16, 0, tzinfo=UTC)
    assert p.end_utc == datetime(2025, 7, 31, 16, 0, tzinfo=UTC)
    assert p.previous().label == "2025-06"
    assert parse_period("2025-01").previous().label == "2024-12"
    assert p.same_period_in(2024).label == "2024-07"


def test_parse_period_quarter_and_year():
    q = parse_period("2025-q3")
    assert (q.kind, q.label) == ("quarter", "2025-Q3")
    assert q.start_utc == datetime(2025, 6, 30, 16, tzinfo=UTC)
    assert q.end_utc == datetime(2025, 9, 30, 16, tzinfo=UTC)
    assert parse_period("2025-Q1").previous().label == "2024-Q4"
    assert parse_period("2025-Q4").end_utc == datetime(2025, 12, 31, 16, tzinfo=UTC)
    y = parse_period("2025")
    assert (y.kind, y.start_utc, y.end_utc) == (
        "year",
        datetime(2024, 12, 31, 16, tzinfo=UTC),
        datetime(2025, 12, 31, 16, tzinfo=UTC),
    )
    assert y.previous().label == "2024" and y.same_period_in(2024).label == "2024"
    assert [m.label for m in services.months_until(q, 4)] == ["2025-06", "2025-07", "2025-08", "2025-09"]
    assert [m.label for m in services.months_until(parse_period("2025-01"), 2)] == ["2024-12", "2025-01"]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "2025-13",
        "2025-00",
        "2025-Q5",
        "2025-Q0",
        "25-07",
        "2025/07",
        "2025-7",
        "July",
        "2025-07-01",
        None,
        2025,
        "1999",
    ],
)
def test_parse_period_rejects_malformed(bad):
    with pytest.raises(InvalidInput) as exc:
        parse_period(bad)
    assert "period" in exc.value.errors


def test_future_period_is_refused_and_current_is_allowed():
    now = datetime(2025, 7, 15, tzinfo=UTC)
    services.check_not_future(parse_period("2025-07"), now)
    services.check_not_future(parse_period("2025"), now)
    with pytest.raises(InvalidInput) as exc:
        services.check_not_future(parse_period("2025-08"), now)
    assert "future" in exc.value.errors["period"][0]


# ---------------------------------------------------------------- the metrics, through the services


def test_park_july_volumes_by_waste_code(world):
    build(world)
    m = services.metrics(db.session, as_(world, "park"), park_scope(world), JULY)
    codes = {i["waste_code"]: i for i in m["by_waste_code"]}
    # generated: 1000 + 500 (00:30 on July 1 counts); the 041-49 batch at 23:59 on June 30 does not
    assert codes["900-039-49"]["generated_kg"] == approx(1500)
    assert codes["900-041-49"]["generated_kg"] == approx(0)
    assert m["generated_kg"] == approx(1500) and m["generated_t"] == approx(1.5)
    assert m["into_storage_kg"] == approx(1500)
    # end of July: 039-49 = 1500 + 300 + 100 − 1200 = 700; 041-49 = 200; the August batch not yet
    assert codes["900-039-49"]["in_storage_end_kg"] == approx(700)
    assert codes["900-041-49"]["in_storage_end_kg"] == approx(200)
    # shipped (picked up in July): 1000 + 200 + 100 + 50 + 70 of 039-49, 100 of 041-49
    assert codes["900-039-49"]["shipped_kg"] == approx(1420)
    assert codes["900-041-49"]["shipped_kg"] == approx(100)
    assert m["shipped_kg"] == approx(1520)
    # received in July: 990 + 200 + 280 (picked up in June) + 70; 100 of 041-49
    assert codes["900-039-49"]["received_kg"] == approx(1540)
    assert m["received_kg"] == approx(1640)
    assert m["period"]["complete"] is True


def test_park_july_treatment_and_landfill_share(world):
    build(world)
    m = services.metrics(db.session, as_(world, "park"), park_scope(world), JULY)
    t = m["treatment"]
    assert (t["utilised_kg"], t["landfilled_kg"], t["incinerated_kg"], t["cement_kiln_kg"], t["other_kg"]) == (
        approx(990),
        approx(200),
        approx(100),
        approx(280),
        approx(0),
    )
    assert m["processed_kg"] == approx(1570) and m["landfilled_kg"] == approx(200)
    assert m["landfill_share"] == approx(200 / 1570)
    assert {r["method_code"]: r["quantity_kg"] for r in m["by_method"]} == {
        "C1": approx(280),
        "D1": approx(200),
        "D10": approx(100),
        "R7": approx(990),
    }
    prev, base = m["landfill_trend"]["previous"], m["landfill_trend"]["base"]
    assert (prev["period"], prev["landfill_share"]) == ("2025-06", approx(0.5))
    assert prev["change_share"] == approx(200 / 1570 - 0.5) and prev["direction"] == "down"
    assert (base["period"], base["landfill_share"]) == ("2024-07", approx(0.25))
    assert base["change_share"] == approx(200 / 1570 - 0.25) and base["direction"] == "down"
    assert m["base_year"] == 2024


def test_landfill_share_against_another_base_year_and_none_without_processing(world):
    build(world)
    scope = park_scope(world)
    m = services.metrics(db.session, as_(world, "park"), scope, JULY, base_year=2023)
    assert m["landfill_trend"]["base"]["period"] == "2023-07"
    assert m["landfill_trend"]["base"]["landfill_share"] is None
    assert m["landfill_trend"]["base"]["change_share"] is None
    empty = services.metrics(db.session, as_(world, "park"), scope, "2025-05")
    assert empty["processed_kg"] == 0 and empty["landfill_share"] is None


def test_county_and_city_add_their_enterprises(world):
    build(world)
    county = services.county_metrics(db.session, "331023", JULY)
    assert county["generated_kg"] == approx(1900)  # + E3's 400
    assert county["processed_kg"] == approx(1970) and county["landfilled_kg"] == approx(600)
    assert county["landfill_share"] == approx(600 / 1970)
    assert county["landfill_trend"]["previous"]["landfill_share"] == approx(0.5)
    city = services.metrics(db.session, as_(world, "reg_city"), services.CITY, JULY)
    assert city["processed_kg"] == approx(1970 + 9999)
    assert city["landfill_share"] == approx(10599 / 11969)
    wenling = services.county_metrics(db.session, "331081", JULY)
    assert wenling["landfill_share"] == approx(1.0) and wenling["generated_kg"] == approx(9999)
    assert services.county_metrics(db.session, "331022", JULY)["landfill_share"] is None
    # The index's one-query figure agrees with the full statistics.
    light = services.county_landfill(db.session, "331023", JULY)
    assert (light["processed_kg"], light["landfilled_kg"]) == (approx(1970), approx(600))
    assert light["landfill_share"] == approx(600 / 1970)
    assert services.county_landfill(db.session, "331022", JULY)["landfill_share"] is None


def test_regeneration_and_regenerated_fills(world):
    build(world)
    r = services.metrics(db.session, as_(world, "park"), park_scope(world), JULY)["regeneration"]
    # waste carbon processed in July: 990 + 200 + 280; regeneration batches consumed 600 of it
    assert r["waste_carbon_processed_kg"] == approx(1470)
    assert r["waste_carbon_regenerated_kg"] == approx(600)
    assert r["regeneration_rate_share"] == approx(600 / 1470)
    # fills in July at the park's boxes: 2000 (regenerated) + 1000
    assert (r["fills_count"], r["fills_kg"]) == (2, approx(3000))
    assert (r["regenerated_fills_count"], r["regenerated_fills_kg"]) == (1, approx(2000))
    assert r["regenerated_fills_count_share"] == approx(0.5)
    assert r["regenerated_fills_kg_share"] == approx(2000 / 3000)
    city = services.metrics(db.session, as_(world, "op"), services.CITY, JULY)["regeneration"]
    assert (city["fills_count"], city["fills_kg"]) == (3, approx(3700))


def test_manifest_counts(world):
    build(world)
    mf = services.metrics(db.session, as_(world, "park"), park_scope(world), JULY)["manifests"]
    assert mf == {
        "shipped_count": 5,
        "on_time_count": 2,
        "overdue_count": 2,
        "discrepant_count": 1,
        "rejected_count": 1,
        "in_transit_count": 0,
        "on_time_share": approx(0.5),
    }


def test_boxes_by_colour_and_red_box_days_clipped_to_the_period(world):
    data = build(world)
    scope = park_scope(world)
    boxes = services.metrics(db.session, as_(world, "park"), scope, JULY)["boxes"]
    assert boxes["by_colour"] == {"grey": 1, "green": 1, "yellow": 0, "red": 1}
    assert boxes["total_count"] == 3  # the box registered in August is not counted
    # b1: 9 days (red since June 25, clipped at July 1) + 4.5 days; b2: red from July 30 to the end: 2
    assert boxes["red_box_days"] == approx(15.5)
    june = services.metrics(db.session, as_(world, "park"), scope, "2025-06")["boxes"]
    assert june["red_box_days"] == approx(6)  # b1 from June 25 to the end of June
    assert june["by_colour"] == {"grey": 1, "green": 1, "yellow": 0, "red": 1}  # b1 red, b2 green, b3 grey
    q3 = services.metrics(db.session, as_(world, "park"), scope, "2025-Q3")["boxes"]
    assert q3["red_box_days"] == approx(9 + 4.5 + 2 + 31 + 30)  # b2 stays red to the end of September
    city = services.metrics(db.session, as_(world, "op"), services.CITY, JULY)["boxes"]
    assert city["red_box_days"] == approx(15.5 + 31)  # b5 in Wenling: red all July
    assert data.boxes["b4"].id  # registered after the period


def test_current_period_counts_colours_now_and_red_days_up_to_now(world, now):
    b = factories.box(world.enterprise, now=now - timedelta(days=400))
    start = services.month_of(now).start_utc

    db.session.add(ColourChange(box_id=b.id, colour="red", changed_at=start, recorded_at=start, reasons=[]))
    db.session.commit()
    m = services.metrics(db.session, as_(world, "park"), park_scope(world), services.month_of(now).label, now=now)
    assert m["period"]["complete"] is False
    assert m["boxes"]["by_colour"]["red"] == 1
    assert m["boxes"]["red_box_days"] == pytest.approx((now - start).total_seconds() / 86400, abs=1e-3)


def test_on_time_replacements(world):
    build(world)
    rp = services.metrics(db.session, as_(world, "park"), park_scope(world), JULY)["replacements"]
    # the July 10 replacement came after the box turned red for saturation; the July 25 one after a
    # red for a sensor reason only, which does not make a replacement late
    assert rp == {
        "replacement_count": 2,
        "on_time_replacement_count": 1,
        "late_replacement_count": 1,
        "on_time_replacement_share": approx(0.5),
    }


def test_a_replacement_that_knows_it_was_late_counts_as_late(world):
    # The fills of build() predate Fill.replaced_overdue (None): the colour history decides. A
    # recorded flag wins over the history, either way.
    data = build(world)
    july = db.session.scalars(
        sa.select(Fill).where(Fill.box_id == data.boxes["b1"].id, Fill.kind == "replacement").order_by(Fill.filled_at)
    ).all()
    assert len(july) == 2 and all(f.replaced_overdue is None for f in july)
    july[0].replaced_overdue, july[1].replaced_overdue = False, True  # against the history both times
    db.session.commit()
    rp = services.metrics(db.session, as_(world, "park"), park_scope(world), JULY)["replacements"]
    assert (rp["on_time_replacement_count"], rp["late_replacement_count"]) == (1, 1)
    july[0].replaced_overdue = True
    db.session.commit()
    rp = services.metrics(db.session, as_(world, "park"), park_scope(world), JULY)["replacements"]
    assert (rp["on_time_replacement_count"], rp["late_replacement_count"]) == (0, 2)


def test_mass_balance_gaps_explain_their_numbers(world):
    build(world)
    mb = services.metrics(db.session, as_(world, "park"), park_scope(world), JULY)["mass_balance"]
    gaps = {g["code"]: g for g in mb["gaps"]}
    assert mb["replaced_carbon_kg"] == approx(4000) and mb["waste_carbon_weighed_kg"] == approx(3900)
    assert gaps["replaced_vs_weighed"]["gap_kg"] == approx(100)
    assert "4000" in gaps["replaced_vs_weighed"]["zh"] and "3900" in gaps["replaced_vs_weighed"]["en"]
    assert gaps["generated_vs_shipped"]["gap_kg"] == approx(1500 - 1520)
    assert gaps["generated_vs_shipped"]["numbers"]["stock_change_kg"] == approx(1500 - 1520 + 100)
    # picked up in July and received: 1000/990, 300/300, 70/70
    assert gaps["shipped_vs_received"]["gap_kg"] == approx(10)
    assert gaps["shipped_vs_received"]["numbers"] == {"shipped_kg": approx(1370), "received_kg": approx(1360)}
    assert mb["filled_kg"] == approx(3000) and mb["waste_carbon_generated_kg"] == approx(1500)


def test_query_count_does_not_grow_with_the_data(world):
    statements: list[str] = []

    def count(*args):
        statements.append(args[2])

    scope = park_scope(world)
    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        services.metrics(db.session, as_(world, "park"), scope, JULY)
        empty = len(statements)
        build(world)
        statements.clear()
        services.metrics(db.session, as_(world, "park"), scope, JULY)
        full = len(statements)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert full == empty and full <= 15


def test_year_period_compares_with_a_base_year_that_is_also_the_previous_period(world):
    # 2025 with the default base year 2024: previous and base are both 2024. A CASE gives a row to
    # its first matching bucket only, so the base used to come back empty (no share, no trend).
    build(world)
    m = services.metrics(db.session, as_(world, "park"), park_scope(world), "2025")
    prev, base = m["landfill_trend"]["previous"], m["landfill_trend"]["base"]
    assert prev["period"] == base["period"] == "2024"
    # 2024 at the park: July 2024, 100 D1 + 300 R7
    assert prev["processed_kg"] == approx(400) and base["processed_kg"] == approx(400)
    assert base["landfill_share"] == approx(0.25) and base["change_share"] == prev["change_share"]
    series = services.landfill_by_period(db.session, park_scope(world), [services.parse_period("2024-07")] * 2)
    assert [p["landfill_share"] for p in series] == [approx(0.25), approx(0.25)]


def test_red_box_days_edges(world):
    """guard: red before the period and turned green exactly at its start; a box registered in the
    period; two changes at the same instant; the colour at the end from the last change."""
    e = world.enterprise
    x = box(e, sh(2025, 1, 1))
    y = box(e, sh(2025, 7, 5))
    z = box(e, sh(2025, 1, 1))
    db.session.flush()
    colour(x, sh(2025, 6, 1), "red", "saturation_full")
    colour(x, sh(2025, 7, 1), "green")  # exactly at the start of July: no red day in July
    colour(y, sh(2025, 7, 10), "red", "replacement_overdue")  # → end of July: 22 days
    colour(z, sh(2025, 7, 20), "red", "saturation_full")
    colour(z, sh(2025, 7, 20), "yellow")  # same instant, recorded after: zero-length red
    db.session.commit()
    scope = park_scope(world)
    july = services.metrics(db.session, as_(world, "park"), scope, JULY)["boxes"]
    assert july["red_box_days"] == approx(22)
    assert july["by_colour"] == {"grey": 0, "green": 1, "yellow": 1, "red": 1}
    june = services.metrics(db.session, as_(world, "park"), scope, "2025-06")["boxes"]
    assert june["red_box_days"] == approx(30)
    assert june["by_colour"] == {"grey": 1, "green": 0, "yellow": 0, "red": 1}  # y not yet registered


# ---------------------------------------------------------------- generation intensity and value added


def test_value_added_import_and_intensity(world, api):
    build(world)
    r = api.post(
        "/api/v1/value-added",
        [
            {
                "scope": "park",
                "park_id": world.park.id,
                "period": JULY,
                "value_added_10k_yuan": 400,
                "source_department": "天台县统计局",
            },
            {
                "scope": "park",
                "park_id": world.park.id,
                "period": "2024-07",
                "value_added_10k_yuan": 200,
                "source_department": "天台县统计局",
            },
            {
                "scope": "county",
                "county_code": "331023",
                "period": JULY,
                "value_added_10k_yuan": 1000,
                "source_department": "天台县统计局",
            },
        ],
        as_="reg_tt",
    )
    assert r.status_code == 200, r.get_json()
    assert (r.get_json()["created"], r.get_json()["updated"]) == (3, 0)
    # a second import of the same scope and period replaces the figure
    r = api.post(
        "/api/v1/value-added",
        [
            {
                "scope": "park",
                "park_id": world.park.id,
                "period": JULY,
                "value_added_10k_yuan": 500,
                "source_department": "天台县经信局",
            }
        ],
        as_="op",
    )
    assert r.status_code == 200 and (r.get_json()["created"], r.get_json()["updated"]) == (0, 1), r.get_json()
    i = api.get(f"/api/v1/parks/{world.park.id}/metrics?period={JULY}", as_="park").get_json()["intensity"]
    assert i["value_added_10k_yuan"] == 500 and i["value_added_source"] == "天台县经信局"
    assert i["generation_intensity_t_per_10k_yuan"] == approx(1.5 / 500)
    assert i["previous_year_intensity_t_per_10k_yuan"] == approx(0.3 / 200)
    assert i["yoy_growth_share"] == approx((1.5 / 500 - 0.3 / 200) / (0.3 / 200))
    county = services.county_metrics(db.session, "331023", JULY)["intensity"]
    assert county["generation_intensity_t_per_10k_yuan"] == approx(1.9 / 1000)
    assert county["yoy_growth_share"] is None  # no value added for July 2024
    listed = api.get("/api/v1/value-added?period=2025-07", as_="park").get_json()
    assert [(x["scope"], x["value_added_10k_yuan"]) for x in listed["items"]] == [("park", 500)]
    assert api.get("/api/v1/value-added", as_="reg_tt").get_json()["total"] == 3
    assert api.get("/api/v1/value-added", as_="other").get_json()["total"] == 0


def test_a_quarter_without_its_own_value_added_sums_its_months_when_all_are_there(world, api):
    build(world)

    def month(label, value):
        return {
            "scope": "park",
            "park_id": world.park.id,
            "period": label,
            "value_added_10k_yuan": value,
            "source_department": "天台县统计局",
        }

    def q3():
        return api.get(f"/api/v1/parks/{world.park.id}/metrics?period=2025-Q3", as_="park").get_json()["intensity"]

    assert api.post("/api/v1/value-added", [month("2025-07", 400), month("2025-08", 350)], as_="op").status_code == 200
    assert q3()["value_added_10k_yuan"] is None  # September missing: a partial sum is never used
    assert api.post("/api/v1/value-added", [month("2025-09", 250)], as_="op").status_code == 200
    i = q3()
    assert i["value_added_10k_yuan"] == approx(1000) and "3 个月合计" in i["value_added_source"]
    assert i["generation_intensity_t_per_10k_yuan"] == approx(i["generated_t"] / 1000)
    # A figure imported for the quarter itself wins over the sum of its months.
    assert (
        api.post(
            "/api/v1/value-added", [{**month("2025-Q3", 990), "source_department": "市统计局"}], as_="op"
        ).status_code
        == 200
    )
    assert (q3()["value_added_10k_yuan"], q3()["value_added_source"]) == (990, "市统计局")


def test_value_added_bad_items_store_nothing(world, api):
    r = api.post(
        "/api/v1/value-added",
        [
            {
                "scope": "park",
                "park_id": world.park.id,
                "period": JULY,
                "value_added_10k_yuan": 100,
                "source_department": "统计局",
            },
            {
                "scope": "park",
                "park_id": 99999,
                "period": "2025-13",
                "value_added_10k_yuan": -5,
                "source_department": "统计局",
            },
        ],
        as_="op",
    )
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    errors = r.get_json()["errors"]["1"]
    assert set(errors) >= {"period", "value_added_10k_yuan"}
    r = api.post(
        "/api/v1/value-added",
        [
            {
                "scope": "park",
                "park_id": 99999,
                "period": JULY,
                "value_added_10k_yuan": 5,
                "source_department": "统计局",
            },
            {
                "scope": "county",
                "county_code": "331023",
                "period": "2099",
                "value_added_10k_yuan": 5,
                "source_department": "统计局",
            },
            {"scope": "county", "period": JULY, "value_added_10k_yuan": 5, "source_department": "统计局"},
        ],
        as_="op",
    )
    assert r.status_code == 422, r.get_json()
    errors = r.get_json()["errors"]
    assert "county_code" in errors["2"]
    r = api.post(
        "/api/v1/value-added",
        [
            {
                "scope": "park",
                "park_id": 99999,
                "period": JULY,
                "value_added_10k_yuan": 5,
                "source_department": "统计局",
            },
            {
                "scope": "county",
                "county_code": "331023",
                "period": "2099",
                "value_added_10k_yuan": 5,
                "source_department": "统计局",
            },
        ],
        as_="op",
    )
    assert r.status_code == 422, r.get_json()
    errors = r.get_json()["errors"]
    assert "park_id" in errors["0"] and "future" in errors["1"]["period"][0]
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ValueAdded)) == 0


def test_value_added_import_is_for_operators_and_regulators_in_their_county(world, api):
    item = {
        "scope": "county",
        "county_code": "331081",
        "period": JULY,
        "value_added_10k_yuan": 5,
        "source_department": "温岭市统计局",
    }
    assert api.post("/api/v1/value-added", [item], as_="park").status_code == 403
    assert api.post("/api/v1/value-added", [item], as_="ent").status_code == 403
    assert api.post("/api/v1/value-added", [item], as_="reg_tt").status_code == 403  # another county
    assert api.post("/api/v1/value-added", [{**item, "scope": "city"}], as_="reg_tt").status_code == 403
    assert api.post("/api/v1/value-added", [item], as_="reg_city").status_code == 200
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ValueAdded)) == 1


# ---------------------------------------------------------------- HTTP: JSON, errors, tenancy


def test_http_park_metrics_json(world, api):
    build(world)
    r = api.get(f"/api/v1/parks/{world.park.id}/metrics?period={JULY}", as_="park")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["scope"] == {
        "kind": "park",
        "park_id": world.park.id,
        "county_code": "331023",
        "name": "天台县经济开发区",
    }
    assert body["landfill_share"] == approx(200 / 1570)
    assert body["boxes"]["red_box_days"] == approx(15.5)
    assert "regeneration_rate_share" in body["definitions"]
    r = api.get(f"/api/v1/parks/{world.park.id}/metrics?period={JULY}&base_year=2025", as_="park")
    assert r.get_json()["landfill_trend"]["base"]["period"] == "2025-07"
    assert r.get_json()["landfill_trend"]["base"]["change_share"] == approx(0)


def test_http_base_year_default_comes_from_the_setting(app, world, api):
    build(world)
    app.config["STATISTICS_BASE_YEAR"] = 2025
    try:
        body = api.get(f"/api/v1/parks/{world.park.id}/metrics?period=2025-06", as_="park").get_json()
    finally:
        app.config.pop("STATISTICS_BASE_YEAR")
    assert body["base_year"] == 2025 and body["landfill_trend"]["base"]["period"] == "2025-06"


@pytest.mark.parametrize("period", ["2025-13", "abc", "2025-Q9", "2099", "2099-01"])
def test_http_bad_or_future_period_is_422_naming_the_field(world, api, period):
    r = api.get(f"/api/v1/metrics?period={period}", as_="op")
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    assert "period" in r.get_json()["errors"]


def test_http_missing_period_and_bad_base_year_are_422(world, api):
    assert "period" in api.get("/api/v1/metrics", as_="op").get_json()["errors"]
    r = api.get("/api/v1/metrics?period=2025&base_year=1500", as_="op")
    assert r.status_code == 422 and "base_year" in r.get_json()["errors"]


def test_http_unknown_park_or_county_is_404(world, api):
    assert api.get("/api/v1/parks/99999/metrics?period=2025", as_="op").status_code == 404
    assert api.get("/api/v1/counties/999999/metrics?period=2025", as_="op").status_code == 404
    assert api.get("/api/v1/parks/99999/metrics.csv?period=2025", as_="op").status_code == 404


def test_tenancy_park_admin_sees_only_its_park(world, api):
    other_park = factories.create_park(
        db.session, factories.op_principal(), {"name": "温岭市东部产业集聚区", "county_code": "331081"}
    )
    db.session.commit()
    assert api.get(f"/api/v1/parks/{world.park.id}/metrics?period=2025", as_="park").status_code == 200
    r = api.get(f"/api/v1/parks/{other_park.id}/metrics?period=2025", as_="park")
    assert r.status_code == 403 and r.mimetype == "application/problem+json"
    assert api.get(f"/api/v1/parks/{other_park.id}/metrics.xlsx?period=2025", as_="park").status_code == 403
    assert api.get("/api/v1/counties/331023/metrics?period=2025", as_="park").status_code == 403
    assert api.get("/api/v1/metrics?period=2025", as_="park").status_code == 403


def test_tenancy_county_regulator_sees_its_county_and_parks(world, api):
    other_park = factories.create_park(
        db.session, factories.op_principal(), {"name": "温岭市东部产业集聚区", "county_code": "331081"}
    )
    db.session.commit()
    assert api.get("/api/v1/counties/331023/metrics?period=2025", as_="reg_tt").status_code == 200
    assert api.get(f"/api/v1/parks/{world.park.id}/metrics?period=2025", as_="reg_tt").status_code == 200
    assert api.get("/api/v1/counties/331081/metrics?period=2025", as_="reg_tt").status_code == 403
    assert api.get(f"/api/v1/parks/{other_park.id}/metrics?period=2025", as_="reg_tt").status_code == 403
    assert api.get("/api/v1/metrics?period=2025", as_="reg_tt").status_code == 403
    for who in ("reg_city", "op"):
        assert api.get("/api/v1/counties/331081/metrics?period=2025", as_=who).status_code == 200
        assert api.get("/api/v1/metrics?period=2025", as_=who).status_code == 200


def test_tenancy_enterprises_and_services_get_403(world, api):
    for who in ("ent", "other", "svc"):
        assert api.get(f"/api/v1/parks/{world.park.id}/metrics?period=2025", as_=who).status_code == 403
        assert api.get("/api/v1/counties/331023/metrics?period=2025", as_=who).status_code == 403
    assert api.get("/api/v1/metrics?period=2025", as_=None).status_code == 401
    with pytest.raises(Forbidden):
        services.metrics(db.session, as_(world, "ent"), park_scope(world), "2025")
    with pytest.raises(NotFound):
        services.resolve_scope(db.session, "county", "123456")


# ---------------------------------------------------------------- demo extension


def test_demo_extension_imports_value_added_that_adds_up(world, now):
    import random

    from app.demo.data import DemoContext
    from app.statistics.demo import value_added

    ctx = DemoContext(now=now, rng=random.Random(1), operator=world.users["op"], parks={"tiantai": world.park})
    value_added(db.session, ctx, now)
    db.session.commit()
    rows = {(r.scope_key, r.period): r.value_added_10k_yuan for r in db.session.scalars(sa.select(ValueAdded))}
    last_year = services.month_of(now).year - 1
    months = [rows[(f"park:{world.park.id}", f"{last_year}-{m:02d}")] for m in range(1, 13)]
    assert rows[(f"park:{world.park.id}", str(last_year))] == pytest.approx(sum(months), abs=0.5)
    assert ("county:331023", f"{last_year}-Q2") in rows and ("city", services.month_of(now).label) in rows
