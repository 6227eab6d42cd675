"""The synergy index definition (附件2): transcribed as printed, checked when loaded."""

from __future__ import annotations

import copy
import logging

import pytest
import yaml

from app.index.definition import DIRECTIONS, load_definition, parse_definition
from app.rules import RulesError
from tests.index.builders import raw

# Written by hand from the table of 附件2 in the plan (shared/seed/000_c219e0623571317b.txt).
THIRD_LEVEL_WEIGHTS = {
    1: 4,
    2: 2,
    3: 4,
    4: 2,
    5: 2,
    6: 1,
    7: 2,
    8: 1,
    9: 3,
    10: 2,
    11: 3,
    12: 3,
    13: 3,
    14: 3,
    15: 3,
    16: 3,
    17: 4,
    18: 4,
    19: 4,
    20: 3,
    21: 3,
    22: 2,
    23: 2,
    24: 4,
    25: 4,
    26: 4,
    27: 2,
    28: 6,
    29: 3,
    30: 4,
    31: 4,
    32: 5,
}
SECOND_LEVEL_WEIGHTS = {
    1: 12,
    2: 6,
    3: 6,
    4: 18,
    5: 4,
    6: 4,
    7: 4,
    8: 3,
    9: 3,
    10: 4,
    11: 4,
    12: 4,
    13: 4,
    14: 2,
    15: 22,
}
FIRST_LEVEL_WEIGHTS = {"一": 18, "二": 24, "三": 18, "四": 16, "五": 24}
# Which third-level indicators belong to which second-level indicator, as printed.
CHILDREN = {
    1: [1, 2, 3, 4],
    2: [5, 6, 7, 8],
    3: [9, 10],
    4: [11, 12, 13, 14, 15, 16],
    5: [17],
    6: [18],
    7: [19],
    8: [20],
    9: [21],
    10: [22, 23],
    11: [24],
    12: [25],
    13: [26],
    14: [27],
    15: [28, 29, 30, 31, 32],
}
PREVIOUS_YEAR = {9, 10, 11, 12, 15, 16, 18, 20, 31}
CUMULATIVE_YEAR = {27, 28, 29, 30}


def test_the_table_as_printed():
    d = load_definition()
    assert len(d.first_level) == 5 and len(d.second_level) == 15 and len(d.indicators) == 32
    assert sorted(d.indicators) == list(range(1, 33))
    assert {n: i.weight for n, i in d.indicators.items()} == THIRD_LEVEL_WEIGHTS
    assert {n: s.weight for n, s in d.second_level.items()} == SECOND_LEVEL_WEIGHTS
    assert {f.id: f.weight for f in d.first_level} == FIRST_LEVEL_WEIGHTS
    assert {n: list(s.indicators) for n, s in d.second_level.items()} == CHILDREN
    assert [f.second_level for f in d.first_level] == [(1, 2), (3, 4), (5, 6, 7, 8, 9), (10, 11, 12, 13), (14, 15)]
    assert d.indicators[25].name == "工业危险废物综合管理" and d.indicators[25].computed
    assert d.indicators[25].direction == "higher" and d.indicators[25].unit == "%"
    assert [n for n, i in d.indicators.items() if i.computed] == [25]
    assert {n for n, i in d.indicators.items() if i.quarterly == "previous_year"} == PREVIOUS_YEAR
    assert {n for n, i in d.indicators.items() if i.quarterly == "cumulative_year"} == CUMULATIVE_YEAR
    assert all(i.direction in DIRECTIONS and i.scoring == "minmax" and i.data_source for i in d.indicators.values())
    # Concentrations and intensities: lower is better; their improvement or decline rates: higher.
    assert {n for n, i in d.indicators.items() if i.direction == "lower"} == {1, 10, 11, 13, 15}
    assert d.indicators[29].data_source == "市生态环境局、市" and "截断" in d.indicators[29].note
    assert d.max_score == 99


def test_the_weight_mismatch_is_reported_not_fixed(caplog):
    d = load_definition()
    assert d.second_level[3].name == "协同减排" and d.second_level[3].weight == 6  # kept as printed
    assert sum(d.indicators[n].weight for n in d.second_level[3].indicators) == 5
    assert len(d.problems) == 2
    assert "协同减排" in d.problems[0] and "add up to 5" in d.problems[0] and "not 6" in d.problems[0]
    assert "99" in d.problems[1]
    # Logged as warnings when a file is loaded.
    from app.index.definition import _definition_cached

    _definition_cached.cache_clear()  # loading is cached per file; warnings come when the file is (re)loaded
    with caplog.at_level(logging.WARNING, logger="app.index.definition"):
        load_definition()
    assert sum("协同减排" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING) == 1


