"""Scores of the synergy index, computed by hand for a small example of three counties."""

from __future__ import annotations

import pytest
from sqlalchemy import delete

from app.accounts.models import County
from app.accounts.services import Principal
from app.common.errors import Forbidden, InvalidInput
from app.extensions import db
from app.index import importing, services

JJ, TT, WL = "331002", "331023", "331081"  # 椒江区, 天台县, 温岭市
OTHERS = {"331003", "331004", "331022", "331024", "331082", "331083"}


@pytest.fixture
def indicator_25(monkeypatch):
    """Indicator 25 values per (county, period) for these tests; anything else → no processed waste."""
    values: dict[tuple[str, str], float] = {}
    calls: list[tuple[str, str]] = []

    def fake(session, county_code, period):
        calls.append((county_code, period))
        return values.get((county_code, period))

    monkeypatch.setattr(services.quarters, "indicator_25_value", fake)  # where resolve_values looks it up
    return values


def load(world, rows: list[tuple[str, str, int, float]]) -> None:
    raw = importing.read_json(
        [
            {"county_code": c, "period": p, "indicator": n, "value": v, "source_department": "市生态环境局"}
            for c, p, n, v in rows
        ]
    )
    services.import_values(db.session, Principal(user=world.users["op"]), raw)
    db.session.commit()


def by_county(result: dict) -> dict[str, dict]:
    return {c["county_code"]: c for c in result["counties"]}


def score_of(county: dict, number: int) -> float:
    return next(i["score"] for i in county["indicators"] if i["number"] == number)


def level(county: dict, key: str, ident) -> float:
    field = "id" if key == "first_level" else "number"
    return next(x["score"] for x in county[key] if x[field] == ident)


def test_minmax_by_hand():
    assert services.minmax_scores({"a": 30, "b": 25, "c": 35}, 4, "lower") == {"a": 2.0, "b": 4.0, "c": 0.0}
    assert services.minmax_scores({"a": 30, "b": 25, "c": 35}, 4, "higher") == {"a": 2.0, "b": 0.0, "c": 4.0}
    assert services.minmax_scores({"a": 5, "b": 5, "c": None}, 2, "higher") == {"a": 2, "b": 2, "c": 0.0}
    assert services.minmax_scores({"a": None, "b": None}, 2, "higher") == {"a": 0.0, "b": 0.0}
    assert services.minmax_scores({"a": 7, "b": None}, 3, "lower") == {"a": 3, "b": 0.0}


def test_three_counties_by_hand(api, world, indicator_25):
    load(
        world,
        [
            # 1 PM2.5 (lower is better, weight 4): 25 best, 35 worst → JJ 4 × (35 − 30)/10 = 2, TT 4, WL 0
            (JJ, "2025", 1, 30),
            (TT, "2025", 1, 25),
            (WL, "2025", 1, 35),
            # 2 (higher, weight 2): all equal → full weight each
            (JJ, "2025", 2, 5),
            (TT, "2025", 2, 5),
            (WL, "2025", 2, 5),
            # 3 (higher, weight 4): JJ and WL share the minimum → 0; TT 4
            (JJ, "2025", 3, 90),
            (TT, "2025", 3, 95),
            (WL, "2025", 3, 90),
            # 17 (higher, weight 4): TT missing → 0 and listed; JJ 0, WL 4
            (JJ, "2025", 17, 10),
            (WL, "2025", 17, 20),
        ],
    )
    # 25 (computed, higher, weight 4): JJ 80 → 0, TT 100 → 4, WL nothing processed → missing
    indicator_25.update({(JJ, "2025"): 80.0, (TT, "2025"): 100.0})

    r = api.get("/api/v1/index/scores?period=2025", as_="reg_city")
    assert r.status_code == 200, r.get_json()
    result = r.get_json()
    counties = by_county(result)
    assert len(counties) == 9
    jj, tt, wl = counties[JJ], counties[TT], counties[WL]
    assert [score_of(jj, n) for n in (1, 2, 3, 17, 25)] == [2.0, 2.0, 0.0, 0.0, 0.0]
    assert [score_of(tt, n) for n in (1, 2, 3, 17, 25)] == [4.0, 2.0, 4.0, 0.0, 4.0]
    assert [score_of(wl, n) for n in (1, 2, 3, 17, 25)] == [0.0, 2.0, 0.0, 4.0, 0.0]
    assert (jj["total"], tt["total"], wl["total"]) == (4.0, 14.0, 6.0)
    assert (tt["rank"], wl["rank"], jj["rank"]) == (1, 2, 3)
    # The six counties without data tie at 0 and share rank 4.
    assert {counties[c]["rank"] for c in OTHERS} == {4} and all(counties[c]["total"] == 0 for c in OTHERS)
    assert [c["county_code"] for c in result["counties"][:3]] == [TT, WL, JJ]
    # Subtotals: 二级 1 大气环境 (1–4), 一级 (一); 二级 5 (17) in (三); 二级 12 (25) in (四).
    assert level(jj, "second_level", 1) == 4.0 and level(jj, "first_level", "一") == 4.0
    assert level(tt, "second_level", 1) == 10.0 and level(tt, "second_level", 12) == 4.0
    assert level(tt, "first_level", "四") == 4.0 and level(wl, "first_level", "三") == 4.0
    assert sum(f["score"] for f in tt["first_level"]) == tt["total"]
    # Missing data is listed, never guessed.
    assert 17 in tt["missing"] and 1 not in tt["missing"] and len(tt["missing"]) == 32 - 4
    assert 25 in wl["missing"] and len(jj["missing"]) == 32 - 5
    assert next(i for i in wl["indicators"] if i["number"] == 25)["note"]
    assert result["max_score"] == 99 and any("协同减排" in p for p in result["problems"])


