"""The one rule-file loader (app/rules): every rule file validated against its declared schema and checks."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import yaml

from app.rules import DATA_DIR, RULE_FILES, RulesError, check_dir, load_rule_file
from app.rules.loader import SCHEMA_DIR


def shipped(name: str) -> dict:
    with open(DATA_DIR / name, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def write_yaml(folder: Path, name: str, data) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def catalogue_rows() -> list[dict[str, str]]:
    with open(DATA_DIR / "hw-catalog-2021.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def write_csv(folder: Path, rows: list[dict[str, str]]) -> None:
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with open(folder / "hw-catalog-2021.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def rule(data: dict, code: str) -> dict:
    return next(r for r in data["rules"] if r["code"] == code)


def problems_of(name: str, folder: Path) -> list[str]:
    with pytest.raises(RulesError) as err:
        load_rule_file(name, folder)
    assert err.value.problems and str(err.value) == "\n".join(err.value.problems)
    return err.value.problems


# ---------------------------------------------------------------- the shipped files


@pytest.mark.parametrize("name", sorted(RULE_FILES))
def test_every_shipped_rule_file_validates(name):
    data = load_rule_file(name)
    assert data  # plain data: lists and mappings with text keys
    assert (SCHEMA_DIR / RULE_FILES[name].schema).exists()
    assert check_dir(DATA_DIR) == []


def test_dates_stay_text_and_year_keys_become_text():
    data = load_rule_file("holidays.yaml")
    assert set(data["years"]) == {"2025", "2026"}
    assert data["years"]["2025"]["holidays"][0] == {"name": "元旦", "from": "2025-01-01", "to": "2025-01-01"}


def test_every_colour_check_declares_its_parameters_in_the_schema():
    from app.common.wiring import colour_checks

    schema = yaml.safe_load((SCHEMA_DIR / "colour_rules.schema.yaml").read_text(encoding="utf-8"))
    declared: list[str] = []
    for branch in schema["$defs"]["rule"]["allOf"]:
        code = branch["if"]["properties"]["code"]
        declared += [code["const"]] if "const" in code else code["enum"]
    assert sorted(declared) == sorted(colour_checks())  # a new check must say which params it takes


# ---------------------------------------------------------------- the colour rules


def test_the_three_colour_examples_are_refused_at_once(tmp_path):
    data = shipped("colour_rules.yaml")
    assert data["rules"][3]["code"] == "saturation_high"
    data["rules"][3]["params"] = {"treshold": 0.5}  # misspelt: was silently ignored
    rule(data, "replacement_overdue")["en"] = "Past {observd}"  # raised only when the rule triggered
    rule(data, "saturation_full")["params"]["threshold"] = 80  # a percentage where a fraction is expected
    write_yaml(tmp_path, "colour_rules.yaml", data)
    problems = problems_of("colour_rules.yaml", tmp_path)
    where = str(tmp_path / "colour_rules.yaml")
    assert f"{where}: rules[3].params.treshold: unknown key; known: threshold" in problems
    assert f"{where}: rules[0].params.threshold: 80 is above the maximum 1 (a fraction: 0.8 = 80 %)" in problems
    assert f"{where}: rules[1].en: unknown placeholder {{observd}}; known: {{observed}}, {{threshold}}" in problems
    assert len(problems) == 3


def test_colour_rules_wrong_type_and_broken_template(tmp_path):
    data = shipped("colour_rules.yaml")
    data["min_iodine_mg_g"]["granular"] = "high"
    data["rules"][2]["zh"] = "碘值 {observed"
    data["rules"][4]["level"] = "green"
    write_yaml(tmp_path, "colour_rules.yaml", data)
    text = "\n".join(problems_of("colour_rules.yaml", tmp_path))
    assert "colour_rules.yaml: min_iodine_mg_g.granular: expected a number or null, not 'high'" in text
    assert "colour_rules.yaml: rules[2].zh: not a valid message template" in text
    assert "colour_rules.yaml: rules[4].level: 'green' is not one of yellow, red" in text
    assert "yellow or red, not 'green'" not in text  # the parser's message about the same key is left out


def test_a_refused_colour_file_stops_evaluation_before_it_starts(tmp_path):
    from app.boxes.colour import load_rules

    data = shipped("colour_rules.yaml")
    rule(data, "saturation_high")["params"]["treshold"] = 0.5
    write_yaml(tmp_path, "colour_rules.yaml", data)
    with pytest.raises(RulesError, match=r"rules\[3\]\.params\.treshold: unknown key"):
        load_rules(str(tmp_path))
    assert load_rules(None).version == shipped("colour_rules.yaml")["version"]


# ---------------------------------------------------------------- each file: key, type, range


def _holidays(d):
    d["years"][2025]["holidays"][0]["typo"] = 1
    d["years"][2025]["workdays"] = "2025-01-26"
    d["years"][2025]["holidays"][1]["from"] = "2025-02-30"


def _methods(d):
    d["methods"][0]["lanfill"] = True
    d["methods"][1]["landfill"] = "yes"
    d["methods"][2]["kind"] = "recycling"


def _ledger(d):
    d["manifest"]["tolerance"] = 0.1
    d["anomalies"]["storage_limit_days"] = "many"
    d["manifest"]["quantity_tolerance"] = 5


def _index(d):
    d["indicators"][0]["colour"] = "red"
    d["indicators"][1]["unit"] = 5
    d["indicators"][2]["weight"] = -4


@pytest.mark.parametrize(
    "name,mutate,expected",
    [
        (
            "holidays.yaml",
            _holidays,
            [
                "years.2025.holidays[0].typo: unknown key",
                "years.2025.workdays: expected a list, not '2025-01-26'",
                "years.2025.holidays[1]: from/to must be dates (YYYY-MM-DD)",
            ],
        ),
        (
            "disposal_methods.yaml",
            _methods,
            [
                "methods[0].lanfill: unknown key",
                "methods[1].landfill: expected true or false, not 'yes'",
                "methods[2].kind: 'recycling' is not one of utilisation, disposal",
            ],
        ),
        (
            "ledger_rules.yaml",
            _ledger,
            [
                "manifest.tolerance: unknown key",
                "anomalies.storage_limit_days: expected a whole number, not 'many'",
                "manifest.quantity_tolerance: 5 is above the maximum 1",
            ],
        ),
        (
            "synergy_index.yaml",
            _index,
            [
                "indicator 1.colour: unknown key",
                "indicator 2.unit: expected text or null, not 5",
                "indicator 3.weight: -4 is not above 0",
            ],
        ),
    ],
)
def test_unknown_key_wrong_type_and_out_of_range_are_refused(tmp_path, name, mutate, expected):
    data = shipped(name)
    mutate(data)
    write_yaml(tmp_path, name, data)
    problems = problems_of(name, tmp_path)
    for message in expected:
        assert any(p.startswith(f"{tmp_path / name}: {message}") for p in problems), (message, problems)
    assert len(problems) == len(expected), problems  # one report per mistake


def test_holiday_semantics_a_schema_cannot_express(tmp_path):
    data = shipped("holidays.yaml")
    data["years"][2025]["holidays"].append({"name": "重复", "from": "2025-01-01", "to": "2025-01-01"})
    data["years"][2025]["workdays"].append("2025-01-06")
    data["years"][1850] = data["years"].pop(2026)
    write_yaml(tmp_path, "holidays.yaml", data)
    text = "\n".join(problems_of("holidays.yaml", tmp_path))
    assert "holidays.yaml: years.2025.holidays[6]: 2025-01-01 is listed twice" in text
    assert "holidays.yaml: years.2025.workdays[5]: 2025-01-06 is a weekday" in text
    assert "holidays.yaml: years.1850: key '1850' does not match" in text


def test_ledger_codes_must_be_in_the_catalogue(tmp_path):
    data = shipped("ledger_rules.yaml")
    data["waste_carbon_codes"] = ["900-000-49", "bad"]
    write_yaml(tmp_path, "ledger_rules.yaml", data)
    text = "\n".join(problems_of("ledger_rules.yaml", tmp_path))
    assert "ledger_rules.yaml: waste_carbon_codes[1]: 'bad' does not match" in text
    assert "ledger_rules.yaml: waste_carbon_codes: '900-000-49' is not in the catalogue" in text


def test_index_structural_checks_still_run(tmp_path):
    data = shipped("synergy_index.yaml")
    data["indicators"][0]["parent"] = 77
    write_yaml(tmp_path, "synergy_index.yaml", data)
    assert problems_of("synergy_index.yaml", tmp_path) == [
        f"{tmp_path / 'synergy_index.yaml'}: indicator 1.parent: unknown second-level indicator 77"
    ]


def test_catalogue_csv_columns_and_values(tmp_path):
    rows = catalogue_rows()
    rows[0]["extra"] = "x"
    rows[1]["hazard"] = "X"
    rows[2]["description"] = ""
    write_csv(tmp_path, rows)
    problems = problems_of("hw-catalog-2021.csv", tmp_path)
    where = tmp_path / "hw-catalog-2021.csv"
    assert (
        f"{where}: line 2.extra: unknown key; known: category, category_name, code, description, hazard, industry"
        in problems
    )
    assert any(p.startswith(f"{where}: line 3.hazard: 'X' does not match") for p in problems)
    assert f"{where}: line 4.description: must not be empty" in problems
    write_csv(tmp_path, catalogue_rows()[:10])
    assert problems_of("hw-catalog-2021.csv", tmp_path) == [f"{where}: 10 unique codes, expected 467"]


def test_yaml_that_cannot_be_read_or_repeats_a_key(tmp_path):
    (tmp_path / "ledger_rules.yaml").write_text("version: x\nversion: y\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"ledger_rules\.yaml: cannot read: .*'version' appears twice"):
        load_rule_file("ledger_rules.yaml", tmp_path)
    (tmp_path / "ledger_rules.yaml").write_text("- a list\n", encoding="utf-8")
    assert problems_of("ledger_rules.yaml", tmp_path) == [
        f"{tmp_path / 'ledger_rules.yaml'}: top level: expected a mapping, not ['a list']"
    ]


def test_rules_dir_replaces_a_shipped_file_by_name(tmp_path):
    data = shipped("ledger_rules.yaml")
    data["version"] = "local"
    write_yaml(tmp_path, "ledger_rules.yaml", data)
    assert load_rule_file("ledger_rules.yaml", tmp_path)["version"] == "local"
    assert load_rule_file("ledger_rules.yaml", None)["version"] != "local"
    assert load_rule_file("holidays.yaml", tmp_path) == load_rule_file("holidays.yaml")  # not in the folder
    with pytest.raises(RulesError, match="not a rule file"):
        load_rule_file("colour_rule.yaml")


# ---------------------------------------------------------------- check_dir and the command


def broken_folder(folder: Path) -> Path:
    data = shipped("colour_rules.yaml")
    data["rules"][3]["params"] = {"treshold": 0.5}
    write_yaml(folder, "colour_rules.yaml", data)
    data = shipped("holidays.yaml")
    data["years"][2025]["holidays"][0]["typo"] = 1
    write_yaml(folder, "holidays.yaml", data)
    (folder / "colour_rule.yaml").write_text("version: x\n", encoding="utf-8")  # a misnamed copy
    (folder / "notes.txt").write_text("not a rule file, not judged", encoding="utf-8")
    return folder


def test_check_dir_lists_every_problem_of_every_file(tmp_path):
    assert check_dir(tmp_path) == []  # an empty folder replaces nothing
    assert check_dir(tmp_path / "missing") == [f"{tmp_path / 'missing'}: not a folder"]
    problems = check_dir(broken_folder(tmp_path))
    assert problems == [
        f"{tmp_path / 'colour_rule.yaml'}: not a rule file; known: " + ", ".join(RULE_FILES),
        f"{tmp_path / 'colour_rules.yaml'}: rules[3].params.treshold: unknown key; known: threshold",
        f"{tmp_path / 'holidays.yaml'}: years.2025.holidays[0].typo: unknown key; known: from, name, to",
    ]


def test_rules_check_command(app, tmp_path):
    runner = app.test_cli_runner()
    good = tmp_path / "good"
    shutil.copytree(DATA_DIR, good)
    result = runner.invoke(args=["rules", "check", str(good)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == (
        f"{good}: 8 rule files valid (colour_rules.yaml, disposal_methods.yaml, holidays.yaml, "
        "hw-catalog-2021.csv, ledger_rules.yaml, plausibility.yaml, retention.yaml, synergy_index.yaml)"
    )

    (tmp_path / "bad").mkdir()
    bad = broken_folder(tmp_path / "bad")
    result = runner.invoke(args=["rules", "check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad / 'colour_rules.yaml'}: rules[3].params.treshold: unknown key; known: threshold" in result.output
    assert f"{bad / 'holidays.yaml'}: years.2025.holidays[0].typo: unknown key" in result.output
    assert f"{bad / 'colour_rule.yaml'}: not a rule file" in result.output
    assert "3 problems in" in result.output and "valid" not in result.output


def test_create_app_with_a_broken_rules_dir_refuses_to_start(tmp_path, monkeypatch):
    from app import create_app

    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    data = shipped("ledger_rules.yaml")
    data["manifest"]["quantity_tolerance"] = 5
    write_yaml(rules_dir, "ledger_rules.yaml", data)
    data = shipped("holidays.yaml")
    data["years"][2025]["holidays"][0]["typo"] = 1
    write_yaml(rules_dir, "holidays.yaml", data)
    config = {"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://", "RULES_DIR": str(rules_dir)}
    with pytest.raises(RulesError) as err:
        create_app(config)
    assert err.value.problems == [  # every file of the folder, at once
        f"{rules_dir / 'holidays.yaml'}: years.2025.holidays[0].typo: unknown key; known: from, name, to",
        f"{rules_dir / 'ledger_rules.yaml'}: manifest.quantity_tolerance: 5 is above the maximum 1 "
        "(a fraction: 0.05 = 5 %)",
    ]
    # The colour rules are loaded first of all: a broken colour file stops the start too.
    (rules_dir / "holidays.yaml").unlink()
    (rules_dir / "ledger_rules.yaml").unlink()
    data = shipped("colour_rules.yaml")
    rule(data, "saturation_full")["zh"] = "饱和度 {observd}"
    write_yaml(rules_dir, "colour_rules.yaml", data)
    with pytest.raises(RulesError, match=r"colour_rules.yaml: rules\[0\]\.zh: unknown placeholder \{observd\}"):
        create_app(config)
    (rules_dir / "colour_rules.yaml").unlink()
    assert create_app(config).config["RULES_DIR"] == str(rules_dir)  # an empty folder replaces nothing
