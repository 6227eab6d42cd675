"""The colour engine's checks are the app's wiring (app.common.wiring.Wiring.colour_checks), never
a table filled by imports; reasons a stronger rule implies are not listed (``supersedes``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest
import yaml

from app.boxes.colour import Finding, Rule, RuleSet, parse_rules, without_superseded
from app.rules import DATA_DIR, RulesError
from tests import factories
from tests.boxes.builders import iso, register

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = yaml.safe_load((DATA_DIR / "colour_rules.yaml").read_text(encoding="utf-8"))


def _shipped_copy() -> dict:
    return yaml.safe_load(yaml.safe_dump(SHIPPED, allow_unicode=True))


def _codes(reasons) -> set[str]:
    return {r["code"] for r in reasons}


# ---------------------------------------------------------------- the checks are wiring


def test_a_script_importing_only_box_services_evaluates_with_every_check(tmp_path):
    """No app and no import of telemetry or the ledger: the default wiring still brings every
    domain's checks, so the ledger's waste rules judge a box whose waste carbon stays on site."""
    script = textwrap.dedent(f"""
        import sys
        from datetime import datetime, timedelta, timezone

        import sqlalchemy as sa
        from sqlalchemy.orm import Session

        from app.boxes import services as box_services
        from app import import_models
        from app.extensions import Base

        for name in ("app.ledger.colour", "app.telemetry.colour"):
            assert name not in sys.modules, "the test needs a process without " + name
        import_models()
        from app.accounts.models import User
        from app.accounts.reference import ensure_counties
        from app.accounts.services import Principal, create_organization
        from app.accounts.uscc import make_uscc
        from app.common.wiring import wiring_of

        engine = sa.create_engine("sqlite:///{tmp_path / "script.sqlite3"}")
        Base.metadata.create_all(engine)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        with Session(engine) as session:
            ensure_counties(session)
            op = User(username="op", display_name="op", is_operator=True, role="admin", password_hash="x")
            session.add(op)
            session.flush()
            actor = Principal(user=op)
            enterprise = create_organization(session, actor, {{"name": "天台橡胶制品有限公司", "roles": ["generator"],
                                             "county_code": "331023", "uscc": make_uscc("91331023MA0000001")}})
            box = box_services.register_box(session, actor, {{
                "enterprise_id": enterprise.id, "facility_code": "TA001", "outlet_code": "DA001",
                "carbon_type": "granular", "design_fill_kg": 2000.0, "design_airflow_m3_h": 15000.0,
                "design_removed_mg_m3": 80.0, "hours_per_day": 16.0, "emission_limit_mg_m3": 60.0}},
                now=now - timedelta(days=200))
            box_services.record_fill(session, actor, box, {{"mass_kg": 2000.0, "iodine_mg_g": 900.0,
                                     "filled_at": now - timedelta(days=150)}}, now=now)
            box_services.record_fill(session, actor, box, {{"mass_kg": 2000.0, "iodine_mg_g": 900.0,
                                     "removed_waste_kg": 2150.0, "filled_at": now - timedelta(days=100)}}, now=now)
            session.commit()
            evaluation = box_services.evaluate_boxes(session, [box], now)[box.id]
            rules = wiring_of(session).colour_rules()
            print("CHECKS", ",".join(sorted(rules.checks)))
            print("REASONS", ",".join(sorted(r["code"] for r in evaluation.reasons)))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.startswith(("CHECKS", "REASONS")))
    assert set(lines["CHECKS"].split(",")) == {rule["code"] for rule in SHIPPED["rules"]}
    assert {"waste_held_too_long", "waste_not_on_manifest"} <= set(lines["REASONS"].split(","))