def test_ties_share_a_rank(app, world, indicator_25):
    load(world, [(JJ, "2025", 3, 95), (TT, "2025", 3, 95), (WL, "2025", 3, 90)])
    result = services.scores(db.session, Principal(user=world.users["reg_tt"]), "2025")
    counties = by_county(result)
    assert (counties[JJ]["rank"], counties[TT]["rank"], counties[WL]["rank"]) == (1, 1, 3)
    assert counties[JJ]["total"] == counties[TT]["total"] == 4.0
    # The others have no data and tie with WL at 0.
    assert {counties[c]["rank"] for c in OTHERS} == {3}


def test_quarterly_rules(app, world, indicator_25):
    load(
        world,
        [
            # same period: the quarter's own value; the annual 2025 value is not a quarter's
            (JJ, "2025-Q2", 1, 30),
            (TT, "2025-Q2", 1, 20),
            (WL, "2025", 1, 10),
            # 9, previous_year (higher, weight 3): the 2024 annual values → JJ 0, TT 3
            (JJ, "2024", 9, 80),
            (TT, "2024", 9, 100),
            # 27, cumulative_year (higher, weight 2): Q1 + Q2
            (JJ, "2025-Q1", 27, 1),
            (JJ, "2025-Q2", 27, 1),
            (JJ, "2025-Q3", 27, 10),  # → 2 (Q3 is later)
            (TT, "2025-Q1", 27, 3),  # Q2 missing → missing
            (WL, "2025-Q1", 27, 0),
            (WL, "2025-Q2", 27, 4),  # → 4
        ],
    )
    result = services.scores(db.session, Principal(user=world.users["op"]), "2025-Q2")
    assert result["period"] == "2025-Q2" and result["base_period"] == "2024-Q2"
    counties = by_county(result)
    jj, tt, wl = counties[JJ], counties[TT], counties[WL]
    # 1 (lower, weight 4): JJ 30 → 0, TT 20 → 4, WL has only an annual value → missing
    assert (score_of(jj, 1), score_of(tt, 1), score_of(wl, 1)) == (0.0, 4.0, 0.0) and 1 in wl["missing"]
    # 9: the previous year's annual value
    nine = next(i for i in tt["indicators"] if i["number"] == 9)
    assert (score_of(jj, 9), nine["score"], nine["value"], nine["basis"]) == (0.0, 3.0, 100.0, "2024")
    # 27: year to date; JJ 2 → 0, WL 4 → 2, TT lacks Q2 → missing with the quarter named
    twenty_seven = {c: next(i for i in counties[c]["indicators"] if i["number"] == 27) for c in (JJ, TT, WL)}
    assert (twenty_seven[JJ]["value"], twenty_seven[WL]["value"], twenty_seven[TT]["value"]) == (2.0, 4.0, None)
    assert (twenty_seven[JJ]["score"], twenty_seven[WL]["score"], twenty_seven[TT]["score"]) == (0.0, 2.0, 0.0)
    assert 27 in tt["missing"] and "2025-Q2" in twenty_seven[TT]["note"]
    assert twenty_seven[JJ]["basis"] == "2025-Q1..2025-Q2"
    # Q1 alone: TT's 3 is the best
    q1 = by_county(services.scores(db.session, Principal(user=world.users["op"]), "2025-Q1"))
    # Q1 alone (JJ 1, TT 3, WL 0): TT 2, JJ 2 × 1/3 (scores are served to 4 decimals), WL 0
    assert (score_of(q1[TT], 27), score_of(q1[JJ], 27), score_of(q1[WL], 27)) == (2.0, 0.6667, 0.0)
    # The annual period uses annual values only: no annual 27 imported → missing everywhere
    annual = by_county(services.scores(db.session, Principal(user=world.users["op"]), "2025"))
    assert all(27 in c["missing"] for c in annual.values())
    assert score_of(annual[WL], 1) == 4.0  # the only annual value of 1 → full weight


