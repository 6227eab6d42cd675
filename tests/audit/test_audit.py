"""The audit trail: recorded through every interface, hash-chained, and `audit verify` names every
change made behind the application's back."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.boxes.models import BoxEvent
from app.extensions import db
from app.ledger.models import LedgerRecord, Manifest, ManifestLine
from tests.audit.builders import tamper, verify
from tests.ledger.builders import build_loop, new_manifest, walk_to


def _closed_manifest(world, api) -> dict:
    loop = build_loop(world, api)
    manifest = new_manifest(api, loop, 1800.0, submit=True)
    walk_to(api, manifest["number"], "closed")
    return manifest


def test_a_clean_history_verifies_and_entries_name_who_and_how(app, world, api):
    manifest = _closed_manifest(world, api)
    result = verify(app)
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    m = db.session.scalar(select(Manifest).where(Manifest.number == manifest["number"]))
    entries = db.session.scalars(
        select(AuditEntry).where(AuditEntry.subject == f"manifests:[{m.id}]").order_by(AuditEntry.seq)
    ).all()
    assert {e.table_name for e in entries} >= {"manifests", "manifest_lines", "manifest_events"}
    assert all(e.interface == "api" for e in entries)
    pickup = [e for e in entries if e.table_name == "manifests" and e.actor == "drv"]
    assert pickup and json.loads(pickup[0].before)["status"] == "submitted"
    assert json.loads(pickup[0].after)["status"] == "in_transit"
    # gap-free and chained
    seqs = db.session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)).all()
    assert seqs == list(range(1, len(seqs) + 1))


def test_verify_names_each_row_changed_inserted_or_deleted_behind_the_back(app, world, api):
    manifest = _closed_manifest(world, api)
    m = db.session.scalar(select(Manifest).where(Manifest.number == manifest["number"]))
    line = db.session.scalar(select(ManifestLine).where(ManifestLine.manifest_id == m.id))
    record = db.session.scalar(select(LedgerRecord).order_by(LedgerRecord.id))
    event = db.session.scalar(select(BoxEvent).order_by(BoxEvent.id))
    ids = (m.id, line.id, record.id, event.id)
    tamper("UPDATE manifest_lines SET quantity_kg = quantity_kg / 2 WHERE id = :id", id=ids[1])
    tamper("UPDATE manifests SET picked_up_at = '2020-01-01 00:00:00' WHERE id = :id", id=ids[0])
    tamper("UPDATE ledger_records SET quantity_kg = quantity_kg + 1000 WHERE id = :id", id=ids[2])
    tamper("DELETE FROM box_events WHERE id = :id", id=ids[3])
    result = verify(app)
    assert result.exit_code == 1
    out = result.output
    assert f"manifest_lines [{ids[1]}]: column quantity_kg: expected '1800.000'" in out
    assert f"manifests [{ids[0]}]: column picked_up_at" in out
    assert f"ledger_records [{ids[2]}]: column quantity_kg" in out
    assert f"box_events [{ids[3]}]: row missing" in out
    assert "entry" not in out.split("\n")[0] or "column" in out  # row findings, the chain itself is intact
    assert "no longer matches" not in out


def test_a_row_inserted_behind_the_back_is_named(app, world, api):
    loop = build_loop(world, api)
    assert verify(app).exit_code == 0
    tamper(
        "INSERT INTO box_events (box_id, kind, at, actor, detail) VALUES (:b, 'scan', '2025-01-01 00:00:00', 'x', '{}')",
        b=loop.box.id,
    )
    result = verify(app)
    assert result.exit_code == 1
    assert "box_events" in result.output and "not in the audit trail" in result.output


def test_verify_names_an_edited_a_deleted_and_swapped_entries(app, world, api):
    build_loop(world, api)
    count = db.session.scalar(select(func.count()).select_from(AuditEntry))
    assert count > 6
    actor = db.session.scalar(select(AuditEntry.actor).where(AuditEntry.seq == 3))
    tamper("UPDATE audit_entries SET actor = 'mallory' WHERE seq = 3")
    result = verify(app)
    assert result.exit_code == 1 and "entry 3: its content no longer matches its hash" in result.output

    tamper("UPDATE audit_entries SET actor = :a WHERE seq = 3", a=actor)
    assert verify(app).exit_code == 0
    tamper("DELETE FROM audit_entries WHERE seq = 5")
    result = verify(app)
    assert "entry 5: missing" in result.output and "entry 6: does not follow" in result.output


def test_swapped_entries_are_named(app, world, api):
    build_loop(world, api)
    tamper("UPDATE audit_entries SET seq = -1 WHERE seq = 2")
    tamper("UPDATE audit_entries SET seq = 2 WHERE seq = 3")
    tamper("UPDATE audit_entries SET seq = 3 WHERE seq = -1")
    result = verify(app)
    assert result.exit_code == 1
    first = next(line for line in result.output.splitlines() if line.startswith("FAIL"))
    assert "entry 2" in first


def test_digest_api_and_verify_up_to_a_recorded_digest(app, world, api):
    build_loop(world, api)
    api.token("reg_city"), api.token("ent")  # signing in writes (and audits) a token
    r = api.get("/api/v1/audit/digest", as_="reg_city")
    assert r.status_code == 200
    head = r.get_json()
    assert head["seq"] > 0 and len(head["hash"]) == 64
    assert api.get("/api/v1/audit/digest", as_="ent").status_code == 403
    cli = app.test_cli_runner().invoke(args=["audit", "digest"])
    assert f"{head['seq']}:{head['hash']}" in cli.output
    assert verify(app, "--digest", f"{head['seq']}:{head['hash']}").exit_code == 0
    assert verify(app, "--digest", f"{head['seq']}:{'0' * 64}").exit_code == 1


def test_regulators_read_the_trail_of_their_jurisdiction_only(app, world, api):
    manifest = _closed_manifest(world, api)
    number = manifest["number"]
    r = api.get(f"/api/v1/audit?manifest={number}&limit=5", as_="reg_tt")
    assert r.status_code == 200, r.get_json()
    page = r.get_json()
    assert len(page["items"]) == 5 and page["next_after"] == page["items"][-1]["seq"]
    r2 = api.get(f"/api/v1/audit?manifest={number}&limit=500&after={page['next_after']}", as_="reg_tt")
    assert r2.get_json()["items"][0]["seq"] > page["next_after"]
    assert any(i["table"] == "manifest_events" for i in r2.get_json()["items"])
    assert api.get(f"/api/v1/audit?manifest={number}", as_="other").status_code == 404
    m_id = db.session.scalar(select(Manifest.id).where(Manifest.number == number))
    assert api.get(f"/api/v1/audit?table=manifests&id={m_id}", as_="reg_tt").status_code == 200
    assert api.get(f"/api/v1/audit?table=manifests&id={m_id}", as_="other").status_code == 404
    assert api.get("/api/v1/audit?table=users&id=1", as_="reg_tt").status_code == 403
    assert api.get("/api/v1/audit?table=users&id=1", as_="op").status_code == 200


def test_box_trail_and_secrets_are_redacted(app, world, api):
    loop = build_loop(world, api)
    r = api.get(f"/api/v1/audit?box={loop.box.code}", as_="reg_tt")
    assert r.status_code == 200
    tables = {i["table"] for i in r.get_json()["items"]}
    assert {"fills", "box_events"} <= tables
    tokens = db.session.scalars(select(AuditEntry).where(AuditEntry.table_name == "api_tokens")).all()
    assert tokens and all(json.loads(t.after)["token_hash"] == "[redacted]" for t in tokens if t.after)
    users = db.session.scalars(select(AuditEntry).where(AuditEntry.table_name == "users")).all()
    assert users and all(json.loads(u.after)["password_hash"] == "[redacted]" for u in users if u.after)


def test_an_ingest_batch_is_one_entry(app, world, api):
    from tests.telemetry.builders import device_token, make_sensor_box, reading, utc_now

    box = make_sensor_box(world)
    token = device_token(api, world.enterprise)
    start = utc_now()
    body = {
        "readings": [
            reading(box.code, start.replace(second=0) - __import__("datetime").timedelta(minutes=i)) for i in range(20)
        ]
    }
    before = db.session.scalar(select(func.count()).select_from(AuditEntry))
    r = api.client.post("/api/v1/readings", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.get_json()["accepted"] == 20
    db.session.rollback()
    batch = db.session.scalars(
        select(AuditEntry).where(AuditEntry.seq > before, AuditEntry.table_name == "sensor_readings")
    ).all()
    assert len(batch) == 1 and batch[0].action == "ingest" and batch[0].interface == "api"
    after = json.loads(batch[0].after)
    assert after["count"] == 20 and after["box_ids"] == [box.id] and len(after["digest"]) == 64
    assert verify(app).exit_code == 0


def test_the_database_refuses_to_change_entries_on_postgresql_and_migrated_sqlite(app, world, api, tmp_path):
    import pytest
    import sqlalchemy as sa

    build_loop(world, api)
    db.session.rollback()
    if db.engine.dialect.name == "postgresql":
        engine = db.engine
    else:  # the migration's triggers (a create_all database has none)
        from flask_migrate import upgrade

        from app import create_app

        other = create_app(
            {"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/m.db"}
        )
        with other.app_context():
            upgrade()
            engine = sa.create_engine(f"sqlite:///{tmp_path}/m.db")
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO audit_entries (seq, recorded_at, interface, actor, table_name, row_key, "
                    "subject, action, prev_hash, hash) VALUES (1, 'x', 'cli', '', 't', '[1]', 't', "
                    "'insert', 'p', 'h')"
                )
            )
    for statement in ("UPDATE audit_entries SET actor = 'mallory'", "DELETE FROM audit_entries"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement))


def test_concurrent_writers_leave_a_gap_free_verifying_chain(app, world, api):
    import threading

    from app.accounts.services import create_park
    from tests import factories

    if db.engine.dialect.name != "postgresql":
        # SQLite serialises writers itself; the advisory lock is PostgreSQL's part
        assert db.engine.dialect.name == "sqlite"
        return
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            with app.app_context():
                for i in range(5):
                    create_park(db.session, factories.op_principal(), {"name": f"园区{n}-{i}", "county_code": "331023"})
                    db.session.commit()
                db.session.remove()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    seqs = db.session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)).all()
    assert seqs == list(range(1, len(seqs) + 1))
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.table_name == "parks")) >= 30
    result = verify(app)
    assert result.exit_code == 0, result.output


def test_a_value_added_re_import_keeps_the_old_figure_in_the_trail(app, world, api):
    row = {
        "scope": "park",
        "park_id": world.park.id,
        "period": "2025-07",
        "value_added_10k_yuan": 400,
        "source_department": "天台县统计局",
    }
    assert api.post("/api/v1/value-added", [row], as_="reg_tt").status_code == 200
    r = api.post("/api/v1/value-added", [{**row, "value_added_10k_yuan": 500}], as_="op")
    assert r.status_code == 200 and r.get_json()["updated"] == 1
    db.session.rollback()
    entries = db.session.scalars(
        select(AuditEntry).where(AuditEntry.table_name == "value_added").order_by(AuditEntry.seq)
    ).all()
    assert [e.action for e in entries] == ["insert", "update"]
    assert json.loads(entries[1].before)["value_added_10k_yuan"] == "400.0"
    assert json.loads(entries[1].after)["value_added_10k_yuan"] == "500.0"
    assert entries[0].interface == "api" and entries[1].actor == "op"
    assert verify(app).exit_code == 0


def test_a_fresh_install_starts_its_chain_from_the_migrated_rows(tmp_path):
    # `db upgrade` writes the nine counties before any app is running: the first start records
    # them as the chain's starting state, so `audit verify` passes on a new install, while a row
    # written behind the application's back afterwards is still named.
    import os
    import sqlite3
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "APP_ENV": "development",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
    }

    def flask(*args):
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    assert flask("db", "upgrade").returncode == 0
    first = flask("audit", "verify")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "every audited row matches" in first.stdout
    with sqlite3.connect(tmp_path / "fresh.db") as conn:
        conn.execute("UPDATE counties SET name = '篡改' WHERE code = '331023'")
    tampered = flask("audit", "verify")
    assert tampered.returncode == 1 and "counties" in tampered.stdout and "331023" in tampered.stdout, tampered.stdout


def test_every_statistics_roll_up_is_outside_the_chain():
    """Roll-ups are derived from audited rows at each commit and rebuilt by a command: a roll-up
    table left in the chain would add an entry per event and break verification after a rebuild."""
    from app.audit.recorder import EXCLUDED_TABLES
    from app.statistics import rollup_models

    tables = {
        m.__tablename__
        for m in vars(rollup_models).values()
        if isinstance(m, type) and getattr(m, "__tablename__", "").startswith("rollup_")
    }
    assert "rollup_consignment_months" in tables
    assert tables <= EXCLUDED_TABLES, tables - EXCLUDED_TABLES
