"""Every schema change ships an Alembic revision: migrating an empty database to head must
yield exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.support import BACKENDS, drop_pg_database, pg_scratch_database


def _empty_database(backend: str, tmp_path, worker: str) -> str:
    if backend == "sqlite":
        return "sqlite:///" + str(tmp_path / "migrate.sqlite3")
    return pg_scratch_database("migrate", worker)


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_from_empty_matches_models(backend, tmp_path, worker, monkeypatch):
    from flask_migrate import downgrade, upgrade

    from app import create_app
    from app.extensions import db

    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    url = _empty_database(backend, tmp_path, worker)
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
            diff = compare_metadata(context, db.metadata)
        assert diff == [], "models and migrations differ:\n" + "\n".join(map(str, diff))
        # Alembic's comparison does not cover CHECK constraints: compare their names table by table.
        with db.engine.connect() as conn:
            inspector = sa.inspect(conn)
            found = {t: {c["name"] for c in inspector.get_check_constraints(t)} for t in db.metadata.tables}
        expected = {
            t.name: {c.name for c in t.constraints if isinstance(c, sa.CheckConstraint)}
            for t in db.metadata.tables.values()
        }
        assert found == expected
        assert (
            "ck_manifests_status" in found["manifests"]
            and "ck_waste_stock_reserved_within_on_hand" in found["waste_stock"]
        )
        # The reference data every organisation and index value points to is there too.
        from app.accounts.reference import TAIZHOU_COUNTIES

        with db.engine.connect() as conn:
            counties = set(conn.execute(sa.text("SELECT code, name FROM counties")).all())
        assert counties == {(code, name) for code, name, _en in TAIZHOU_COUNTIES}
        # And back down to empty: every revision can be undone.
        downgrade(revision="base")
        with db.engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
        assert tables == set()
        db.engine.dispose()
    if backend == "postgresql":
        drop_pg_database(url)
