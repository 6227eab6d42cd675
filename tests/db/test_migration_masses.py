"""The revision that makes masses exact and states checked migrates existing data without loss:
a database at the previous head, with float masses and a manifest missing a step's timestamp,
upgrades to head with every mass rounded to the gram and every constraint active."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.support import BACKENDS, drop_pg_database, pg_scratch_database

PREVIOUS_HEAD = "89b1a75f925c"
FLOATY = 0.1 + 0.2  # 0.30000000000000004


def _filler(column: sa.Column):
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, (sa.Integer, sa.Float, sa.Numeric)):
        return 0
    if isinstance(kind, sa.JSON):
        return []
    if isinstance(kind, sa.DateTime):
        return datetime(2025, 7, 1, tzinfo=UTC).replace(tzinfo=None)
    if isinstance(kind, sa.Date):
        return datetime(2025, 7, 1).date()
    return ""


def _insert(conn, meta: sa.MetaData, table: str, **values) -> int:
    t = meta.tables[table]
    row = {
        c.name: _filler(c)
        for c in t.columns
        if not c.nullable and c.name not in values and not (c.primary_key and isinstance(c.type, sa.Integer))
    }
    result = conn.execute(t.insert().values(**row, **values))
    return result.inserted_primary_key[0] if result.inserted_primary_key else None


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_rounds_masses_to_grams_and_activates_the_constraints(backend, tmp_path, worker, monkeypatch):
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db

    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    url = (
        "sqlite:///" + str(tmp_path / "masses.sqlite3")
        if backend == "sqlite"
        else pg_scratch_database("masses", worker)
    )
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": url})
    at = datetime(2025, 7, 10, 2, tzinfo=UTC)
    try:
        with app.app_context():
            upgrade(revision=PREVIOUS_HEAD)
            with db.engine.begin() as conn:
                meta = sa.MetaData()
                meta.reflect(conn)
                ent = _insert(conn, meta, "organizations", name="天台橡胶", licences=[], county_code="331023")
                rec = _insert(conn, meta, "organizations", name="再生炭", licences=[], county_code="331023")
                for org, role in ((ent, "generator"), (rec, "receiver"), (rec, "carrier")):
                    _insert(conn, meta, "organization_roles", organization_id=org, role=role)
                _insert(
                    conn,
                    meta,
                    "waste_stock",
                    enterprise_id=ent,
                    waste_code="900-039-49",
                    on_hand_kg=FLOATY,
                    reserved_kg=0.3000000000000001,
                )  # a residue above on hand
                gen = _insert(
                    conn,
                    meta,
                    "ledger_records",
                    batch_code="CS2025071000000001",
                    stage="generation",
                    enterprise_id=ent,
                    waste_code="900-039-49",
                    waste_name="废活性炭",
                    category="HW49",
                    catalogue_edition="2021",
                    quantity_kg=FLOATY,
                    on_site_kg=FLOATY,
                    available_kg=0.30000000000000016,
                    occurred_at=at.replace(tzinfo=None),
                    origin="manual",
                )
                man = _insert(
                    conn,
                    meta,
                    "manifests",
                    number="20253310000001",
                    origin="electronic",
                    status="closed",
                    consignor_id=ent,
                    carrier_id=rec,
                    receiver_id=rec,
                    picked_up_at=at.replace(tzinfo=None),
                    received_at=at.replace(tzinfo=None),
                    processed_at=None,
                    closed_at=at.replace(tzinfo=None),
                )
                _insert(
                    conn,
                    meta,
                    "manifest_lines",
                    manifest_id=man,
                    line_no=1,
                    waste_code="900-039-49",
                    waste_name="废活性炭",
                    category="HW49",
                    hazard="T",
                    quantity_kg=1 / 3,
                    received_kg=1 / 3,
                    accepted_kg=0.33333333333333337,
                    consumed_kg=1e-13,
                    requested_batches=[],
                )
            db.engine.dispose()

            upgrade()
            with db.engine.connect() as conn:
                stock = conn.execute(sa.text("SELECT on_hand_kg, reserved_kg FROM waste_stock")).one()
                record = conn.execute(
                    sa.text("SELECT quantity_kg, on_site_kg, available_kg FROM ledger_records WHERE id = :id"),
                    {"id": gen},
                ).one()
                line = conn.execute(
                    sa.text("SELECT quantity_kg, received_kg, accepted_kg, consumed_kg FROM manifest_lines")
                ).one()
                processed_at = conn.execute(sa.text("SELECT processed_at FROM manifests")).scalar_one()
            if backend == "postgresql":  # NUMERIC(14, 3): the database itself holds the exact value
                assert stock == (Decimal("0.300"), Decimal("0.300"))
                assert line[0] == Decimal("0.333") and line[3] == Decimal("0.000")
            # Through the models: Decimals to the gram on both databases.
            from app.ledger.models import LedgerRecord, Manifest, ManifestLine, WasteStock

            s = db.session
            row = s.scalar(sa.select(WasteStock))
            assert (row.on_hand_kg, row.reserved_kg) == (Decimal("0.300"), Decimal("0.300"))
            assert str(row.on_hand_kg) == "0.300" and row.available_kg == 0
            ledger = s.get(LedgerRecord, gen)
            assert (ledger.quantity_kg, ledger.on_site_kg, ledger.available_kg) == (Decimal("0.300"),) * 3
            assert ledger.stage == "generation"
            ml = s.scalar(sa.select(ManifestLine))
            assert (ml.quantity_kg, ml.received_kg, ml.accepted_kg, ml.consumed_kg) == (
                Decimal("0.333"),
                Decimal("0.333"),
                Decimal("0.333"),
                Decimal("0.000"),
            )
            # The closed manifest without processed_at took its closing time.
            assert processed_at is not None and s.scalar(sa.select(Manifest)).processed_at == at
            assert float(record[0]) == 0.3
            s.rollback()
            # And the constraints are active.
            for sql in (
                "UPDATE waste_stock SET reserved_kg = 1",
                "UPDATE waste_stock SET on_hand_kg = -1",
                "UPDATE ledger_records SET stage = 'lost'",
                "UPDATE ledger_records SET available_kg = 1",
                "UPDATE manifests SET status = 'vanished'",
                "UPDATE manifests SET received_at = NULL",
                "UPDATE manifest_lines SET consumed_kg = 1",
                "UPDATE organization_roles SET role = 'pirate'",
            ):
                with db.engine.connect() as conn, pytest.raises(sa.exc.IntegrityError):
                    conn.execute(sa.text(sql))
            db.session.remove()
            db.engine.dispose()
    finally:
        if backend == "postgresql":
            drop_pg_database(url)
