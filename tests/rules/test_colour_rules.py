"""The colour rule set is data: validated when loaded, replaceable through RULES_DIR."""

from __future__ import annotations

from datetime import UTC

import pytest
import yaml

from app.boxes.colour import parse_rules
from app.rules import DATA_DIR, RulesError

SHIPPED = yaml.safe_load((DATA_DIR / "colour_rules.yaml").read_text(encoding="utf-8"))


def test_shipped_rules_are_valid_and_cover_product_defaults():
    rules = parse_rules(SHIPPED)
    codes = {r.code: r for r in rules.rules}
    assert codes["saturation_high"].params["threshold"] == 0.8 and codes["saturation_high"].level == "yellow"
    assert codes["saturation_full"].params["threshold"] == 1.0 and codes["saturation_full"].level == "red"
    assert codes["replacement_due_soon"].params["days"] == 7
    assert rules.min_iodine_mg_g["granular"] == 800 and rules.min_iodine_mg_g["honeycomb"] == 650


@pytest.mark.parametrize(
    "mutate,expected",
    [
        (lambda d: d["rules"].append({"code": "no_such_check", "level": "red", "zh": "x", "en": "x"}), "unknown check"),
        (lambda d: d["rules"][0].update(level="purple"), "level"),
        (lambda d: d["rules"][0].update(params={"threshold": "high"}), "params"),
        (lambda d: d["rules"][0].pop("zh"), "zh"),
        (lambda d: d["rules"].append(dict(d["rules"][0])), "appears twice"),
        (lambda d: d["min_iodine_mg_g"].update(coconut=900), "unknown carbon type"),
        (lambda d: d.pop("version"), "version"),
    ],
)
def test_invalid_rule_files_are_reported_never_fixed(mutate, expected):
    data = yaml.safe_load(yaml.safe_dump(SHIPPED, allow_unicode=True))
    mutate(data)
    with pytest.raises(RulesError, match=expected):
        parse_rules(data)


def test_rules_dir_overrides_thresholds(tmp_path, monkeypatch, app, world, api):
    from dataclasses import replace

    from app.common.wiring import EXTENSION_KEY, SESSION_KEY, wiring_of
    from app.extensions import db
    from tests.boxes.builders import register

    data = yaml.safe_load(yaml.safe_dump(SHIPPED, allow_unicode=True))
    for rule in data["rules"]:
        if rule["code"] == "saturation_high":
            rule["params"]["threshold"] = 0.01  # a stricter regulator
    data["version"] = "strict-test"
    (tmp_path / "colour_rules.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    strict = replace(wiring_of(db.session), rules_dir=str(tmp_path))
    monkeypatch.setitem(app.extensions, EXTENSION_KEY, strict)
    monkeypatch.setitem(db.session.info, SESSION_KEY, strict)  # the test's requests share its session
    code = register(api)["code"]
    from datetime import datetime, timedelta

    api.post(
        f"/api/v1/boxes/{code}/fills",
        {"mass_kg": 2000, "iodine_mg_g": 900, "filled_at": (datetime.now(UTC) - timedelta(hours=12)).isoformat()},
        as_="ent",
    )
    got = api.get(f"/api/v1/boxes/{code}", as_="ent").get_json()
    assert got["colour"] == "yellow" and got["rules_version"] == "strict-test"


def test_broken_rules_dir_stops_the_app(tmp_path):
    from app import create_app

    (tmp_path / "colour_rules.yaml").write_text("version: x\nrules: []\n", encoding="utf-8")
    with pytest.raises(RulesError, match="rules"):
        create_app(
            {"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://", "RULES_DIR": str(tmp_path)}
        )
