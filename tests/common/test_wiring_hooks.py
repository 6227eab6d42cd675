"""What app.common takes from the app's wiring instead of importing a domain or reading
``current_app``: the transaction boundary's hooks, the plausibility limits."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from app.common.limits import limit, limits, load
from app.rules import DATA_DIR

SHIPPED_LIMITS = yaml.safe_load((DATA_DIR / "plausibility.yaml").read_text(encoding="utf-8"))


def _strict_limits(folder: Path) -> Path:
    data = yaml.safe_load(yaml.safe_dump(SHIPPED_LIMITS, allow_unicode=True))
    data["fields"]["index_value"]["max"] = 100  # a regulator's tighter bound
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plausibility.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return folder


def test_services_take_the_limits_of_their_wiring_without_an_app(tmp_path):
    from app.common.wiring import build_wiring

    strict = build_wiring({"RULES_DIR": str(_strict_limits(tmp_path / "rules"))})
    shipped = build_wiring({})
    assert limit("index_value", strict.plausibility()).check(1000) is not None
    assert limit("index_value", shipped.plausibility()).check(1000) is None
    assert limits() == load(None)  # outside any app: the shipped file


def test_an_app_context_gives_the_schemas_that_apps_limits(app, tmp_path, monkeypatch):
    from app.common.wiring import EXTENSION_KEY

    strict = replace(app.extensions[EXTENSION_KEY], rules_dir=str(_strict_limits(tmp_path / "rules")))
    with app.app_context():
        assert limit("index_value").max > 100
    monkeypatch.setitem(app.extensions, EXTENSION_KEY, strict)
    with app.app_context():
        assert limit("index_value").max == 100


def test_an_index_import_is_bounded_by_the_limits_it_is_given(app, session, tmp_path):
    from app.common.errors import InvalidInput
    from app.common.wiring import build_wiring, wiring_of
    from app.index.importing import RawRows
    from app.index.services.validation import validate_rows

    defn = wiring_of(session).index_definition()
    strict = build_wiring({"RULES_DIR": str(_strict_limits(tmp_path / "rules"))}).plausibility()

    def rows(value):
        fields = {"county_code": "331023", "period": "2025", "indicator": 3, "value": value, "source_department": "x"}
        return RawRows(rows=[(2, fields)], place_name="line")

    assert validate_rows(defn, rows(1000), wiring_of(session).plausibility())  # the shipped bound
    with pytest.raises(InvalidInput) as refused:
        validate_rows(defn, rows(1000), strict)
    assert "at most 100" in str(refused.value.errors)


def test_the_boundary_runs_the_hooks_its_app_wired(tmp_path, monkeypatch, app, world, api):
    from app.common.wiring import EXTENSION_KEY, SESSION_KEY
    from app.extensions import db

    seen: list[str] = []
    wiring = app.extensions[EXTENSION_KEY]
    hooked = replace(wiring, before_request_commit=(*wiring.before_request_commit, lambda s: seen.append("commit")))
    monkeypatch.setitem(app.extensions, EXTENSION_KEY, hooked)
    monkeypatch.setitem(db.session.info, SESSION_KEY, hooked)  # the test's requests share its session
    from tests.boxes.builders import register

    register(api)  # the first one signs in too (a write of its own)
    before = len(seen)
    register(api)
    assert len(seen) == before + 1 and set(seen) == {"commit"}
    refused = api.post("/api/v1/boxes", {"carbon_type": "granite"}, as_="ent")
    assert refused.status_code == 422
    assert len(seen) == before + 1  # a refused write commits nothing, so no hook runs


def test_a_cli_transaction_runs_its_wired_hooks(app, session, monkeypatch):
    from app.common.tx import cli_transaction
    from app.common.wiring import SESSION_KEY, wiring_of

    seen: list[object] = []
    wiring = wiring_of(session)
    monkeypatch.setitem(session.info, SESSION_KEY, replace(wiring, cli_transaction_begins=(seen.append,)))
    with cli_transaction(session):
        pass
    assert seen == [session]


def test_the_shipped_wiring_binds_the_audit_trail():
    from app.audit.boundary import bind_request
    from app.audit.recorder import cli_context
    from app.common.wiring import build_wiring

    wiring = build_wiring({})
    assert bind_request in wiring.before_request_commit and cli_context in wiring.cli_transaction_begins
