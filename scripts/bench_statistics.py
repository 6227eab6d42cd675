"""Statistics benchmark: the city year, the city regulator's dashboard and the index scores, each
against the park-level figure of the same year as baseline, on PostgreSQL.

    .venv/bin/python scripts/bench_statistics.py [--boxes 10000] [--repeat 5]

Makes a scratch PostgreSQL database (``BENCH_PG_URL``, default the local server), migrates it and
generates the rows in bulk with SQL (INSERT of many rows at once, not the services): enterprises
over the Taizhou counties and parks, boxes, a colour history per box over the year, fills, ledger
records and manifests with one line each through every state. The roll-ups are then made by
``statistics rebuild``'s function (timed), checked by ``statistics verify``'s (timed), and the
figures asked in-process through the Flask test client (no server: the three are database-bound):

* ``GET /api/v1/metrics?period=2026`` (city year) — target < 1 s at 100,000 boxes;
* ``GET /`` as the city regulator (the dashboard) — target < 0.5 s — and as a county regulator
  (Jiaojiang), with the ratio of the two;
* ``GET /api/v1/index/scores?period=2026-Q2`` — target < 0.5 s;
* baseline: ``GET /api/v1/parks/{id}/metrics?period=2026``.

Prints the median seconds of ``--repeat`` runs and each ratio to the baseline. Never asserts.

``--database URL`` measures an existing data set instead (a clone of ``demo generate``'s, e.g.
``gen_city10``, with its ``city`` and ``county`` logins): no generation, the same figures, and
the regulator's lists (red/yellow boxes in every sort, the flagged manifests, the anomalies),
each with the statements it ran (SQLAlchemy events) beside its median.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COUNTIES = ["331002", "331003", "331004", "331022", "331023", "331024", "331081", "331082", "331083"]
PASSWORD = "bench-password-1"
YEAR_START = datetime(2025, 12, 31, 16, tzinfo=UTC)  # 2026-01-01 00:00 Shanghai


def _insert(session, model, rows: list[dict[str, Any]], chunk: int = 5000) -> None:
    import sqlalchemy as sa

    for i in range(0, len(rows), chunk):
        session.execute(sa.insert(model.__table__), rows[i : i + chunk])


def generate(session, n_boxes: int, now: datetime) -> dict[str, Any]:
    """The data set, in bulk; returns the ids the figures are asked for."""
    import sqlalchemy as sa

    from app.accounts.models import Organization, OrganizationRole, Park
    from app.boxes.models import Box, ColourChange, Fill
    from app.ledger.models import LedgerRecord, Manifest, ManifestLine

    rng = random.Random(12)
    n_enterprises = max(10, n_boxes // 10)
    for code in COUNTIES:
        session.add(Park(name=f"{code} 基准园区", county_code=code))
    session.flush()
    parks = list(session.scalars(sa.select(Park.id).order_by(Park.id)))
    first = (session.scalar(sa.select(sa.func.max(Organization.id))) or 0) + 1
    orgs = [
        {
            "id": first + i,
            "name": f"台州基准企业{i:05d}有限公司",
            "county_code": COUNTIES[i % len(COUNTIES)],
            "park_id": parks[i % len(parks)] if i % 3 else None,
        }
        for i in range(n_enterprises + 2)
    ]
    _insert(session, Organization, orgs)
    carrier, receiver = first + n_enterprises, first + n_enterprises + 1
    roles = [{"organization_id": o["id"], "role": "generator"} for o in orgs[:n_enterprises]]
    roles += [{"organization_id": carrier, "role": "carrier"}, {"organization_id": receiver, "role": "receiver"}]
    _insert(session, OrganizationRole, roles)
    boxes, changes, fills, records, manifests, lines = [], [], [], [], [], []
    colours = ["green", "yellow", "red", "green"]
    change_id = fill_id = record_id = 0
    for b in range(1, n_boxes + 1):
        enterprise = first + b % n_enterprises
        boxes.append(
            {
                "id": b,
                "code": f"B{b:07d}",
                "enterprise_id": enterprise,
                "facility_code": "TA001",
                "outlet_code": "DA001",
                "carbon_type": "granular",
                "design_fill_kg": Decimal("2000"),
                "design_airflow_m3_h": 15000.0,
                "design_removed_mg_m3": 80.0,
                "hours_per_day": 16.0,
                "emission_limit_mg_m3": 60.0,
                "colour": colours[b % 4],
                "created_at": YEAR_START - timedelta(days=30),
            }
        )
        at = YEAR_START + timedelta(hours=rng.random() * 240)
        previous = None
        while at < now:  # a colour change every ~6 weeks, a fill at each green
            change_id += 1
            colour = colours[change_id % 4]
            changes.append(
                {"id": change_id, "box_id": b, "colour": colour, "previous_colour": previous, "changed_at": at}
            )
            if colour == "green":
                fill_id += 1
                fills.append(
                    {
                        "id": fill_id,
                        "box_id": b,
                        "kind": "replacement" if previous else "initial",
                        "filled_at": at,
                        "mass_kg": Decimal("2000"),
                        "carbon_type": "granular",
                        "iodine_mg_g": 900.0,
                        "removed_waste_kg": Decimal("2100.5") if previous else None,
                        "replaced_overdue": previous == "red" if previous else None,
                    }
                )
                if previous:
                    record_id += 1
                    records.append(
                        {
                            "id": record_id,
                            "batch_code": f"CS{record_id:010d}",
                            "stage": "generation",
                            "enterprise_id": enterprise,
                            "waste_code": "900-039-49",
                            "waste_name": "废活性炭",
                            "category": "HW49",
                            "catalogue_edition": "2021",
                            "quantity_kg": Decimal("2100.5"),
                            "on_site_kg": Decimal("0"),
                            "available_kg": Decimal("0"),
                            "occurred_at": at,
                            "origin": "replacement",
                            "box_id": b,
                        }
                    )
                    m = len(manifests) + 1
                    picked = at + timedelta(days=3)
                    done = picked + timedelta(days=2) < now
                    manifests.append(
                        {
                            "id": m,
                            "number": f"M{m:013d}",
                            "status": "processed" if done else "in_transit",
                            "consignor_id": enterprise,
                            "carrier_id": carrier,
                            "receiver_id": receiver,
                            "picked_up_at": picked,
                            "receipt_due_at": picked + timedelta(days=7),
                            "received_at": picked + timedelta(days=1) if done else None,
                            "processed_at": picked + timedelta(days=2) if done else None,
                        }
                    )
                    lines.append(
                        {
                            "manifest_id": m,
                            "line_no": 1,
                            "waste_code": "900-039-49",
                            "waste_name": "废活性炭",
                            "category": "HW49",
                            "hazard": "T",
                            "quantity_kg": Decimal("2100.5"),
                            "received_kg": Decimal("2100.5") if done else None,
                            "accepted_kg": Decimal("2100.5") if done else None,
                            "method_code": ("R7", "D10", "D1")[m % 3] if done else None,
                        }
                    )
            previous = colour
            at += timedelta(days=rng.uniform(20, 60))
    for model, rows in (
        (Box, boxes),
        (ColourChange, changes),
        (Fill, fills),
        (LedgerRecord, records),
        (Manifest, manifests),
        (ManifestLine, lines),
    ):
        _insert(session, model, rows)
    if session.get_bind().dialect.name == "postgresql":
        tables = ("organizations", "boxes", "colour_changes", "fills", "ledger_records", "manifests", "manifest_lines")
        for table in tables:
            session.execute(
                sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            )
    counts = {"boxes": len(boxes), "colour changes": len(changes), "fills": len(fills), "ledger records": len(records)}
    counts["manifests"] = len(manifests)
    return {"park_id": parks[0], "counts": counts}


def timed(fn, repeat: int) -> float:
    fn()  # warm: plans, caches of the rule files
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--boxes", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (its URL is printed)")
    parser.add_argument("--database", help="measure this existing data set (a clone: it is read, and refreshed)")
    args = parser.parse_args()
    import sqlalchemy as sa

    if args.database:
        os.environ.update(
            {
                "APP_ENV": "development",
                "INSTANCE_PATH": tempfile.mkdtemp(prefix="tanxiang-bench-stats-"),
                "DATABASE_URL": args.database,
            }
        )
        run_existing(args)
        return

    admin_url = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    name = f"bench_statistics_{os.getpid()}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    os.environ.update(
        {
            "APP_ENV": "development",
            "INSTANCE_PATH": tempfile.mkdtemp(prefix="tanxiang-bench-stats-"),
            "DATABASE_URL": url,
        }
    )
    try:
        run(args)
    finally:
        if args.keep:
            print(f"kept: DATABASE_URL={url}")
        else:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run(args) -> None:
    from flask_migrate import upgrade

    from app import create_app
    from app.accounts.models import User
    from app.accounts.services import Principal, create_organization, create_user
    from app.extensions import db
    from app.statistics.services import rollups

    app = create_app({"WTF_CSRF_ENABLED": False})
    now = datetime.now(UTC)
    with app.app_context():
        os.environ["ROLLUPS_BACKFILL"] = "0"
        upgrade()
        operator = User(username="bench", password_hash="", is_operator=True)
        db.session.add(operator)
        db.session.flush()
        actor = Principal(user=operator)
        city = create_organization(db.session, actor, {"name": "台州市生态环境局（基准）", "roles": ["regulator"]})
        create_user(db.session, actor, {"username": "city", "password": PASSWORD, "organization_id": city.id})
        started = time.perf_counter()
        made = generate(db.session(), args.boxes, now)
        db.session.commit()
        print(
            f"generated in {time.perf_counter() - started:.1f} s: "
            + ", ".join(f"{v} {k}" for k, v in made["counts"].items())
        )
        county = create_organization(
            db.session,
            actor,
            {"name": "椒江区生态环境分局（基准）", "roles": ["regulator"], "county_code": COUNTIES[0]},
        )
        create_user(db.session, actor, {"username": "county", "password": PASSWORD, "organization_id": county.id})
        db.session.commit()
        started = time.perf_counter()
        rollups.rebuild(db.session())
        db.session.commit()
        print(f"statistics rebuild: {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        problems = rollups.verify(db.session())
        db.session.rollback()
        print(f"statistics verify: {time.perf_counter() - started:.1f} s, {len(problems)} difference(s)")
        db.session.execute(sa_text("ANALYZE"))
        db.session.commit()
        park_id = made["park_id"]
    client = app.test_client()
    token = client.post("/api/v1/auth/token", json={"username": "city", "password": PASSWORD}).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    page = app.test_client()
    assert page.post("/login", data={"username": "city", "password": PASSWORD}).status_code == 302
    county_page = app.test_client()
    assert county_page.post("/login", data={"username": "county", "password": PASSWORD}).status_code == 302

    def get(c, url, **kw):
        def ask():
            r = c.get(url, **kw)
            if r.status_code != 200:
                raise SystemExit(f"{url}: {r.status_code} {r.get_data(as_text=True)[:300]}")

        return ask

    figures: dict[str, float] = {}
    baseline = timed(get(client, f"/api/v1/parks/{park_id}/metrics?period=2026", headers=headers), args.repeat)
    print(f"\nbaseline park year  /api/v1/parks/{park_id}/metrics?period=2026: {baseline * 1000:.0f} ms")
    for label, url, c, kw in (
        ("city year", "/api/v1/metrics?period=2026", client, {"headers": headers}),
        ("city dashboard", "/", page, {}),
        ("county dashboard", "/", county_page, {}),
        ("index scores", "/api/v1/index/scores?period=2026-Q2", client, {"headers": headers}),
    ):
        seconds = timed(get(c, url, **kw), args.repeat)
        figures[label] = seconds
        print(f"{label:16s} {url:42s} {seconds * 1000:7.0f} ms   ratio to the park year {seconds / baseline:5.2f}")
    ratio = figures["city dashboard"] / figures["county dashboard"]
    print(f"city dashboard / county dashboard: {ratio:.2f} (the city has {len(COUNTIES)} counties)")


EXISTING_PAGES = (
    "/",
    "/oversight/boxes/red",
    "/oversight/boxes/yellow",
    "/oversight/boxes/red?sort=saturation",
    "/oversight/boxes/yellow?sort=saturation",
    "/oversight/boxes/red?sort=enterprise",
    "/oversight/manifests/overdue",
    "/oversight/manifests/discrepant",
    "/oversight/manifests/rejected",
    "/oversight/anomalies",
)


def run_existing(args) -> None:
    """The figures on an existing data set: the park year as baseline, the city year, and every
    page of EXISTING_PAGES as the city and as the county regulator, with its statements."""
    from sqlalchemy import event, select

    from app import create_app
    from app.accounts.models import Park
    from app.extensions import db

    app = create_app({"WTF_CSRF_ENABLED": False})
    statements: list[str] = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        park_id = db.session.scalar(select(Park.id).order_by(Park.id))
        db.session.remove()
    client = app.test_client()
    token = client.post("/api/v1/auth/token", json={"username": "city", "password": PASSWORD}).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}

    def get(c, url, **kw):
        def ask():
            r = c.get(url, **kw)
            if r.status_code != 200:
                raise SystemExit(f"{url}: {r.status_code} {r.get_data(as_text=True)[:300]}")

        return ask

    baseline = timed(get(client, f"/api/v1/parks/{park_id}/metrics?period=2026", headers=headers), args.repeat)
    print(f"baseline park year /api/v1/parks/{park_id}/metrics?period=2026: {baseline * 1000:.0f} ms")
    city_year = timed(get(client, "/api/v1/metrics?period=2026", headers=headers), args.repeat)
    print(f"city year /api/v1/metrics?period=2026: {city_year * 1000:.0f} ms, ratio {city_year / baseline:.2f}")
    for login in ("city", "county"):
        page = app.test_client()
        assert page.post("/login", data={"username": login, "password": PASSWORD}).status_code == 302
        for url in EXISTING_PAGES:
            seconds = timed(get(page, url), args.repeat)
            statements.clear()
            get(page, url)()
            print(
                f"{login:7s} {url:42s} {seconds * 1000:7.0f} ms  {len(statements):3d} statements"
                f"  ratio to the park year {seconds / baseline:5.2f}"
            )
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


def sa_text(sql: str):
    import sqlalchemy as sa

    return sa.text(sql)


if __name__ == "__main__":
    main()
