"""The telemetry services package: its modules import on their own (no cycles), the package
re-exports the names used outside it, and a name is replaced where it is looked up."""

from __future__ import annotations

import subprocess
import sys
import types
from datetime import timedelta
from pathlib import Path

import pytest

from app.extensions import db
from app.telemetry import services
from app.telemetry.services import ingestion
from tests import factories
from tests.telemetry.builders import post_readings, reading, state_of, utc_now

ROOT = Path(__file__).resolve().parents[2]
MODULES = ["settings", "checks", "rollups", "states", "ingestion", "readback", "dead_letter_store"]


@pytest.mark.parametrize("name", MODULES)
def test_each_module_imports_first_in_a_fresh_interpreter(name):
    # Imported before anything else of the package, a module in an import cycle would find a
    # partly initialised one and fail.
    done = subprocess.run(
        [sys.executable, "-c", f"import app.telemetry.services.{name}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_package_re_exports_the_names_used_outside_it_from_their_modules():
    used = {  # by app/telemetry (mqtt, views, colour, demo), app/web/pages and the tests
        "ingestion": ["ingest", "IngestResult", "UNKNOWN_BOX", "insert_readings", "sqlite_writer_lock"],
        "checks": [
            "readings_of",
            "check_items",
            "bind_ts",
            "BatchTooLarge",
            "BadBatch",
            "_item_errors",
            "_parse_ts",
            "R_INDEX",
            "R_CODE",
            "R_TS",
            "R_BOUND",
            "R_HOUR",
            "R_MEASURE",
            "R_RUNNING",
            "R_US",
        ],
        "settings": ["Settings"],
        "states": ["integrate_in_order", "sync_state_to_fill", "open_interval_kg", "lock_states", "store_states"],
        "readback": ["raw_readings", "rollup_readings", "RAW_LIMIT"],
        "dead_letter_store": ["record_dead_letter", "dead_letters", "redact", "PAYLOAD_KEEP"],
    }
    for module_name, names in used.items():
        module = getattr(services, module_name)
        assert isinstance(module, types.ModuleType), module_name  # not hidden by a re-exported function
        for name in names:
            assert getattr(services, name) is getattr(module, name), name
    assert set(services.__all__) >= {n for names in used.values() for n in names} | {"DomainError"}


def test_the_colour_refresh_of_a_batch_is_replaced_in_the_ingestion_module(
    api, world, sensor_box, gateway, monkeypatch
):
    calls = []
    real = ingestion.refresh_colours

    def spy(session, boxes, now, **kw):
        calls.append(([b.id for b in boxes], sorted(kw.get("fills", {}))))
        return real(session, boxes, now, **kw)

    monkeypatch.setattr("app.telemetry.services.ingestion.refresh_colours", spy)
    now = utc_now()
    batch = [reading(sensor_box.code, now - timedelta(minutes=m)) for m in (3, 2)]
    r = post_readings(api, gateway, batch)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["accepted"] == 2
    assert calls == [([sensor_box.id], [sensor_box.id])]  # once per batch, given the box's active fill
    # (A batch that crosses no threshold takes the figures path, without the colour refresh: this
    # one's bed temperature reaches the alarm.)
    result = services.ingest(
        db.session,
        factories.op_principal(),
        [reading(sensor_box.code, now - timedelta(minutes=1), bed_temp_c=90.0)],
        now=now,
    )
    assert result.accepted == 1 and len(calls) == 2
    assert state_of(sensor_box.id).reading_count == 3
