"""The regulator's long lists at city scale: each list page's time against ``/healthz`` in the
same run, with its statements, and EXPLAIN ANALYZE of the slow ones.

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/<a copy of the 10x data set> \\
        .venv/bin/python scripts/bench_lists.py [--user city] [--repeat 5] [--explain 50] [--plans FILE]
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/<an empty database> \\
        .venv/bin/python scripts/bench_lists.py --generate 100000

Runs against an existing data set (``flask demo generate --scale 10``, or a copy of it: the pages
write what time alone changed about colours, so never against a database others read), or makes
one with ``--generate BOXES`` (migrates the empty database, then SQL ``generate_series``: a tenth
as many enterprises over the Taizhou counties and parks, the boxes 5 % red and 10 % yellow with
their colour history, ten manifests a box with one or two lines: 1 % overdue in transit, 0.5 %
rejected, 0.7 % discrepant, 0.3 % received late; the ``city`` regulator). Signs in
as ``--user`` (the city regulator of the generated set, password ``bench-password-1``) and asks
in-process, through the Flask test client (the pages are database-bound): the red and yellow box
lists in each sort, the overdue / discrepant / rejected manifests in each sort, ``/manifests``
with and without a flag, the second page of each (its "下一页" cursor), and a county filter.
Baseline: ``GET /healthz`` of the same app. Prints the median of ``--repeat`` runs, the ratio to the
baseline, the statements of one run and the slowest; ``--explain MS`` writes EXPLAIN (ANALYZE,
BUFFERS) of every statement slower than MS to ``--plans``. Never asserts.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from html import unescape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-password-1"
NEXT = re.compile(r'<a rel="next" data-page="next" href="([^"]+)"')

PAGES = [
    "/oversight/boxes/red",
    "/oversight/boxes/red?sort=enterprise",
    "/oversight/boxes/red?sort=saturation",
    "/oversight/boxes/yellow",
    "/oversight/boxes/yellow?sort=enterprise",
    "/oversight/boxes/yellow?sort=saturation",
    "/oversight/manifests/overdue",
    "/oversight/manifests/overdue?sort=quantity",
    "/oversight/manifests/discrepant",
    "/oversight/manifests/discrepant?sort=difference",
    "/oversight/manifests/rejected",
    "/oversight/manifests/rejected?sort=consignor",
    "/manifests",
    "/manifests?flag=overdue",
    "/manifests?status=in_transit",
    "/oversight/boxes/red?county=331023",
    "/oversight/manifests/overdue?county=331023",
]


class Statements:
    """The statements the engine runs (text, parameters, seconds) while ``on``."""

    def __init__(self, engine) -> None:
        from sqlalchemy import event

        self.on = False
        self.seen: list[tuple[str, object, float]] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        started = conn.info["bench_started"].pop()
        if self.on:
            self.seen.append((statement, parameters, time.perf_counter() - started))


GENERATE = [
    """INSERT INTO parks (name, county_code, created_at)
       SELECT c.code || ' 列表基准园区' || g, c.code, now() FROM counties c, generate_series(1, 2) g""",
    """INSERT INTO organizations (name, licences, created_at, county_code, park_id)
       SELECT '台州列表基准企业' || lpad(g::text, 5, '0') || '有限公司', '[]', now(), c.code,
              CASE WHEN g % 3 = 0 THEN NULL ELSE (SELECT p.id FROM parks p WHERE p.county_code = c.code
                                                   ORDER BY p.id OFFSET g % 2 LIMIT 1) END
       FROM generate_series(1, :enterprises) g
       JOIN (SELECT code, row_number() OVER (ORDER BY code) - 1 AS i FROM counties) c ON c.i = g % 9""",
    """INSERT INTO organization_roles (organization_id, role)
       SELECT id, 'generator' FROM organizations WHERE name LIKE '台州列表基准企业%'""",
    """INSERT INTO organizations (name, licences, created_at, county_code)
       VALUES ('台州列表基准危运有限公司', '[]', now(), '331002'), ('台州列表基准处置有限公司', '[]', now(), '331002')""",
    """INSERT INTO organization_roles (organization_id, role)
       SELECT id, CASE WHEN name LIKE '%危运%' THEN 'carrier' ELSE 'receiver' END FROM organizations
       WHERE name IN ('台州列表基准危运有限公司', '台州列表基准处置有限公司')""",
    "DROP TABLE IF EXISTS bench_ents",
    """CREATE TABLE bench_ents AS SELECT id, row_number() OVER (ORDER BY id) - 1 AS i FROM organizations
       WHERE name LIKE '台州列表基准企业%'""",
    """INSERT INTO boxes (code, enterprise_id, name, facility_code, outlet_code, carbon_type, design_fill_kg,
         design_airflow_m3_h, design_removed_mg_m3, hours_per_day, adsorption_capacity, emission_limit_mg_m3,
         has_sensors, waste_code, status, label_version, revision, colour, colour_reasons, created_at,
         colour_since, colour_evaluated_at)
       SELECT 'LB' || lpad(g::text, 8, '0'), e.id, '活性炭箱 ' || g, 'TA001', 'DA001', 'granular', 2000,
              15000, 80, 16, 0.15, 60, false, '900-039-49', 'active', 1, 1,
              CASE WHEN g % 20 = 0 THEN 'red' WHEN g % 10 = 1 THEN 'yellow' WHEN g % 50 = 2 THEN 'grey'
                   ELSE 'green' END,
              CASE WHEN g % 20 = 0 THEN '[{"code": "replacement_overdue", "level": "red"}]'
                   WHEN g % 10 = 1 THEN '[{"code": "replacement_due_soon", "level": "yellow"}]'
                   ELSE '[]' END::json,
              :now - interval '400 days', :now - (g % 97) * interval '1 day' - (g % 1440) * interval '1 minute',
              :now
       FROM generate_series(1, :boxes) g JOIN bench_ents e ON e.i = g % :enterprises""",
    """INSERT INTO colour_changes (box_id, colour, previous_colour, changed_at, recorded_at, rules_version, reasons)
       SELECT id, 'green', NULL, created_at, created_at, 'bench', '[]'::json FROM boxes WHERE code LIKE 'LB%'
       UNION ALL
       SELECT id, colour, 'green', colour_since, colour_since, 'bench', colour_reasons FROM boxes
       WHERE code LIKE 'LB%' AND colour IN ('red', 'yellow')""",
    """INSERT INTO manifests (number, origin, status, consignor_id, carrier_id, receiver_id, receiver_licence, route,
         note, vehicle_plate, driver_name, driver_phone, created_at, submitted_at, picked_up_at, receipt_due_at,
         received_at, processed_at, closed_at, rejected_at, reject_reason, discrepant, overdue, late_entry)
       SELECT 'LM' || lpad(g::text, 12, '0'), 'stock',
              CASE WHEN g % 100 IN (0, 1) THEN 'in_transit' WHEN g % 200 = 2 THEN 'rejected' ELSE 'closed' END,
              e.id, (SELECT id FROM organizations WHERE name = '台州列表基准危运有限公司'),
              (SELECT id FROM organizations WHERE name = '台州列表基准处置有限公司'), '浙危废经第 0001 号', '', '',
              '浙J12345', '王师傅', '13800000000', t.at, t.at, t.at + interval '1 day',
              CASE WHEN g % 100 = 1 THEN :now + interval '3 days' ELSE t.at + interval '8 days' END,
              CASE WHEN g % 100 IN (0, 1) OR g % 200 = 2 THEN NULL
                   WHEN g % 300 = 4 THEN t.at + interval '12 days' ELSE t.at + interval '2 days' END,
              CASE WHEN g % 100 IN (0, 1) OR g % 200 = 2 THEN NULL ELSE t.at + interval '13 days' END,
              CASE WHEN g % 100 IN (0, 1) OR g % 200 = 2 THEN NULL ELSE t.at + interval '13 days' END,
              CASE WHEN g % 200 = 2 THEN t.at + interval '2 days' END,
              CASE WHEN g % 200 = 2 THEN '含水率过高，拒收 (moisture too high)' ELSE '' END,
              g % 150 = 3, g % 300 = 4, false
       FROM generate_series(1, :manifests) g
       JOIN bench_ents e ON e.i = g % :enterprises
       CROSS JOIN LATERAL (SELECT CASE WHEN g % 100 = 1 THEN :now - interval '2 days'
                                       ELSE :now - interval '20 days' - (g % 340) * interval '1 day'
                                            - (g % 86400) * interval '1 second' END AS at) t""",
    """INSERT INTO manifest_lines (manifest_id, line_no, waste_code, waste_name, category, physical_form, hazard,
         packaging, quantity_kg, received_kg, accepted_kg, requested_batches, refusal_reason, consumed_kg)
       SELECT m.id, l.no, '900-039-49', '废活性炭', 'HW49', 'solid', 'T', '吨袋', 1000 + (m.id % 1000) * 1.5,
              CASE WHEN m.received_at IS NULL THEN NULL
                   WHEN m.discrepant THEN (1000 + (m.id % 1000) * 1.5) * 0.9 ELSE 1000 + (m.id % 1000) * 1.5 END,
              CASE WHEN m.received_at IS NULL THEN NULL
                   WHEN m.discrepant THEN (1000 + (m.id % 1000) * 1.5) * 0.9 ELSE 1000 + (m.id % 1000) * 1.5 END,
              '[]', '', 0
       FROM manifests m CROSS JOIN LATERAL generate_series(1, CASE WHEN m.id % 5 = 0 THEN 2 ELSE 1 END) l(no)
       WHERE m.number LIKE 'LM%'""",
    "DROP TABLE bench_ents",
    "SELECT setval(pg_get_serial_sequence('manifests', 'id'), (SELECT max(id) FROM manifests))",
    "ANALYZE",
]


def generate(app, boxes: int) -> None:
    """The data set of ``--generate`` (see the module's doc), in SQL: a few minutes at 100,000 boxes."""
    from datetime import UTC, datetime

    from flask_migrate import upgrade
    from sqlalchemy import text

    from app.accounts.models import User
    from app.accounts.services import Principal, create_organization, create_user
    from app.extensions import db

    now = datetime.now(UTC)
    sizes = {"boxes": boxes, "enterprises": max(10, boxes // 10), "manifests": boxes * 10, "now": now}
    with app.app_context():
        upgrade()
        operator = User(username="bench", password_hash="", is_operator=True)
        db.session.add(operator)
        db.session.flush()
        actor = Principal(user=operator)
        city = create_organization(db.session, actor, {"name": "台州市生态环境局（列表基准）", "roles": ["regulator"]})
        create_user(db.session, actor, {"username": "city", "password": PASSWORD, "organization_id": city.id})
        db.session.commit()
        for statement in GENERATE:
            started = time.perf_counter()
            with db.engine.begin() as conn:
                conn.execute(text(statement), {k: v for k, v in sizes.items() if f":{k}" in statement})
            print(f"{time.perf_counter() - started:6.1f} s  {' '.join(statement.split()[:4])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--user", default="city")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--explain", type=float, default=0.0, help="EXPLAIN ANALYZE statements slower than MS")
    parser.add_argument("--plans", default="/tmp/bench_lists_plans.txt")
    parser.add_argument("--only", default="", help="only the pages whose URL contains this")
    parser.add_argument("--generate", type=int, default=0, metavar="BOXES", help="make the data set first")
    args = parser.parse_args()
    if not (os.environ.get("DATABASE_URL") or "").startswith("postgresql"):
        raise SystemExit("DATABASE_URL must name a PostgreSQL copy of the data set")

    from app import create_app
    from app.extensions import db

    app = create_app({"WTF_CSRF_ENABLED": False})
    if args.generate:
        generate(app, args.generate)
    client = app.test_client()
    r = client.post("/login", data={"username": args.user, "password": PASSWORD})
    if r.status_code != 302:
        raise SystemExit(f"sign-in as {args.user}: {r.status_code}")

    def ask(url: str) -> str:
        r = client.get(url)
        if r.status_code != 200:
            raise SystemExit(f"{url}: {r.status_code} {r.get_data(as_text=True)[:300]}")
        return r.get_data(as_text=True)

    def timed(url: str) -> float:
        ask(url)  # warm: caches, the colours time alone changed
        runs = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            ask(url)
            runs.append(time.perf_counter() - started)
        return statistics.median(runs)

    with app.app_context():
        engine = db.engine
        watched = Statements(engine)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {args.repeat} runs per page, medians")
    baseline = timed("/healthz")
    print(f"baseline GET /healthz: {baseline * 1000:.1f} ms\n")
    print(f"{'page':58s} {'ms':>7s} {'ratio':>7s} {'stmts':>5s} {'slowest':>8s}  2nd page ms")
    plans: list[str] = []
    pages = [p for p in PAGES if args.only in p]
    for url in pages:
        seconds = timed(url)
        watched.seen.clear()
        watched.on = True
        html = ask(url)
        watched.on = False
        seen = list(watched.seen)
        slowest = max((s for _, _, s in seen), default=0.0)
        found = NEXT.search(html)
        second = f"{timed(unescape(found.group(1))) * 1000:7.0f}" if found else "      –"
        print(
            f"{url:58s} {seconds * 1000:7.0f} {seconds / baseline:7.1f} {len(seen):5d} {slowest * 1000:8.1f}  {second}"
        )
        if args.explain:
            for statement, parameters, took in seen:
                if took * 1000 < args.explain or not statement.lstrip().upper().startswith("SELECT"):
                    continue
                with engine.connect() as conn:
                    plan = conn.exec_driver_sql(
                        "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters if parameters else ()
                    ).all()
                    conn.rollback()
                plans.append(f"=== {url}  ({took * 1000:.0f} ms)\n{statement}\n{parameters}\n")
                plans.append("\n".join(row[0] for row in plan) + "\n")
            Path(args.plans).write_text("\n".join(plans), encoding="utf-8")  # after each page: a long run can be cut
    if args.explain:
        print(f"\nplans of statements > {args.explain:.0f} ms: {args.plans}")


if __name__ == "__main__":
    main()