def test_change_against_the_base_year(api, world, indicator_25):
    load(
        world,
        [
            # 2024: 2 (weight 2) all equal → 2 each; 3 (weight 4): JJ 0, TT 4 → JJ 2, TT 6
            (JJ, "2024", 2, 5),
            (TT, "2024", 2, 5),
            (JJ, "2024", 3, 90),
            (TT, "2024", 3, 100),
            # 2025: 2 → 2 each; 3: JJ 100 → 4, TT 95 → 0; 4 (weight 2): JJ 1 → 0, TT 2 → 2 → JJ 6, TT 4
            (JJ, "2025", 2, 5),
            (TT, "2025", 2, 5),
            (JJ, "2025", 3, 100),
            (TT, "2025", 3, 95),
            (JJ, "2025", 4, 1),
            (TT, "2025", 4, 2),
            (WL, "2025", 4, 1.5),
        ],
    )
    result = api.get("/api/v1/index/scores?period=2025", as_="reg_tt").get_json()
    assert result["base_year"] == 2024 and result["target_change_share"] == 0.1
    counties = by_county(result)
    jj, tt, wl = counties[JJ], counties[TT], counties[WL]
    # WL: 4 = 1.5 → 2 × 0.5/1 = 1
    assert (jj["total"], tt["total"], wl["total"]) == (6.0, 4.0, 1.0)
    assert (jj["base_total"], tt["base_total"], wl["base_total"]) == (2.0, 6.0, None)
    assert jj["change_vs_base_share"] == 2.0 and jj["meets_target"] is True  # (6 − 2) / 2
    assert tt["change_vs_base_share"] == round(-2 / 6, 4) and tt["meets_target"] is False
    assert wl["change_vs_base_share"] is None and wl["meets_target"] is None  # no base data
    assert 1 in jj["base_missing"] and 3 not in jj["base_missing"]

    other = api.get("/api/v1/index/scores?period=2025&base_year=2023", as_="reg_city").get_json()
    assert other["base_year"] == 2023 and all(c["base_total"] is None for c in other["counties"])
    for bad in ("period=2025&base_year=2025", "period=2025-Q5", "period=", "base_year=2024"):
        r = api.get(f"/api/v1/index/scores?{bad}", as_="reg_city")
        assert r.status_code == 422, bad
        assert r.headers["Content-Type"].startswith("application/problem+json")


def test_target_exactly_ten_percent(app, world, indicator_25):
    # 2024: 3 (weight 4): JJ 90, TT 100 → TT 4; 2 all equal → JJ 2, TT 2 → TT 6.  2025: TT must reach 6.6.
    load(
        world,
        [
            (JJ, "2024", 3, 90),
            (TT, "2024", 3, 100),
            (JJ, "2024", 2, 1),
            (TT, "2024", 2, 1),
            (JJ, "2025", 3, 90),
            (TT, "2025", 3, 100),
            (JJ, "2025", 2, 1),
            (TT, "2025", 2, 1),
            # 4 (weight 2): TT 0.3 of the range → 0.6
            (JJ, "2025", 4, 0),
            (TT, "2025", 4, 3),
            (WL, "2025", 4, 10),
        ],
    )
    tt = by_county(services.scores(db.session, Principal(user=world.users["op"]), "2025"))[TT]
    assert tt["total"] == 6.6 and tt["base_total"] == 6.0
    assert tt["change_vs_base_share"] == 0.1 and tt["meets_target"] is True


@pytest.mark.parametrize(
    "user, status",
    [("reg_tt", 200), ("reg_city", 200), ("op", 200), ("ent", 403), ("park", 403), ("svc", 403), (None, 401)],
)
def test_who_may_read_scores(api, world, indicator_25, user, status):
    assert api.get("/api/v1/index/scores?period=2025", as_=user).status_code == status
    assert api.get("/api/v1/index/values", as_=user).status_code == status


def test_services_refuse_enterprises(app, world, indicator_25):
    with pytest.raises(Forbidden):
        services.scores(db.session, Principal(user=world.users["ent"]), "2025")
    with pytest.raises(InvalidInput):
        services.scores(db.session, Principal(user=world.users["op"]), "2025-Q0")


def test_index_page(app, world, indicator_25):
    load(world, [(JJ, "2025", 3, 90), (TT, "2025", 3, 95)])
    client = app.test_client()
    from tests.factories import PASSWORD

    assert client.get("/index?period=2025").status_code == 302  # to the login page
    client.post("/login", data={"username": "reg_tt", "password": PASSWORD})
    r = client.get("/index?period=2025")
    assert r.status_code == 200
    text = r.get_data(as_text=True)
    assert "减污降碳协同指数" in text and "天台县" in text and "协同减排" in text
    assert client.get("/index?period=2025&lang=en").status_code == 200
    other = app.test_client()
    other.post("/login", data={"username": "ent", "password": PASSWORD})
    assert other.get("/index").status_code == 403