def test_two_apps_in_one_process_evaluate_by_their_own_checks(tmp_path, monkeypatch):
    from app import create_app
    from app.accounts.reference import ensure_counties
    from app.boxes import services as box_services
    from app.common.wiring import EXTENSION_KEY
    from app.extensions import db

    def own_app(name: str):
        monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / f"instance-{name}"))
        return create_app(
            {
                "TESTING": True,
                "SECRET_KEY": f"{name}-" + uuid.uuid4().hex,
                "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(tmp_path / "shared.sqlite3"),
                "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
            }
        )

    def always_high(facts, params):
        return Finding("probe", "probe")

    probing, shipped = own_app("probing"), own_app("shipped")
    wiring = probing.extensions[EXTENSION_KEY]
    checks = MappingProxyType({**wiring.colour_checks, "saturation_high": always_high})
    probing.extensions[EXTENSION_KEY] = replace(wiring, colour_checks=checks)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        with shipped.app_context():
            db.create_all()
            ensure_counties(db.session())
            world = factories.World.build()
            box = factories.box(world.enterprise, world.service, now=now - timedelta(days=2))
            box_services.record_fill(
                db.session(),
                factories.op_principal(),
                box,
                {"mass_kg": 2000.0, "iodine_mg_g": 900.0, "filled_at": now - timedelta(hours=12)},
                now=now,
            )
            db.session.commit()
            box_id = box.id

        def reasons(application) -> set[str]:
            with application.app_context():
                found = db.session.get(box_services.Box, box_id)
                return _codes(box_services.evaluate_boxes(db.session(), [found], now)[box_id].reasons)

        assert reasons(probing) == {"saturation_high"}
        assert reasons(shipped) == set()
        assert reasons(probing) == {"saturation_high"}  # and again, in either order
    finally:
        for application in (probing, shipped):
            with application.app_context():
                db.session.remove()
                db.engine.dispose()


def test_no_check_registry_is_filled_by_imports():
    from app.boxes import colour

    assert not [name for name in ("CHECKS", "check", "import_rule_plugins") if hasattr(colour, name)]
    assert isinstance(colour.BASE_CHECKS, MappingProxyType)  # a constant, not a table to fill


# ---------------------------------------------------------------- supersedes


def test_a_stronger_reason_hides_the_one_it_implies():
    rules = RuleSet(
        version="t",
        min_iodine_mg_g={},
        rules=(
            Rule("saturation_full", "red", {}, "", "", supersedes=("saturation_high",)),
            Rule("saturation_high", "yellow", {}, "", ""),
            Rule("iodine_below_minimum", "red", {}, "", ""),
        ),
    )
    both = [{"code": "saturation_full"}, {"code": "saturation_high"}, {"code": "iodine_below_minimum"}]
    assert _codes(without_superseded(both, rules)) == {"saturation_full", "iodine_below_minimum"}
    # Only a triggered rule hides anything: 80 % alone is listed.
    assert _codes(without_superseded([{"code": "saturation_high"}], rules)) == {"saturation_high"}


def test_the_shipped_rules_say_which_reasons_are_implied():
    by_code = {rule.code: rule for rule in parse_rules(SHIPPED).rules}
    assert by_code["saturation_full"].supersedes == ("saturation_high",)
    assert by_code["replacement_overdue"].supersedes == ("replacement_due_soon",)
    assert by_code["no_sensor_data_long"].supersedes == ("no_sensor_data",)


@pytest.mark.parametrize(
    "supersedes,expected",
    [
        (["no_such_rule"], "is not a rule of this file"),
        (["saturation_full"], "cannot supersede itself"),
        ("saturation_high", "supersedes"),
    ],
)
def test_a_wrong_supersedes_is_refused_with_its_key(supersedes, expected):
    data = _shipped_copy()
    rule = next(r for r in data["rules"] if r["code"] == "saturation_full")
    rule["supersedes"] = supersedes
    with pytest.raises(RulesError, match=expected):
        parse_rules(data)


def test_the_schema_refuses_a_supersedes_that_is_no_list(tmp_path):
    from app.rules import load_rule_file

    data = _shipped_copy()
    data["rules"][0]["supersedes"] = [3]
    (tmp_path / "colour_rules.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RulesError, match=r"rules\[0\]\.supersedes\[0\]"):
        load_rule_file("colour_rules.yaml", str(tmp_path))


def test_an_overdue_saturated_box_lists_only_the_stronger_reasons(app, world, api):
    code = register(api)["code"]
    long_ago = datetime.now(UTC) - timedelta(days=700)
    r = api.post(f"/api/v1/boxes/{code}/fills", {"mass_kg": 2000, "iodine_mg_g": 900, "filled_at": iso(long_ago)})
    assert r.status_code == 201, r.get_json()
    body = api.get(f"/api/v1/boxes/{code}", as_="ent").get_json()
    codes = [reason["code"] for reason in body["reasons"]]
    assert body["colour"] == "red"
    assert "saturation_full" in codes and "replacement_overdue" in codes
    assert "saturation_high" not in codes and "replacement_due_soon" not in codes
    texts = " ".join(reason["zh"] for reason in body["reasons"])
    assert "已达预警值" not in texts and "不足7天" not in texts