def test_a_corrected_table_has_no_problems():
    data = raw()
    next(i for i in data["indicators"] if i["number"] == 10)["weight"] = 3
    assert parse_definition(data).problems == ()


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda d: d["indicators"].append(copy.deepcopy(d["indicators"][4])), "indicator 5: number 5 appears twice"),
        (lambda d: d["indicators"][0].pop("weight"), "indicator 1.weight: missing"),
        (lambda d: d["indicators"][0].update(weight=-1), "indicator 1.weight: a positive number is required"),
        (lambda d: d["indicators"][2].update(parent=16), "indicator 3.parent: unknown second-level indicator 16"),
        (
            lambda d: d["second_level"][0].update(parent="六"),
            "second_level 1.parent: unknown first-level indicator '六'",
        ),
        (lambda d: d["second_level"].append(dict(d["second_level"][0])), "second_level 1: number 1 appears twice"),
        (lambda d: d["indicators"][0].update(direction="up"), "indicator 1.direction"),
        (lambda d: d["indicators"][0].update(scoring="zscore"), "indicator 1.scoring: unknown method 'zscore'"),
        (lambda d: d["indicators"][8].update(quarterly="same_period"), "remarks.previous_year lists"),
        (lambda d: d["indicators"][24].update(computation="magic"), "indicator 25.computation: unknown computation"),
        (
            lambda d: d.update(indicators=[i for i in d["indicators"] if i["parent"] != 14]),
            "second_level 14: has no third-level indicators",
        ),
        (lambda d: d["indicators"].pop(5), "numbers must run 1..31 without gaps (missing: 6)"),
        (
            lambda d: d["remarks"].update(cumulative_year=[27, 28, 29, 30, 40]),
            "remarks.cumulative_year: unknown indicator 40",
        ),
    ],
)
def test_broken_definitions_fail_with_clear_messages(breakage, message):
    data = raw()
    breakage(data)
    with pytest.raises(RulesError) as err:
        parse_definition(data, where="synergy_index.yaml")
    assert message in str(err.value), str(err.value)
    assert str(err.value).startswith("synergy_index.yaml: ")


def test_every_problem_is_listed_at_once():
    data = raw()
    data["indicators"][0].pop("weight")
    data["indicators"][1]["parent"] = 99
    with pytest.raises(RulesError) as err:
        parse_definition(data)
    assert "indicator 1.weight: missing" in str(err.value) and "indicator 2.parent" in str(err.value)


def test_override_folder_and_start_check(tmp_path, monkeypatch):
    data = raw()
    data["version"] = "local-1"
    (tmp_path / "synergy_index.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert load_definition(str(tmp_path)).version == "local-1"
    assert load_definition(None).version != "local-1"

    data["indicators"][0]["parent"] = 77
    (tmp_path / "synergy_index.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    from app import create_app

    with pytest.raises(RulesError, match=r"indicator 1\.parent: unknown second-level indicator 77"):
        create_app(
            {"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://", "RULES_DIR": str(tmp_path)}
        )


def test_definition_endpoint(api, world):
    r = api.get("/api/v1/index/definition", as_="ent")  # the published table: any signed-in user
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["counts"] == {"first_level": 5, "second_level": 15, "indicators": 32}
    assert [f["weight"] for f in body["first_level"]] == [18, 24, 18, 16, 24]
    indicators = [i for f in body["first_level"] for s in f["second_level"] for i in s["indicators"]]
    assert {i["number"]: i["weight"] for i in indicators} == THIRD_LEVEL_WEIGHTS
    by_number = {i["number"]: i for i in indicators}
    assert by_number[1]["direction"] == "lower" and by_number[2]["direction"] == "higher"
    assert by_number[9]["quarterly"] == "previous_year" and by_number[27]["quarterly"] == "cumulative_year"
    assert by_number[25]["source"] == "computed"
    assert any("协同减排" in p for p in body["problems"])
    assert body["max_score"] == 99 and body["total_weight"] == 100
    assert len(body["counties"]) == 9
    assert api.get("/api/v1/index/definition", as_=None).status_code == 401


def test_the_remarks_text_must_agree_with_its_lists():
    data = raw()
    data["remarks"]["text"] = data["remarks"]["text"].replace("指标 31，", "指标 32，")
    with pytest.raises(RulesError, match=r"remarks.text names indicators \[9, 10, 11, 12, 15, 16, 18, 20, 32\]"):
        parse_definition(data)


def test_english_names_for_every_level():
    d = load_definition()
    assert all(f.name_en for f in d.first_level) and all(s.name_en for s in d.second_level.values())
    assert all(i.name_en for i in d.indicators.values())
    assert d.indicators[25].name_en == "Integrated management of industrial hazardous waste"