# ---------------------------------------------------------------- scores at the edges


@pytest.fixture
def no_indicator_25(monkeypatch):
    monkeypatch.setattr(services.quarters, "indicator_25_value", lambda session, county, period: None)


def test_no_change_against_the_base_year_without_data_this_period(app, world, no_indicator_25):
    # Base 2024: JJ and TT have data. 2025: only JJ's figures have arrived. TT is not "−100 %".
    load(world, [(JJ, "2024", 3, 90), (TT, "2024", 3, 95), (JJ, "2025", 3, 90)])
    counties = by_county(services.scores(db.session, Principal(user=world.users["op"]), "2025"))
    assert counties[TT]["has_data"] is False and counties[TT]["base_total"] == 4.0
    assert counties[TT]["change_vs_base_share"] is None and counties[TT]["meets_target"] is None
    assert counties[JJ]["change_vs_base_share"] is None  # base total 0 → no share


def test_the_annual_cumulative_score_from_the_four_quarters(app, world, no_indicator_25):
    # 27 (年度累计得分, weight 2): JJ imported quarters only → the year's cumulative is their sum;
    # TT an annual value; WL three quarters → missing, the lacking quarter named.
    load(
        world,
        [
            (JJ, "2025-Q1", 27, 1),
            (JJ, "2025-Q2", 27, 1),
            (JJ, "2025-Q3", 27, 0),
            (JJ, "2025-Q4", 27, 2),
            (TT, "2025", 27, 2),
            (WL, "2025-Q1", 27, 3),
            (WL, "2025-Q2", 27, 3),
            (WL, "2025-Q3", 27, 3),
        ],
    )
    counties = by_county(services.scores(db.session, Principal(user=world.users["op"]), "2025"))
    item = {c: next(i for i in counties[c]["indicators"] if i["number"] == 27) for c in (JJ, TT, WL)}
    assert (item[JJ]["value"], item[JJ]["basis"]) == (4.0, "2025-Q1..2025-Q4")
    assert (item[TT]["value"], item[TT]["basis"]) == (2.0, "2025")
    assert item[WL]["value"] is None and "2025-Q4" in item[WL]["note"]
    assert (item[JJ]["score"], item[TT]["score"]) == (2.0, 0.0)


def test_indicator_25_for_a_county_missing_from_the_reference_table(app, world):
    """county_metrics answers 404 for a county not in the counties table: that made the whole
    index a 404; now that county's indicator 25 is missing, with a note."""
    db.session.execute(delete(County).where(County.code == "331083"))
    db.session.commit()
    result = services.scores(db.session, Principal(user=world.users["op"]), "2025")
    yuhuan = by_county(result)["331083"]
    assert 25 in yuhuan["missing"]
    assert "counties" in next(i for i in yuhuan["indicators"] if i["number"] == 25)["note"]


def test_the_page_in_english_and_its_errors(app, world, no_indicator_25):
    from flask_babel import refresh

    from tests.factories import PASSWORD

    client = app.test_client()
    client.post("/login", data={"username": "reg_city", "password": PASSWORD})
    text = client.get("/index?period=2025&lang=en").get_data(as_text=True)
    assert "Environmental quality" in text and "Tiantai" in text
    assert 'title="Integrated management of industrial hazardous waste"' in text  # a missing indicator's name
    refresh()  # the test's app context (and Babel's cached locale) outlives each request
    r = client.get("/index?period=2025&lang=zh")
    assert r.status_code == 200 and "环境质量" in r.get_data(as_text=True)
    refresh()
    r = client.get("/index?period=2025-Q5")
    assert r.status_code == 422 and "考核期间应为年份" in r.get_data(as_text=True)
    refresh()
    r = client.get("/index?period=2025&base_year=2025")
    assert r.status_code == 422 and "基准年应为" in r.get_data(as_text=True)


def test_the_rule_files_version_in_the_pages_language(app, world, no_indicator_25):
    """The version "2025-consultation-draft-1" was English on the Chinese page."""
    from flask_babel import refresh

    from tests.factories import PASSWORD

    client = app.test_client()
    client.post("/login", data={"username": "reg_city", "password": PASSWORD})
    zh = client.get("/index?period=2025&lang=zh").get_data(as_text=True)
    assert 'data-version="2025-consultation-draft-1">2025 年征求意见稿第 1 版<' in zh
    refresh()
    en = client.get("/index?period=2025&lang=en").get_data(as_text=True)
    assert ">consultation draft of 2025, edition 1<" in en
